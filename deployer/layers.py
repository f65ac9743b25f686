"""Publishing a layer version so that none is ever lost: the predict function's layer and the ledger's share this.

A layer version carries no tags, so the stack's record is the only proof that a version is ours (teardown deletes
only what it lists). PublishLayerVersion and the record's write are two calls: the intent (the build's sha256 and
the newest version before publishing) is written first, so a deploy killed between them leaves a mark that the
next deploy or teardown turns into the version it published.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import record
from .aws import Aws, b64sha

# the plan's name key of each layer -> (the record's list of its versions, the record's pending intent)
FIELDS = {"layer": ("layers", "layer_intent"), "ledger_layer": ("ledger_layers", "ledger_layer_intent")}


@dataclass(frozen=True)
class Published:
    arn: str
    reused: bool  # a version this stack published already held the build
    claimed: list[str]  # versions an interrupted deploy published, recovered from its intent


def versions(aws: Aws, name: str) -> list[dict]:
    """Every version of the layer (ListLayerVersions answers 50 a page)."""
    lam, out, marker = aws("lambda"), [], None
    while True:
        page = lam.list_layer_versions(LayerName=name, **({"Marker": marker} if marker else {}))
        out += page.get("LayerVersions", [])
        marker = page.get("NextMarker")
        if not marker:
            return out


def adopt_intent(aws: Aws, p: dict, kind: str) -> list[str]:
    """A deploy killed after PublishLayerVersion left its intent in the record: claim the version it published
    (newer than the intent's mark and holding its build), so teardown can delete it."""
    listed, pending = FIELDS[kind]
    r = record.read(aws, p)
    intent = r.get(pending)
    if not intent:
        return []
    claimed = [
        v["LayerVersionArn"]
        for v in versions(aws, p["names"][kind])
        if v["Version"] > intent["after"]
        and v.get("Description", "").endswith(intent["sha"])
        and v["LayerVersionArn"] not in r[listed]
    ]
    record.update(aws, p, **{listed: r[listed] + claimed, pending: None})
    return claimed


def adopt_all(aws: Aws, p: dict) -> list[str]:
    """Both layers' interrupted publishes (teardown runs this before it deletes what the record lists)."""
    return [arn for kind in FIELDS for arn in adopt_intent(aws, p, kind)]


def publish(aws: Aws, p: dict, kind: str, layer_zip: Path, what: str, runtime: str, architectures: list[str]) -> Published:
    """Publish `layer_zip` as layer `kind` unless a version this stack published holds this exact build.
    The intent is recorded first."""
    listed, pending = FIELDS[kind]
    name = p["names"][kind]
    claimed = adopt_intent(aws, p, kind)
    sha = b64sha(layer_zip)
    ours = record.read(aws, p)[listed]
    existing = versions(aws, name)
    for v in existing:
        if v["LayerVersionArn"] in ours and v.get("Description", "").endswith(sha):
            return Published(v["LayerVersionArn"], True, claimed)
    record.update(aws, p, **{pending: {"sha": sha, "after": max((v["Version"] for v in existing), default=0)}})
    arn = aws("lambda").publish_layer_version(
        LayerName=name,
        Description=f"{what}; sha256 {sha}",
        Content={"ZipFile": layer_zip.read_bytes()},
        CompatibleRuntimes=[runtime],
        CompatibleArchitectures=architectures,
    )["LayerVersionArn"]
    record.update(aws, p, **{listed: ours + [arn], pending: None})
    return Published(arn, False, claimed)
