"""`python -m deployer deploy`: validate, survey, check, upload, publish, verify, promote, front door, alarms - in that order."""

from __future__ import annotations

import hashlib
import json

import settings

from . import ledger
from .aws import Aws, DeployError, say
from .front_doors import choose, step_front_door
from .plan import plan
from .release import repair_canary, step_alias, step_publish, step_verify
from .steps import Context, check_package, step_alarms, step_bucket, step_function, step_key, step_layer, step_logs, step_role
from .survey import survey
from .validate import check_function, check_params, check_runtime


def validated_plan(params: dict | None = None, template: dict | None = None) -> dict:
    """The plan, after every parameter and function setting has passed the template's and AWS's rules."""
    template = template or settings.load_template()
    check_params(template, dict(params or {}))
    p = plan(template, params)
    check_function(p["function"])
    return p


def deploy(
    aws: Aws,
    build: bool = True,
    params: dict | None = None,
    canary: float | None = None,
    canary_minutes: float = 10.0,
    verify: bool = True,
    check: bool = True,
    poll_s: float = 30.0,
    allow_public: bool = False,
) -> dict:
    """Each step says what it did; nothing is created before validation and the survey pass."""
    import package

    template = settings.load_template()
    params = dict(params or {})
    p = validated_plan(params, template)
    found = survey(aws, p)  # raises before anything is created: collisions, foreign resources, a bad key
    params, kept = choose(aws, p, found, params, allow_public)
    p = validated_plan(params, template)
    verdict = check_runtime(p["function"]["Runtime"], creating=found.function is None)
    if verdict.state == "deprecating":
        print(f"WARNING: {verdict.message}", flush=True)
    repaired = repair_canary(aws, p) if found.function else None  # a split nobody watches goes back to its primary
    if repaired:
        say("repair", repaired)
    total = 14
    step = iter(f"{i}/{total}" for i in range(1, total + 1))
    where = f"account {aws.account()}, region {aws.region}{f', endpoint {aws.endpoint_url}' if aws.endpoint_url else ''}"
    say(next(step), f"{where}; {verdict.message}; every named resource is ours or absent" + (f"; {kept}" if kept else ""))
    target = package.Target.from_template(arch=p["function"]["Architectures"][0])
    fn_zip, layer_zip = package.ensure_built(quiet=True, target=target) if build else package.paths(target)
    ledger_zips = (None, None)
    if p["ledger"]["enabled"]:  # its layer is a heavy build: only a deploy that deploys the ledger makes it
        built = package.ensure_ledger_built(layer=True, quiet=True, target=target) if build else None
        ledger_zips = built or package.ledger_paths(target)
        missing = [z.name for z in ledger_zips if not z.exists()]
        if missing:
            raise DeployError(
                f"--ledger on needs {' and '.join(missing)} in dist/: run `python lambda/package.py --ledger` "
                "(or deploy without --no-build). Nothing was created"
            )
    ctx = Context(aws, p, template, params, found)
    say(next(step), check_package(ctx, fn_zip, layer_zip) if check else "package check skipped (check=False)")
    manifest = json.loads((package.RUNTIME_SRC / "manifest.json").read_text())
    say(next(step), step_key(ctx))
    ctx.key_sha = hashlib.sha256(ctx.key.encode()).hexdigest()
    say(next(step), step_bucket(ctx, manifest, fn_zip))
    say(next(step), step_role(ctx))
    say(next(step), step_layer(ctx, layer_zip))
    say(next(step), step_logs(ctx))
    say(next(step), step_function(ctx, fn_zip))
    say(next(step), step_publish(ctx, manifest))
    say(next(step), step_verify(ctx, verify))
    say(next(step), step_alias(ctx, canary, canary_minutes, poll_s))
    ctx.found.function = ctx.found.function or {"FunctionName": p["names"]["function"]}
    say(next(step), step_front_door(ctx))
    say(next(step), step_alarms(ctx))
    say(next(step), ledger.step(ctx, *ledger_zips))
    print(f"done. Invoke URL: {ctx.url}  (front door: {p['names']['front_door']})", flush=True)
    print(
        f"  the API key is in SSM Parameter Store {p['names']['key_parameter']}; "
        "print it with `python -m deployer status --show-key`"
    )
    return {
        "url": ctx.url,
        "function": p["names"]["function"],
        "version": ctx.version,
        "previous_version": ctx.previous_version,
        "alias_arn": ctx.alias_arn,
        "layer": ctx.layer_arn,
        "bucket": ctx.bucket,
        "stage": p["names"]["stage"],
        "front_door": p["names"]["front_door"],
        "model_version": manifest["version"],
        **ctx.result,
    }
