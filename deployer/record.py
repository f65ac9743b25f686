"""The stack's own record, a tagged SSM parameter named after the stack: what AWS cannot tell us later.

It holds the layer versions this stack published (layers carry no tags) and the one it is about to publish
(written first, so a crash between PublishLayerVersion and the write leaks nothing), the verdict of each
published version's post-publish check, the versions `live` was moved to, a canary in progress, and the
front door with its auth type.
"""

from __future__ import annotations

import json

from .aws import Aws, tag_list

EMPTY = {
    "layers": [],
    "layer_intent": None,
    "ledger_layers": [],  # the ledger function's layer versions this stack published
    "versions": {},
    "live_history": [],
    "canary": None,
    "front_door": None,
    "url_auth": None,
}
KEEP_VERSIONS = 40  # verdicts and history kept: the parameter holds 4 KB (SSM's standard tier)


def read(aws: Aws, p: dict) -> dict:
    """The record, or an empty one (the survey has already proved an existing record is ours)."""
    try:
        raw = aws("ssm").get_parameter(Name=p["names"]["record"])["Parameter"]["Value"]
    except aws.exc.ClientError as e:
        if not aws.missing(e, "ParameterNotFound"):
            raise
        return json.loads(json.dumps(EMPTY))
    return {**json.loads(json.dumps(EMPTY)), **json.loads(raw)}


def write(aws: Aws, p: dict, record: dict) -> None:
    """Overwrite the record (tagged when created: the survey checks its tags like any other resource's)."""
    ssm, name = aws("ssm"), p["names"]["record"]
    keep = sorted(record["versions"], key=int)[-KEEP_VERSIONS:]
    record = {
        **record,
        "versions": {v: record["versions"][v] for v in keep},
        "live_history": record["live_history"][-KEEP_VERSIONS:],
    }
    try:
        ssm.get_parameter(Name=name)
        exists = True
    except aws.exc.ClientError as e:
        if not aws.missing(e, "ParameterNotFound"):
            raise
        exists = False
    ssm.put_parameter(
        Name=name,
        Value=json.dumps(record, separators=(",", ":")),
        Type="String",
        Overwrite=exists,
        Description="What the deployer must remember about this stack",
        **({} if exists else {"Tags": tag_list(p["tags"])}),
    )


def update(aws: Aws, p: dict, **changes) -> dict:
    """Read, change and write back in one step; returns the new record."""
    r = read(aws, p)
    r.update(changes)
    write(aws, p, r)
    return r
