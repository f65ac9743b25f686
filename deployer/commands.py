"""The deployer's commands as functions, for code that drives it in-process (the tests; `python -m deployer` is cli.py).

from deployer import commands as deploy
deploy.deploy(Aws(endpoint_url=...)); deploy.status(aws); deploy.rollback(aws); deploy.teardown(aws)
"""

from __future__ import annotations

from . import release
from . import status as status_
from . import teardown as teardown_
from .aws import Aws, Collision, DeployError
from .pipeline import deploy, validated_plan
from .plan import alarm_configs, function_config, plan, usage_plan_config
from .survey import survey

__all__ = [
    "Aws",
    "Collision",
    "DeployError",
    "alarm_configs",
    "deploy",
    "function_config",
    "plan",
    "rollback",
    "status",
    "teardown",
    "usage_plan_config",
    "validated_plan",
]


def status(aws: Aws, params: dict | None = None, show_key: bool = False) -> dict:
    """What is deployed (the dashboard reads it through `status --json`)."""
    return status_.status(aws, validated_plan(params), show_key=show_key)


def rollback(aws: Aws, to: str | None = None, params: dict | None = None) -> dict:
    """Move `live` back to a version that passed its check, or cancel a canary."""
    p = validated_plan(params)
    survey(aws, p)  # a foreign namesake stops rollback too
    return release.rollback(aws, p, to)


def teardown(aws: Aws, purge: bool = False, params: dict | None = None) -> dict:
    """Delete what this stack owns."""
    return teardown_.teardown(aws, validated_plan(params), purge=purge)
