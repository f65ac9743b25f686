"""Deploy the forecaster to AWS with boto3 - safely, cheaply, and touching only what is ours.

    python lambda/deploy.py deploy   [--api rest|http|url] [--url-auth none|iam] [--allow-public] [--ledger on|off]
                                     [--canary PCT [--canary-minutes M]] [--arch arm64] [--snapstart]
                                     [--param NAME=VALUE ...] [--region R] [--profile P] [--endpoint-url URL]
    python lambda/deploy.py status   [--json] [--show-key]
    python lambda/deploy.py rollback [--to VERSION]
    python lambda/deploy.py teardown [--purge]
    python lambda/deploy.py plan     [--json]          # what the template says, as deploy.py will apply it

Every setting comes from lambda/template.yaml, so `sam deploy` and this script build the same thing. A deploy:
  1. checks every parameter against the template (AllowedValues, AllowedPattern) and AWS's bounds, refuses a
     runtime AWS blocks, and any name collision with a resource that is not ours - before anything changes;
  2. runs the built zips on the runtime's CPython with the sample events, and uploads nothing that fails;
  3. publishes a version, invokes it, records whether it passed, and moves `live` only if it did - or shifts
     --canary percent to it, watches that version's own errors, latency and 5xx lines, then promotes or rolls back;
  4. keeps the front door that is live (or the one --api names) in front of `live`, and removes the others.
Rollback goes only to versions that passed their check (by default the one `live` was on before) and cancels
a canary. The parts live in lambda/deployer/ (its __init__ lists them).
"""

from __future__ import annotations

import sys
from pathlib import Path

LAMBDA_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(LAMBDA_DIR))
if str(LAMBDA_DIR.parent) not in sys.path:
    sys.path.append(str(LAMBDA_DIR.parent))  # models/ (lambda tooling may import it)

from deployer.aws import Aws, Collision, DeployError  # noqa: E402
from deployer.cli import main  # noqa: E402
from deployer.pipeline import deploy, validated_plan  # noqa: E402
from deployer.plan import alarm_configs, function_config, plan, usage_plan_config  # noqa: E402

__all__ = [
    "Aws",
    "Collision",
    "DeployError",
    "alarm_configs",
    "deploy",
    "function_config",
    "main",
    "plan",
    "rollback",
    "status",
    "teardown",
    "usage_plan_config",
]


def status(aws: Aws, params: dict | None = None, show_key: bool = False) -> dict:
    """What is deployed (the dashboard reads it through `status --json`)."""
    from deployer import status as st

    return st.status(aws, validated_plan(params), show_key=show_key)


def rollback(aws: Aws, to: str | None = None, params: dict | None = None) -> dict:
    """Move `live` back to a version that passed its check, or cancel a canary."""
    from deployer import release
    from deployer.survey import survey

    p = validated_plan(params)
    survey(aws, p)  # a foreign namesake stops rollback too
    return release.rollback(aws, p, to)


def teardown(aws: Aws, purge: bool = False, params: dict | None = None) -> dict:
    """Delete what this stack owns."""
    from deployer import teardown as td

    return td.teardown(aws, validated_plan(params), purge=purge)


if __name__ == "__main__":
    sys.exit(main(doc=__doc__))
