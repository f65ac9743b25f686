"""The deploy's steps before a version is published: package check, key, bucket, role, layer, logs, function, alarms.

Each takes the Context (what the survey found and what earlier steps made) and returns one line saying what it did.
"""

from __future__ import annotations

import json
import platform
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import layers
from .aws import Aws, DeployError, b64sha, bucket_name, tag_list, wait_updated
from .plan import bucket_config, function_config
from .survey import Found


@dataclass
class Context:
    aws: Aws
    plan: dict
    template: dict
    params: dict
    found: Found
    key: str = ""
    key_sha: str = ""
    bucket: str = ""
    role_arn: str = ""
    layer_arn: str = ""
    version: str = ""
    previous_version: str | None = None
    alias_arn: str = ""
    url: str = ""
    result: dict = field(default_factory=dict)


MACHINES = {"x86_64": ("x86_64", "amd64"), "arm64": ("aarch64", "arm64")}


def can_run(arch: str, machine: str | None = None) -> bool:
    """Whether this machine executes `arch` code natively: nothing here emulates another instruction set."""
    return (machine or platform.machine()).lower() in MACHINES[arch]


def check_package(ctx: Context, fn_zip: Path, layer_zip: Path, machine: str | None = None) -> str:
    """Run the built zips on the runtime's CPython, isolated, with the sample events; upload nothing that fails.
    A build for another instruction set cannot run here: say so, and rely on package.py's static checks."""
    import package
    import smoke

    arch = ctx.plan["function"]["Architectures"][0]
    host = machine or platform.machine()
    if not can_run(arch, host):
        return (
            f"{arch} zips cannot run on this {host} machine (no emulation here): checked only by package.py "
            "(wheels for the target, sizes, glibc); the post-publish invoke on Lambda is the first run"
        )
    target = package.Target.from_template(arch=arch)
    failures = smoke.check(fn_zip, layer_zip, package.interpreter(target))
    if failures:
        raise DeployError(
            f"the built package failed its checks on CPython {target.python}, so nothing was uploaded:\n  "
            + "\n  ".join(failures)
        )
    return f"the built zips answer every sample event on CPython {target.python}, isolated"


def step_key(ctx: Context) -> str:
    names = ctx.plan["names"]
    if ctx.found.key_value:
        ctx.key = ctx.found.key_value
        return f"API key: reusing SSM {names['key_parameter']} (SecureString)"
    ctx.key = secrets.token_urlsafe(32)
    ctx.aws("ssm").put_parameter(
        Name=names["key_parameter"],
        Value=ctx.key,
        Type="SecureString",
        Overwrite=False,
        Description="X-API-Key for the financial forecasting API",
        Tags=tag_list(ctx.plan["tags"]),
    )
    return f"API key generated and stored in SSM {names['key_parameter']} (SecureString)"


def step_bucket(ctx: Context, manifest: dict, fn_zip: Path) -> str:
    """The versioned model bucket with the template's settings; created and tagged in one call."""
    s3, names = ctx.aws("s3"), ctx.plan["names"]
    ctx.bucket = bucket_name(ctx.aws, names["project"])
    cfg = bucket_config(ctx.template, ctx.bucket, ctx.params)
    if not ctx.found.bucket:
        region = ctx.aws.region
        location = {} if region == "us-east-1" else {"LocationConstraint": region}
        s3.create_bucket(Bucket=ctx.bucket, CreateBucketConfiguration={**location, "Tags": tag_list(ctx.plan["tags"])})
    s3.put_bucket_tagging(Bucket=ctx.bucket, Tagging={"TagSet": tag_list(ctx.plan["tags"])})  # a resumed bucket has none
    s3.put_bucket_versioning(Bucket=ctx.bucket, VersioningConfiguration=cfg["versioning"])
    s3.put_public_access_block(Bucket=ctx.bucket, PublicAccessBlockConfiguration=cfg["public_access_block"])
    s3.put_bucket_encryption(Bucket=ctx.bucket, ServerSideEncryptionConfiguration=cfg["encryption"])
    s3.put_bucket_lifecycle_configuration(Bucket=ctx.bucket, LifecycleConfiguration=cfg["lifecycle"])
    import package

    prefix = f"models/{manifest['version']}"
    have = {o["Key"] for o in s3.list_objects_v2(Bucket=ctx.bucket, Prefix=prefix + "/").get("Contents", [])}
    uploads = {f"{prefix}/{f.name}": f for f in sorted(package.RUNTIME_SRC.iterdir()) if f.is_file()}
    uploads[f"{prefix}/lambda_function.zip"] = fn_zip
    for key, f in uploads.items():
        if key not in have:  # a model version's artifacts are written once; the bucket keeps their history
            s3.put_object(Bucket=ctx.bucket, Key=key, Body=f.read_bytes())
    s3.put_bucket_policy(Bucket=ctx.bucket, Policy=json.dumps(cfg["policy"]))  # TLS only: after the uploads (moto reads it)
    days = [
        r["NoncurrentVersionExpiration"]["NoncurrentDays"]
        for r in cfg["lifecycle"]["Rules"]
        if "NoncurrentVersionExpiration" in r
    ]
    return (
        f"bucket s3://{ctx.bucket} ({'exists' if ctx.found.bucket else 'created'}; versioned, TLS only, encrypted, "
        f"old versions expire after {days[0] if days else '-'} days): model {manifest['version']} uploaded"
    )


