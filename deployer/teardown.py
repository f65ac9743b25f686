"""`python -m deployer teardown`: delete what this stack owns, in the reverse order of the survey's kinds - nothing else."""

from __future__ import annotations

from .aws import Aws, say
from .front_doors import drop_permission
from .layers import adopt_all
from .survey import KINDS, survey


def teardown(aws: Aws, p: dict, purge: bool = False) -> dict:
    """Delete what this stack owns - and nothing that merely shares a name with it."""
    found = survey(aws, p)  # a foreign namesake stops teardown before it deletes anything
    if found.record:
        claimed = adopt_all(aws, p)  # a version of either layer an interrupted deploy published is ours to delete
        if claimed:
            found = survey(aws, p)
    removed: list[str] = []
    if found.function:
        for sid in ("apigateway-rest", "apigateway-http", "url-invoke-url", "url-invoke-function"):
            drop_permission(aws, p, sid)
    for kind in reversed(KINDS):
        item = getattr(found, kind.field)
        if not item or kind.delete is None or (kind.purge_only and not purge):
            continue
        what = kind.delete(aws, p, item)
        if what:
            removed.append(what)
    for r in removed:
        say("teardown", f"deleted {r}")
    kept = found.bucket["Name"] if found.bucket and not purge else None
    if kept:
        say("teardown", f"kept the versioned model bucket s3://{kept} (pass --purge to delete it)")
    return {"removed": removed, "kept_bucket": kept}