def step_role(ctx: Context) -> str:
    iam, names, role = ctx.aws("iam"), ctx.plan["names"], ctx.plan["role"]
    if ctx.found.role is None:
        ctx.role_arn = iam.create_role(
            RoleName=names["role"],
            AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"]),
            Description=role["Description"],
            Tags=tag_list(ctx.plan["tags"]),
        )["Role"]["Arn"]
        state = "created"
    else:
        ctx.role_arn, state = ctx.found.role["Arn"], "exists"
    for policy in role["ManagedPolicyArns"]:
        iam.attach_role_policy(RoleName=names["role"], PolicyArn=policy)
    return f"IAM role {names['role']} ({state}): exactly {len(role['ManagedPolicyArns'])} managed policies, no others"


def step_layer(ctx: Context, layer_zip: Path) -> str:
    """Publish the layer unless a version we published holds this exact build (layers.publish records the intent first)."""
    name, fn = ctx.plan["names"]["layer"], ctx.plan["function"]
    done = layers.publish(ctx.aws, ctx.plan, "layer", layer_zip, "numpy, onnxruntime, orjson", fn["Runtime"], fn["Architectures"])
    ctx.layer_arn = done.arn
    version = done.arn.rsplit(":", 1)[1]
    recovered = f" (recovered {done.claimed})" if done.claimed else ""
    if done.reused:
        return f"layer {name}: version {version} already holds this build{recovered}"
    return f"layer {name}: published {version} ({layer_zip.stat().st_size / 1e6:.1f} MB){recovered}"


def step_function(ctx: Context, fn_zip: Path) -> str:
    lam = ctx.aws("lambda")
    cfg = function_config(ctx.template, ctx.key_sha, ctx.params)
    name = cfg["FunctionName"]
    if ctx.found.function is None:
        for attempt in range(10):  # a new role takes a few seconds to become assumable on AWS
            try:
                lam.create_function(
                    **cfg,
                    Role=ctx.role_arn,
                    Code={"ZipFile": fn_zip.read_bytes()},
                    Layers=[ctx.layer_arn],
                    Publish=False,
                    Tags=ctx.plan["tags"],
                )
                break
            except ctx.aws.exc.ClientError as e:
                if ctx.aws.code(e) == "InvalidParameterValueException" and "role" in str(e).lower() and attempt < 9:
                    time.sleep(3)
                    continue
                raise
        state = "created"
    else:
        current = ctx.found.function
        arch = cfg.pop("Architectures")  # changed with the code; update_function_configuration has no such field
        if current.get("CodeSha256") != b64sha(fn_zip) or current.get("Architectures", ["x86_64"]) != arch:
            lam.update_function_code(FunctionName=name, ZipFile=fn_zip.read_bytes(), Architectures=arch)
            wait_updated(ctx.aws, name)
        lam.update_function_configuration(**cfg, Role=ctx.role_arn, Layers=[ctx.layer_arn])
        cfg["Architectures"] = arch
        state = "updated"
    wait_updated(ctx.aws, name)
    snap = cfg["SnapStart"]["ApplyOn"]
    return (
        f"function {name} ({state}): {cfg['Runtime']} {cfg['Architectures'][0]}, {cfg['MemorySize']} MB, {cfg['Timeout']} s, "
        f"tracing {cfg['TracingConfig']['Mode']}, SnapStart {'off' if snap == 'None' else snap}"
    )


def step_logs(ctx: Context) -> str:
    """The function's log group (tagged, kept N days) and the metric filters that count its own 5xx answers."""
    logs, names, days = ctx.aws("logs"), ctx.plan["names"], ctx.plan["log_retention_days"]
    if not ctx.found.log_group:
        try:
            logs.create_log_group(logGroupName=names["log_group"], tags=ctx.plan["tags"])
        except ctx.aws.exc.ClientError as e:
            if ctx.aws.code(e) != "ResourceAlreadyExistsException":
                raise
    logs.put_retention_policy(logGroupName=names["log_group"], retentionInDays=days)
    for f in ctx.plan["metric_filters"]:
        logs.put_metric_filter(logGroupName=names["log_group"], **f)
    metrics = ", ".join(t["metricName"] for f in ctx.plan["metric_filters"] for t in f["metricTransformations"])
    return f"log group {names['log_group']}: kept {days} days; metrics from its lines: {metrics or 'none'}"


def step_alarms(ctx: Context) -> str:
    cw = ctx.aws("cloudwatch")
    for a in ctx.plan["alarms"]:
        cw.put_metric_alarm(**a, Tags=tag_list(ctx.plan["tags"]))
    return f"CloudWatch alarms: {', '.join(a['AlarmName'] for a in ctx.plan['alarms'])}"
