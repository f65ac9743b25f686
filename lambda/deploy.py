"""Deploy the forecaster to AWS with boto3 - safely, cheaply, and touching only what is ours.

    python lambda/deploy.py deploy   [--api rest|http|url] [--url-auth none|iam] [--canary PCT [--canary-minutes M]]
                                     [--arch arm64] [--snapstart] [--region R] [--profile P] [--endpoint-url URL]
    python lambda/deploy.py status   [--json] [--show-key]
    python lambda/deploy.py rollback [--to VERSION]
    python lambda/deploy.py teardown [--purge]
    python lambda/deploy.py plan     [--json]          # what the template says, as deploy.py will apply it

Every setting comes from lambda/template.yaml (names, runtime, memory, alarms, usage plan, gateway responses,
front doors), so `sam deploy` and this script build the same thing. A deploy:
  1. refuses a runtime AWS blocks, and any name collision with a resource that is not ours (every resource it
     makes carries the template's tags; an untagged or foreign one stops the deploy before anything changes);
  2. runs the built zips on the runtime's CPython with the sample events, and uploads nothing that fails;
  3. publishes a version, invokes that version directly, and moves the alias `live` only if it answers -
     or shifts --canary percent to it, watches the alarms, then promotes or rolls back by itself;
  4. puts the chosen front door in front of `live` and removes the other ones, so nothing is left billing.
The API key lives in SSM Parameter Store (SecureString); the function holds only its SHA-256.
--endpoint-url points every client at an emulator (moto server), which cannot run code: pass --no-verify there.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LAMBDA_DIR = Path(__file__).resolve().parent
ROOT = LAMBDA_DIR.parent
sys.path.insert(0, str(LAMBDA_DIR))

import lifecycle  # noqa: E402
import settings  # noqa: E402

EVENTS = LAMBDA_DIR / "events"
MIN_KEY_LENGTH = 20  # API Gateway refuses shorter API keys


class DeployError(Exception):
    """A failure with a message that says what to do; printed without a traceback."""


class Collision(DeployError):
    """A resource with our name exists but is not ours: stop before changing anything."""


def say(step: str, msg: str) -> None:
    print(f"[{step}] {msg}", flush=True)


# --- what the template says, as boto3 arguments (pure: tests compare these with samtranslator) -----


def function_config(template: dict, key_sha256: str, params: dict | None = None) -> dict:
    """create_function / update_function_configuration arguments from template.yaml (`params` as --parameter-overrides)."""
    s = settings.function_settings(template, {"ApiKeySha256": key_sha256, **(params or {})})
    return {
        "FunctionName": s["FunctionName"],
        "Runtime": s["Runtime"],
        "Handler": s["Handler"],
        "MemorySize": int(s["MemorySize"]),
        "Timeout": int(s["Timeout"]),
        "Description": s.get("Description", ""),
        "Environment": {"Variables": {k: str(v) for k, v in s["Environment"]["Variables"].items()}},
        "TracingConfig": {"Mode": s.get("Tracing", "PassThrough")},
        "Architectures": list(s.get("Architectures", ["x86_64"])),
        "SnapStart": {"ApplyOn": s.get("SnapStart", {}).get("ApplyOn", "None")},
    }


def usage_plan_config(template: dict, params: dict | None = None) -> dict:
    props = settings.resource_props(template, "UsagePlan", params)
    return {
        "throttle": {"rateLimit": float(props["Throttle"]["RateLimit"]), "burstLimit": int(props["Throttle"]["BurstLimit"])},
        "quota": {"limit": int(props["Quota"]["Limit"]), "period": props["Quota"]["Period"]},
    }


def alarm_configs(template: dict, params: dict | None = None) -> list[dict]:
    """put_metric_alarm arguments for every AWS::CloudWatch::Alarm in the template."""
    out = []
    for logical_id in settings.resources_of_type(template, "AWS::CloudWatch::Alarm"):
        p = settings.resource_props(template, logical_id, params)
        cfg = {
            k: p[k]
            for k in (
                "AlarmName",
                "AlarmDescription",
                "Namespace",
                "MetricName",
                "Period",
                "EvaluationPeriods",
                "ComparisonOperator",
                "TreatMissingData",
            )
            if k in p
        }
        cfg["Period"], cfg["EvaluationPeriods"] = int(cfg["Period"]), int(cfg["EvaluationPeriods"])
        cfg["Threshold"] = float(p["Threshold"])
        cfg["Dimensions"] = p["Dimensions"]
        if "ExtendedStatistic" in p:
            cfg["ExtendedStatistic"] = p["ExtendedStatistic"]
        else:
            cfg["Statistic"] = p["Statistic"]
        out.append(cfg)
    return out


def gateway_responses(template: dict) -> dict:
    """{response type: {header: value}} from the REST API's GatewayResponses."""
    out = {}
    for kind, spec in template["Resources"]["ForecastApi"]["Properties"].get("GatewayResponses", {}).items():
        out[kind] = dict(spec.get("ResponseParameters", {}).get("Headers", {}))
    return out


def rest_api_config(template: dict, params: dict | None = None) -> dict:
    """Stage, access log, validator and throttling settings of the REST front door."""
    props = settings.resource_props(template, "ForecastApi", params)
    body = template["Resources"]["ForecastApi"]["Properties"]["DefinitionBody"]
    [throttle] = props["MethodSettings"]
    validators = body.get("x-amazon-apigateway-request-validators", {})
    validated = [
        {"path": path, "method": method.upper(), "validator": op["x-amazon-apigateway-request-validator"]}
        for path, ops in body["paths"].items()
        for method, op in ops.items()
        if "x-amazon-apigateway-request-validator" in op
    ]
    return {
        "throttle": {"rateLimit": float(throttle["ThrottlingRateLimit"]), "burstLimit": int(throttle["ThrottlingBurstLimit"])},
        "tracing": bool(props.get("TracingEnabled")),
        "access_log_format": props["AccessLogSetting"]["Format"],
        "validators": validators,
        "validated": validated,
        "gateway_responses": gateway_responses(template),
        "endpoint": props["EndpointConfiguration"]["Type"],
        "key_source": body.get("x-amazon-apigateway-api-key-source", "HEADER"),
    }


def http_api_config(template: dict, params: dict | None = None) -> dict:
    api = settings.resource_props(template, "HttpApi", params)
    stage = settings.resource_props(template, "HttpStage", params)
    routes = sorted(
        settings.resource_props(template, r, params)["RouteKey"]
        for r in settings.resources_of_type(template, "AWS::ApiGatewayV2::Route")
    )
    integ = settings.resource_props(template, "HttpIntegration", params)
    return {
        "cors": api["CorsConfiguration"],
        "description": api.get("Description", ""),
        "routes": routes,
        "payload_format": integ["PayloadFormatVersion"],
        "stage": stage["StageName"],
        "throttle": {
            "ThrottlingRateLimit": float(stage["DefaultRouteSettings"]["ThrottlingRateLimit"]),
            "ThrottlingBurstLimit": int(stage["DefaultRouteSettings"]["ThrottlingBurstLimit"]),
        },
    }


def url_config(template: dict, params: dict | None = None) -> dict:
    p = settings.params_with_defaults(template, params)
    url = settings.resource_props(template, "FunctionUrl", params)
    return {"auth": p["UrlAuthType"], "cors": url["Cors"], "reserved_concurrency": int(p["ReservedConcurrency"])}


def plan(template: dict | None = None, params: dict | None = None) -> dict:
    """Everything a deploy applies, resolved: what `deploy.py plan --json` prints and the dashboard reads."""
    template = template or settings.load_template()
    p = settings.params_with_defaults(template, params)
    return {
        "names": settings.names(template, params),
        "tags": settings.tags(template, params),
        "function": function_config(template, "0" * 64, params),
        "routes": settings.api_routes(template),
        "usage_plan": usage_plan_config(template, params),
        "alarms": alarm_configs(template, params),
        "rest": rest_api_config(template, params),
        "http": http_api_config(template, params),
        "url": url_config(template, params),
        "role": settings.resource_props(template, "FunctionRole", params),
        "log_retention_days": int(p["LogRetentionDays"]),
        "bucket": {"noncurrent_days": int(p["NoncurrentModelDays"])},
        "front_doors": list(settings.FRONT_DOORS),
    }


def check_runtime(runtime: str, creating: bool, today=None) -> lifecycle.Verdict:
    """Refuse a runtime AWS blocks before anything is created; warn when its deprecation is near."""
    v = lifecycle.verdict(runtime, today=today, creating=creating)
    if v.blocked:
        raise DeployError(f"refusing to deploy: {v.message}. Nothing was created or changed.")
    return v


# --- AWS plumbing -----------------------------------------------------------------------------------


class Aws:
    def __init__(self, region: str | None, profile: str | None, endpoint_url: str | None):
        import boto3
        import botocore.config
        import botocore.exceptions

        self.exc = botocore.exceptions
        try:
            self.session = boto3.Session(profile_name=profile, region_name=region)
        except self.exc.ProfileNotFound:
            raise DeployError(f"AWS profile {profile!r} is not configured; run `aws configure --profile {profile}`") from None
        self.region = self.session.region_name
        if not self.region:
            raise DeployError("no AWS region: pass --region (e.g. us-east-1) or set AWS_DEFAULT_REGION")
        if self.session.get_credentials() is None:
            raise DeployError(
                "no AWS credentials: run `aws configure`, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or pass --profile" + (" (an emulator accepts any values, e.g. testing/testing)" if endpoint_url else "")
            )
        self.endpoint_url = endpoint_url
        self.config = botocore.config.Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        self._clients: dict = {}
        self._account: str | None = None

    def __call__(self, service: str):
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url, config=self.config)
        return self._clients[service]

    def code(self, err) -> str:
        return err.response.get("Error", {}).get("Code", "") if hasattr(err, "response") else ""

    def missing(self, err, *codes: str) -> bool:
        return isinstance(err, self.exc.ClientError) and self.code(err) in (
            codes or ("ResourceNotFoundException", "NotFoundException")
        )

    def account(self) -> str:
        if self._account is None:
            self._account = self("sts").get_caller_identity()["Account"]
        return self._account

    def rest_url(self, api_id: str, stage: str) -> str:
        if self.endpoint_url:  # moto's address for a deployed stage
            return f"{self.endpoint_url.rstrip('/')}/restapis/{api_id}/{stage}/_user_request_"
        return f"https://{api_id}.execute-api.{self.region}.amazonaws.com/{stage}"


def bucket_name(aws: Aws, project: str) -> str:
    return f"{project}-models-{aws.account()}-{aws.region}"


def _b64sha(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def is_ours(tags: dict | None, want: dict) -> bool:
    tags = tags or {}
    return all(tags.get(k) == v for k, v in want.items())


def _tag_list(tags: dict) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _refuse(kind: str, name: str, found_tags: dict | None, want: dict, extra: str = "") -> Collision:
    have = ", ".join(f"{k}={v}" for k, v in (found_tags or {}).items()) or "no tags"
    return Collision(
        f"a {kind} named {name!r} already exists and is not this stack's (it has {have}; ours carry "
        f"{', '.join(f'{k}={v}' for k, v in want.items())}){extra}. Nothing was created or changed: choose other "
        "names with the template's parameters (FunctionName, ApiName, ...) or remove that resource yourself"
    )


# --- finding what exists, whoever owns it -------------------------------------------------------------


def _find_apigw(aws: Aws, operation: str, name: str, **kwargs) -> list[dict]:
    """Every API Gateway (v1) item called `name` across every page of `operation`."""
    out = []
    for page in aws("apigateway").get_paginator(operation).paginate(**kwargs):
        out += [item for item in page["items"] if item["name"] == name]
    return out


def find_rest_apis(aws: Aws, name: str) -> list[dict]:
    return _find_apigw(aws, "get_rest_apis", name)


def find_usage_plans(aws: Aws, name: str) -> list[dict]:
    return _find_apigw(aws, "get_usage_plans", name)


def find_api_keys(aws: Aws, name: str) -> list[dict]:
    return _find_apigw(aws, "get_api_keys", name, includeValues=True)


def find_http_apis(aws: Aws, name: str) -> list[dict]:
    out, token = [], None
    while True:
        page = aws("apigatewayv2").get_apis(**({"NextToken": token} if token else {}))
        out += [a for a in page.get("Items", []) if a["Name"] == name and a.get("ProtocolType") == "HTTP"]
        token = page.get("NextToken")
        if not token:
            return out


def _one_of_ours(kind: str, name: str, items: list[dict], want: dict, tags_of) -> dict | None:
    """The one item that is ours; a foreign namesake is a Collision (whether or not one of ours exists too)."""
    ours = [i for i in items if is_ours(tags_of(i), want)]
    foreign = [i for i in items if not is_ours(tags_of(i), want)]
    if foreign:
        raise _refuse(kind, name, tags_of(foreign[0]), want)
    return ours[0] if ours else None


def function_tags(aws: Aws, arn: str) -> dict:
    return aws("lambda").list_tags(Resource=arn).get("Tags", {})


@dataclass
class Found:
    """What a deploy found before changing anything: each entry is ours (None when absent)."""

    function: dict | None = None
    role: dict | None = None
    key_value: str | None = None
    rest_api: dict | None = None
    http_api: dict | None = None
    api_key: dict | None = None
    usage_plan: dict | None = None
    log_group: bool = False
    bucket: bool = False
    notes: list[str] = field(default_factory=list)


def survey(aws: Aws, p: dict) -> Found:
    """Look up every named resource and prove each is ours. Raises Collision before anything is created."""
    names, want = p["names"], p["tags"]
    found = Found()
    lam, iam, ssm = aws("lambda"), aws("iam"), aws("ssm")
    try:
        fn = lam.get_function(FunctionName=names["function"])
        if not is_ours(fn.get("Tags"), want):
            raise _refuse("Lambda function", names["function"], fn.get("Tags"), want)
        found.function = fn["Configuration"]
    except aws.exc.ClientError as e:
        if not aws.missing(e):
            raise
    try:
        role = iam.get_role(RoleName=names["role"])["Role"]
        tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=names["role"]).get("Tags", [])}
        if not is_ours(tags, want):
            raise _refuse("IAM role", names["role"], tags, want)
        attached = {a["PolicyArn"] for a in iam.list_attached_role_policies(RoleName=names["role"])["AttachedPolicies"]}
        inline = iam.list_role_policies(RoleName=names["role"]).get("PolicyNames", [])
        expected = set(p["role"]["ManagedPolicyArns"])
        if attached - expected or inline:
            extra = sorted(attached - expected) + [f"inline:{n}" for n in inline]
            raise Collision(
                f"IAM role {names['role']!r} carries our tags but also policies that are not ours ({', '.join(extra)}): "
                "the function would run with them. Nothing was changed; detach them or delete the role, then deploy again"
            )
        found.role = role
    except aws.exc.ClientError as e:
        if not aws.missing(e, "NoSuchEntity"):
            raise
    try:
        param = ssm.get_parameter(Name=names["key_parameter"], WithDecryption=True)["Parameter"]
        tags = {
            t["Key"]: t["Value"]
            for t in ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=names["key_parameter"]).get("TagList", [])
        }
        if not is_ours(tags, want):
            raise _refuse("SSM parameter", names["key_parameter"], tags, want)
        if param["Type"] != "SecureString":
            raise Collision(
                f"SSM parameter {names['key_parameter']!r} holds the API key as {param['Type']}, in plaintext: refusing "
                "to use it. Delete it (deploy makes a SecureString) or make it a SecureString. Nothing was changed"
            )
        if len(param["Value"]) < MIN_KEY_LENGTH:
            raise DeployError(
                f"the API key in SSM {names['key_parameter']!r} has {len(param['Value'])} characters; API Gateway "
                f"needs at least {MIN_KEY_LENGTH}. Put a longer one there, or delete it to have one generated. "
                "Nothing was changed"
            )
        found.key_value = param["Value"]
    except aws.exc.ClientError as e:
        if not aws.missing(e, "ParameterNotFound"):
            raise
    found.rest_api = _one_of_ours("REST API", names["api"], find_rest_apis(aws, names["api"]), want, lambda a: a.get("tags"))
    found.api_key = _one_of_ours("API key", names["key"], find_api_keys(aws, names["key"]), want, lambda k: k.get("tags"))
    found.usage_plan = _one_of_ours(
        "usage plan", names["plan"], find_usage_plans(aws, names["plan"]), want, lambda u: u.get("tags")
    )
    found.http_api = _one_of_ours("HTTP API", names["api"], find_http_apis(aws, names["api"]), want, lambda a: a.get("Tags"))
    logs = aws("logs")
    groups = [
        g
        for g in logs.describe_log_groups(logGroupNamePrefix=names["log_group"]).get("logGroups", [])
        if g["logGroupName"] == names["log_group"]
    ]
    if groups:
        arn = groups[0]["arn"].removesuffix(":*")
        tags = logs.list_tags_for_resource(resourceArn=arn).get("tags", {})
        if not is_ours(tags, want) and found.function is None:  # Lambda makes this group itself: ours once the function is
            raise _refuse("log group", names["log_group"], tags, want)
        found.log_group = True
    cw = aws("cloudwatch")
    for alarm in p["alarms"]:
        for a in cw.describe_alarms(AlarmNames=[alarm["AlarmName"]]).get("MetricAlarms", []):
            tags = {t["Key"]: t["Value"] for t in cw.list_tags_for_resource(ResourceARN=a["AlarmArn"]).get("Tags", [])}
            if not is_ours(tags, want):
                raise _refuse("CloudWatch alarm", alarm["AlarmName"], tags, want)
    s3 = aws("s3")
    bucket = bucket_name(aws, names["project"])
    try:
        s3.head_bucket(Bucket=bucket)
        try:
            tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket).get("TagSet", [])}
        except aws.exc.ClientError:
            tags = {}
        if not is_ours(tags, want):
            raise _refuse("S3 bucket", bucket, tags, want)
        found.bucket = True
    except aws.exc.ClientError as e:
        if aws.code(e) in ("403", "AccessDenied"):
            raise Collision(
                f"S3 bucket {bucket!r} exists and belongs to someone else (403). Nothing was created or changed; "
                "set the ProjectTag parameter to another value to use another bucket name"
            ) from None
        if aws.code(e) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    return found


# --- deploy, in named steps ---------------------------------------------------------------------------


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


def step_check_package(ctx: Context, fn_zip: Path, layer_zip: Path) -> None:
    """Run the built zips on the runtime's CPython, isolated, with the sample events; upload nothing that fails."""
    import package
    import smoke

    target = package.Target.from_template(arch="x86_64")
    failures = smoke.check(fn_zip, layer_zip, package.interpreter(target))
    if failures:
        raise DeployError(
            "the built package failed its checks on CPython "
            + target.python
            + ", so nothing was uploaded:\n  "
            + "\n  ".join(failures)
        )


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
        Tags=_tag_list(ctx.plan["tags"]),
    )
    return f"API key generated and stored in SSM {names['key_parameter']} (SecureString)"


def step_bucket(ctx: Context, manifest: dict, fn_zip: Path) -> str:
    """The versioned model bucket: TLS only, encrypted, old versions expire, tagged."""
    s3, names = ctx.aws("s3"), ctx.plan["names"]
    ctx.bucket = bucket_name(ctx.aws, names["project"])
    if not ctx.found.bucket:
        region = ctx.aws.region
        s3.create_bucket(
            Bucket=ctx.bucket, **({} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}})
        )
    s3.put_bucket_tagging(Bucket=ctx.bucket, Tagging={"TagSet": _tag_list(ctx.plan["tags"])})
    s3.put_bucket_versioning(Bucket=ctx.bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(
        Bucket=ctx.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=ctx.bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=ctx.bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-old-model-versions",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": ctx.plan["bucket"]["noncurrent_days"]},
                }
            ]
        },
    )
    import package

    prefix = f"models/{manifest['version']}"
    have = {o["Key"] for o in s3.list_objects_v2(Bucket=ctx.bucket, Prefix=prefix + "/").get("Contents", [])}
    uploads = {f"{prefix}/{f.name}": f for f in sorted(package.RUNTIME_SRC.iterdir()) if f.is_file()}
    uploads[f"{prefix}/lambda_function.zip"] = fn_zip
    for key, f in uploads.items():
        if key not in have:  # a model version's artifacts are written once; the bucket keeps their history
            s3.put_object(Bucket=ctx.bucket, Key=key, Body=f.read_bytes())
    arn = f"arn:aws:s3:::{ctx.bucket}"
    s3.put_bucket_policy(
        Bucket=ctx.bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "TlsOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [arn, f"{arn}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            }
        ),
    )
    return (
        f"bucket s3://{ctx.bucket} ({'exists' if ctx.found.bucket else 'created'}; versioned, TLS only, encrypted, "
        f"old versions expire after {ctx.plan['bucket']['noncurrent_days']} days): model {manifest['version']} uploaded"
    )


def step_role(ctx: Context) -> str:
    iam, names, role = ctx.aws("iam"), ctx.plan["names"], ctx.plan["role"]
    if ctx.found.role is None:
        ctx.role_arn = iam.create_role(
            RoleName=names["role"],
            AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"]),
            Description=role["Description"],
            Tags=_tag_list(ctx.plan["tags"]),
        )["Role"]["Arn"]
        state = "created"
    else:
        ctx.role_arn, state = ctx.found.role["Arn"], "exists"
    for policy in role["ManagedPolicyArns"]:
        iam.attach_role_policy(RoleName=names["role"], PolicyArn=policy)
    return f"IAM role {names['role']} ({state}): exactly {len(role['ManagedPolicyArns'])} managed policies, no others"


def layer_record(aws: Aws, p: dict) -> list[str]:
    """The layer versions this stack published (layers carry no tags), kept in a tagged SSM parameter."""
    try:
        return json.loads(aws("ssm").get_parameter(Name=p["names"]["layer_record"])["Parameter"]["Value"])
    except aws.exc.ClientError as e:
        if not aws.missing(e, "ParameterNotFound"):
            raise
        return []


def _write_layer_record(aws: Aws, p: dict, arns: list[str]) -> None:
    name = p["names"]["layer_record"]
    exists = _parameter_exists(aws, name)
    aws("ssm").put_parameter(
        Name=name,
        Value=json.dumps(arns),
        Type="String",
        Overwrite=exists,
        Description="Layer versions published by lambda/deploy.py",
        **({} if exists else {"Tags": _tag_list(p["tags"])}),
    )


def _parameter_exists(aws: Aws, name: str) -> bool:
    try:
        aws("ssm").get_parameter(Name=name)
        return True
    except aws.exc.ClientError as e:
        if aws.missing(e, "ParameterNotFound"):
            return False
        raise


def step_layer(ctx: Context, layer_zip: Path) -> str:
    """Publish the layer unless a version we published holds this exact build (layers cannot carry tags, so the
    versions we published are recorded in a tagged SSM parameter; teardown deletes those and no others)."""
    lam, name, fn = ctx.aws("lambda"), ctx.plan["names"]["layer"], ctx.plan["function"]
    sha = _b64sha(layer_zip)
    ours = layer_record(ctx.aws, ctx.plan)
    for v in lam.list_layer_versions(LayerName=name).get("LayerVersions", []):
        if v["LayerVersionArn"] in ours and v.get("Description", "").endswith(sha):
            ctx.layer_arn = v["LayerVersionArn"]
            return f"layer {name}: version {ctx.layer_arn.rsplit(':', 1)[1]} already holds this build"
    ctx.layer_arn = lam.publish_layer_version(
        LayerName=name,
        Description=f"numpy, onnxruntime, orjson; sha256 {sha}",
        Content={"ZipFile": layer_zip.read_bytes()},
        CompatibleRuntimes=[fn["Runtime"]],
        CompatibleArchitectures=fn["Architectures"],
    )["LayerVersionArn"]
    _write_layer_record(ctx.aws, ctx.plan, ours + [ctx.layer_arn])
    return f"layer {name}: published {ctx.layer_arn.rsplit(':', 1)[1]} ({layer_zip.stat().st_size / 1e6:.1f} MB)"


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
        if current.get("CodeSha256") != _b64sha(fn_zip) or current.get("Architectures", ["x86_64"]) != arch:
            lam.update_function_code(FunctionName=name, ZipFile=fn_zip.read_bytes(), Architectures=arch)
            _wait_updated(ctx.aws, name)
        lam.update_function_configuration(**cfg, Role=ctx.role_arn, Layers=[ctx.layer_arn])
        cfg["Architectures"] = arch
        state = "updated"
    _wait_updated(ctx.aws, name)
    return (
        f"function {name} ({state}): {cfg['Runtime']} {cfg['Architectures'][0]}, {cfg['MemorySize']} MB, {cfg['Timeout']} s, "
        f"tracing {cfg['TracingConfig']['Mode']}, SnapStart {cfg['SnapStart']['ApplyOn']}"
    )


def step_logs(ctx: Context) -> str:
    logs, names, days = ctx.aws("logs"), ctx.plan["names"], ctx.plan["log_retention_days"]
    if not ctx.found.log_group:
        try:
            logs.create_log_group(logGroupName=names["log_group"], tags=ctx.plan["tags"])
        except ctx.aws.exc.ClientError as e:
            if ctx.aws.code(e) != "ResourceAlreadyExistsException":
                raise
    logs.put_retention_policy(logGroupName=names["log_group"], retentionInDays=days)
    return f"log group {names['log_group']}: kept {days} days"


def step_publish(ctx: Context, manifest: dict) -> str:
    lam, names = ctx.aws("lambda"), ctx.plan["names"]
    try:
        ctx.previous_version = lam.get_alias(FunctionName=names["function"], Name=names["alias"])["FunctionVersion"]
    except ctx.aws.exc.ClientError as e:
        if not ctx.aws.missing(e):
            raise
    ctx.version = lam.publish_version(FunctionName=names["function"], Description=f"model {manifest['version']}")["Version"]
    ctx.alias_arn = f"arn:aws:lambda:{ctx.aws.region}:{ctx.aws.account()}:function:{names['function']}:{names['alias']}"
    return (
        f"published version {ctx.version} (model {manifest['version']}); `{names['alias']}` is still on "
        f"{ctx.previous_version or 'nothing yet'}"
    )


def verify_version(lam, function: str, version: str) -> list[str]:
    """Invoke the new version itself (not the alias) with the direct-invoke sample and a /health event."""
    checks = [
        (
            "direct invoke (direct_invoke.json)",
            json.loads((EVENTS / "direct_invoke.json").read_text()),
            lambda a: isinstance(a, dict) and isinstance(a.get("prediction"), int | float),
        ),
        (
            "GET /health (http_v2_health.json)",
            json.loads((EVENTS / "http_v2_health.json").read_text()),
            lambda a: isinstance(a, dict) and a.get("statusCode") == 200,
        ),
    ]
    failures = []
    for what, event, ok in checks:
        r = lam.invoke(FunctionName=function, Qualifier=version, Payload=json.dumps(event).encode())
        raw = r["Payload"].read()
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = raw.decode(errors="replace")
        if r.get("FunctionError") or not ok(answer):
            failures.append(f"{what}: {r.get('FunctionError') or 'unexpected answer'}: {str(answer)[:400]}")
    return failures


def step_verify(ctx: Context) -> str:
    names = ctx.plan["names"]
    failures = verify_version(ctx.aws("lambda"), names["function"], ctx.version)
    if failures:
        keep = ctx.previous_version or "no version (it was never moved)"
        raise DeployError(
            f"version {ctx.version} did not answer as it must, so `{names['alias']}` stays on {keep}:\n  " + "\n  ".join(failures)
        )
    return f"version {ctx.version} answers the direct-invoke sample and /health"


def _set_alias(ctx: Context, version: str, routing: dict | None = None) -> None:
    lam, names = ctx.aws("lambda"), ctx.plan["names"]
    routing_cfg = {"AdditionalVersionWeights": routing or {}}
    try:
        lam.update_alias(FunctionName=names["function"], Name=names["alias"], FunctionVersion=version, RoutingConfig=routing_cfg)
    except ctx.aws.exc.ClientError as e:
        if not ctx.aws.missing(e):
            raise
        lam.create_alias(FunctionName=names["function"], Name=names["alias"], FunctionVersion=version, RoutingConfig=routing_cfg)


def alarm_states(aws: Aws, p: dict) -> dict:
    names = [a["AlarmName"] for a in p["alarms"]]
    return {a["AlarmName"]: a["StateValue"] for a in aws("cloudwatch").describe_alarms(AlarmNames=names).get("MetricAlarms", [])}


def step_alias(ctx: Context, canary: float | None, canary_minutes: float, poll_s: float = 30.0) -> str:
    """Move `live` to the new version - at once, or through a canary watched against the alarms."""
    names = ctx.plan["names"]
    if not canary or ctx.previous_version is None:
        _set_alias(ctx, ctx.version)
        return f"alias {names['alias']} -> version {ctx.version}" + (" (first deploy: no canary)" if canary else "")
    share = canary / 100
    _set_alias(ctx, ctx.previous_version, {ctx.version: share})
    say(
        "canary",
        f"{canary:g}% of {names['alias']} goes to version {ctx.version}, the rest to {ctx.previous_version}; "
        f"watching {', '.join(a['AlarmName'] for a in ctx.plan['alarms'])} for {canary_minutes:g} min",
    )
    t_end = time.monotonic() + canary_minutes * 60
    while True:
        states = alarm_states(ctx.aws, ctx.plan)
        firing = sorted(n for n, s in states.items() if s == "ALARM")
        left = t_end - time.monotonic()
        if firing:
            _set_alias(ctx, ctx.previous_version)
            raise DeployError(
                f"canary rolled back: {', '.join(firing)} fired while version {ctx.version} took {canary:g}% "
                f"of traffic; `{names['alias']}` is back on version {ctx.previous_version} only"
            )
        if left <= 0:
            break
        say("canary", f"{left / 60:.1f} min left; alarms: " + ", ".join(f"{n} {s}" for n, s in sorted(states.items())))
        time.sleep(min(poll_s, max(0.0, left)))
    _set_alias(ctx, ctx.version)
    return f"canary passed: alias {names['alias']} -> version {ctx.version} (100%)"


def _wait_updated(aws: Aws, name: str, timeout_s: float = 120) -> None:
    lam = aws("lambda")
    t_end = time.time() + timeout_s
    while time.time() < t_end:
        c = lam.get_function_configuration(FunctionName=name)
        if c.get("State", "Active") != "Pending" and c.get("LastUpdateStatus", "Successful") != "InProgress":
            if c.get("State") == "Failed" or c.get("LastUpdateStatus") == "Failed":
                raise DeployError(f"function {name} failed to update: {c.get('StateReason') or c.get('LastUpdateStatusReason')}")
            return
        time.sleep(1)
    raise DeployError(f"function {name} is still updating after {timeout_s:.0f} s; run deploy again")


# --- front doors ----------------------------------------------------------------------------------------


def _permission(ctx: Context, sid: str, **kwargs) -> None:
    lam, names = ctx.aws("lambda"), ctx.plan["names"]
    try:
        lam.remove_permission(FunctionName=names["function"], Qualifier=names["alias"], StatementId=sid)
    except ctx.aws.exc.ClientError as e:
        if not ctx.aws.missing(e):
            raise
    lam.add_permission(FunctionName=names["function"], Qualifier=names["alias"], StatementId=sid, **kwargs)


def _drop_permission(aws: Aws, p: dict, sid: str) -> None:
    try:
        aws("lambda").remove_permission(FunctionName=p["names"]["function"], Qualifier=p["names"]["alias"], StatementId=sid)
    except aws.exc.ClientError as e:
        if not aws.missing(e):
            raise


def front_rest(ctx: Context) -> str:
    """REST API: routes from the template, AWS_PROXY to `live`, gateway responses, validator, stage, key, usage plan."""
    aws, p, names = ctx.aws, ctx.plan, ctx.plan["names"]
    apigw, rest = aws("apigateway"), p["rest"]
    api = ctx.found.rest_api
    if api is None:
        api = apigw.create_rest_api(
            name=names["api"],
            description="Financial forecasting: next-day close from an LSTM ensemble",
            endpointConfiguration={"types": [rest["endpoint"]]},
            apiKeySource=rest["key_source"],
            tags=p["tags"],
        )
    api_id = api["id"]
    resources = {r["path"]: r for r in apigw.get_resources(restApiId=api_id, limit=500)["items"]}
    root_id = resources["/"]["id"]
    uri = f"arn:aws:apigateway:{aws.region}:lambda:path/2015-03-31/functions/{ctx.alias_arn}/invocations"
    validators = {v["name"]: v["id"] for v in apigw.get_request_validators(restApiId=api_id).get("items", [])}
    for vname, spec in rest["validators"].items():
        if vname not in validators:
            validators[vname] = apigw.create_request_validator(
                restApiId=api_id,
                name=vname,
                validateRequestBody=spec["validateRequestBody"],
                validateRequestParameters=spec["validateRequestParameters"],
            )["id"]
    for route in p["routes"]:
        path, method = route["path"], route["method"]
        if path not in resources:
            resources[path] = apigw.create_resource(restApiId=api_id, parentId=root_id, pathPart=path.strip("/"))
        rid = resources[path]["id"]
        if method in (resources[path].get("resourceMethods") or {}):
            apigw.delete_method(restApiId=api_id, resourceId=rid, httpMethod=method)  # moto has no update_method
        validator = next((v["validator"] for v in rest["validated"] if (v["path"], v["method"]) == (path, method)), None)
        apigw.put_method(
            restApiId=api_id,
            resourceId=rid,
            httpMethod=method,
            authorizationType="NONE",
            apiKeyRequired=route["api_key_required"],
            **({"requestValidatorId": validators[validator]} if validator else {}),
        )
        apigw.put_integration(
            restApiId=api_id, resourceId=rid, httpMethod=method, type="AWS_PROXY", integrationHttpMethod="POST", uri=uri
        )
    for kind, headers in rest["gateway_responses"].items():
        try:
            apigw.put_gateway_response(
                restApiId=api_id,
                responseType=kind,
                responseParameters={f"gatewayresponse.header.{h}": v for h, v in headers.items()},
            )
        except aws.exc.ClientError as e:
            if aws.code(e) not in ("NotImplementedException", "NotImplemented"):
                raise
    apigw.create_deployment(restApiId=api_id, stageName=names["stage"], description="deploy.py")
    ops = [
        {"op": "replace", "path": "/tracingEnabled", "value": str(rest["tracing"]).lower()},
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": f"{rest['throttle']['rateLimit']:g}"},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(rest["throttle"]["burstLimit"])},
        {"op": "replace", "path": "/*/*/metrics/enabled", "value": "true"},
    ]
    access = _access_log_destination(ctx)
    if access:
        ops += [
            {"op": "replace", "path": "/accessLogSettings/destinationArn", "value": access},
            {"op": "replace", "path": "/accessLogSettings/format", "value": rest["access_log_format"]},
        ]
    apigw.update_stage(restApiId=api_id, stageName=names["stage"], patchOperations=ops)
    _permission(
        ctx,
        "apigateway-rest",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{aws.region}:{aws.account()}:{api_id}/*/*/*",
    )
    key_id = _api_key(ctx)
    plan_id = _usage_plan(ctx, api_id, key_id)
    ctx.url = aws.rest_url(api_id, names["stage"])
    ctx.result.update({"api_id": api_id, "key_id": key_id, "usage_plan_id": plan_id})
    return (
        f"REST API {names['api']} ({'exists' if ctx.found.rest_api else 'created'}) on stage {names['stage']}: usage plan "
        f"{p['usage_plan']['throttle']['rateLimit']:g} req/s, {p['usage_plan']['quota']['limit']:,} a month"
        + ("" if access else "; access logging off (this account has no API Gateway CloudWatch role)")
    )


def _access_log_destination(ctx: Context) -> str | None:
    """The access-log group, if the account lets API Gateway write to CloudWatch (an account-wide setting we never change)."""
    aws, names = ctx.aws, ctx.plan["names"]
    try:
        if not aws("apigateway").get_account().get("cloudwatchRoleArn"):
            return None
    except aws.exc.ClientError:
        return None
    logs = aws("logs")
    try:
        logs.create_log_group(logGroupName=names["access_log_group"], tags=ctx.plan["tags"])
    except aws.exc.ClientError as e:
        if aws.code(e) != "ResourceAlreadyExistsException":
            raise
    logs.put_retention_policy(logGroupName=names["access_log_group"], retentionInDays=ctx.plan["log_retention_days"])
    return f"arn:aws:logs:{aws.region}:{aws.account()}:log-group:{names['access_log_group']}"


def _api_key(ctx: Context) -> str:
    apigw, names = ctx.aws("apigateway"), ctx.plan["names"]
    existing = ctx.found.api_key
    if existing is not None and existing.get("value") not in (None, ctx.key):
        apigw.delete_api_key(apiKey=existing["id"])  # ours, but stale: SSM holds the truth
        existing = None
    if existing is None:
        existing = apigw.create_api_key(
            name=names["key"],
            enabled=True,
            value=ctx.key,
            tags=ctx.plan["tags"],
            description="X-API-Key of the financial forecasting API (value in SSM)",
        )
    return existing["id"]


def _usage_plan(ctx: Context, api_id: str, key_id: str) -> str:
    apigw, names, up = ctx.aws("apigateway"), ctx.plan["names"], ctx.plan["usage_plan"]
    existing = ctx.found.usage_plan
    if existing is None:
        existing = apigw.create_usage_plan(
            name=names["plan"],
            description="Throttle and monthly quota (the budget guard)",
            apiStages=[{"apiId": api_id, "stage": names["stage"]}],
            throttle=up["throttle"],
            quota=up["quota"],
            tags=ctx.plan["tags"],
        )
    else:
        ops = [
            {"op": "replace", "path": "/throttle/rateLimit", "value": f"{up['throttle']['rateLimit']:g}"},
            {"op": "replace", "path": "/throttle/burstLimit", "value": str(up["throttle"]["burstLimit"])},
            {"op": "replace", "path": "/quota/limit", "value": str(up["quota"]["limit"])},
            {"op": "replace", "path": "/quota/period", "value": up["quota"]["period"]},
        ]
        if (api_id, names["stage"]) not in {(s["apiId"], s["stage"]) for s in existing.get("apiStages", [])}:
            ops.append({"op": "add", "path": "/apiStages", "value": f"{api_id}:{names['stage']}"})
        apigw.update_usage_plan(usagePlanId=existing["id"], patchOperations=ops)
    plan_id = existing["id"]
    if key_id not in {k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=plan_id).get("items", [])}:
        apigw.create_usage_plan_key(usagePlanId=plan_id, keyId=key_id, keyType="API_KEY")
    return plan_id


def front_http(ctx: Context) -> str:
    """HTTP API ($1.00 a million): routes from the template, CORS on the API, stage throttling; the function checks the key."""
    aws, p, names = ctx.aws, ctx.plan, ctx.plan["names"]
    v2, http = aws("apigatewayv2"), p["http"]
    api = ctx.found.http_api
    if api is None:
        api = v2.create_api(
            Name=names["api"],
            ProtocolType="HTTP",
            Description=http["description"],
            CorsConfiguration=http["cors"],
            Tags=p["tags"],
        )
    else:
        v2.update_api(ApiId=api["ApiId"], CorsConfiguration=http["cors"], Description=http["description"])
    api_id = api["ApiId"]
    integrations = v2.get_integrations(ApiId=api_id).get("Items", [])
    integ = next((i for i in integrations if i.get("IntegrationUri") == ctx.alias_arn), None)
    if integ is None:
        integ = v2.create_integration(
            ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=ctx.alias_arn, PayloadFormatVersion=http["payload_format"]
        )
    have = {r["RouteKey"]: r for r in v2.get_routes(ApiId=api_id).get("Items", [])}
    for key in http["routes"]:
        target = f"integrations/{integ['IntegrationId']}"
        if key in have:
            v2.update_route(ApiId=api_id, RouteId=have[key]["RouteId"], Target=target)
        else:
            v2.create_route(ApiId=api_id, RouteKey=key, Target=target)
    for key, r in have.items():
        if key not in http["routes"]:
            v2.delete_route(ApiId=api_id, RouteId=r["RouteId"])
    stages = {s["StageName"] for s in v2.get_stages(ApiId=api_id).get("Items", [])}
    if http["stage"] in stages:
        v2.update_stage(ApiId=api_id, StageName=http["stage"], AutoDeploy=True, DefaultRouteSettings=http["throttle"])
    else:
        v2.create_stage(
            ApiId=api_id, StageName=http["stage"], AutoDeploy=True, DefaultRouteSettings=http["throttle"], Tags=p["tags"]
        )
    _permission(
        ctx,
        "apigateway-http",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{aws.region}:{aws.account()}:{api_id}/*",
    )
    ctx.url = api.get("ApiEndpoint") or f"https://{api_id}.execute-api.{aws.region}.amazonaws.com"
    ctx.result.update({"api_id": api_id})
    return (
        f"HTTP API {names['api']} ({'exists' if ctx.found.http_api else 'created'}): {', '.join(http['routes'])}; "
        f"{http['throttle']['ThrottlingRateLimit']:g} req/s; the function checks X-API-Key"
    )


def front_url(ctx: Context) -> str:
    """A Function URL on `live`: no per-request charge; reserved concurrency caps what anyone can spend."""
    lam, p, names = ctx.aws("lambda"), ctx.plan, ctx.plan["names"]
    cfg = p["url"]
    args = {"FunctionName": names["function"], "Qualifier": names["alias"], "AuthType": cfg["auth"], "Cors": cfg["cors"]}
    try:
        lam.get_function_url_config(FunctionName=names["function"], Qualifier=names["alias"])
        url = lam.update_function_url_config(**args)["FunctionUrl"]
    except ctx.aws.exc.ClientError as e:
        if not ctx.aws.missing(e):
            raise
        url = lam.create_function_url_config(**args)["FunctionUrl"]
    if cfg["auth"] == "NONE":  # since October 2025 a public URL needs both statements
        _permission(ctx, "url-invoke-url", Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="NONE")
        _permission(ctx, "url-invoke-function", Action="lambda:InvokeFunction", Principal="*", InvokedViaFunctionUrl=True)
    else:
        for sid in ("url-invoke-url", "url-invoke-function"):
            _drop_permission(ctx.aws, p, sid)
    lam.put_function_concurrency(FunctionName=names["function"], ReservedConcurrentExecutions=cfg["reserved_concurrency"])
    ctx.url = url.rstrip("/")
    return (
        f"Function URL ({cfg['auth']}) on alias {names['alias']}; reserved concurrency {cfg['reserved_concurrency']} "
        "caps the spend" + ("; the function checks X-API-Key" if cfg["auth"] == "NONE" else "; callers sign with SigV4 (AWS_IAM)")
    )


def remove_rest(aws: Aws, p: dict, found: Found) -> list[str]:
    apigw, removed = aws("apigateway"), []
    if found.usage_plan:
        plan_id = found.usage_plan["id"]
        for k in apigw.get_usage_plan_keys(usagePlanId=plan_id).get("items", []):
            apigw.delete_usage_plan_key(usagePlanId=plan_id, keyId=k["id"])
        stages = found.usage_plan.get("apiStages", [])
        if stages:
            apigw.update_usage_plan(
                usagePlanId=plan_id,
                patchOperations=[{"op": "remove", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"} for s in stages],
            )
        apigw.delete_usage_plan(usagePlanId=plan_id)
        removed.append(f"usage plan {p['names']['plan']}")
    if found.api_key:
        apigw.delete_api_key(apiKey=found.api_key["id"])
        removed.append(f"API key {found.api_key['id']}")
    if found.rest_api:
        apigw.delete_rest_api(restApiId=found.rest_api["id"])
        removed.append(f"REST API {p['names']['api']} ({found.rest_api['id']})")
    _drop_permission(aws, p, "apigateway-rest") if found.function else None
    return removed


def remove_http(aws: Aws, p: dict, found: Found) -> list[str]:
    if not found.http_api:
        return []
    aws("apigatewayv2").delete_api(ApiId=found.http_api["ApiId"])
    if found.function:
        _drop_permission(aws, p, "apigateway-http")
    return [f"HTTP API {p['names']['api']} ({found.http_api['ApiId']})"]


def remove_url(aws: Aws, p: dict, found: Found) -> list[str]:
    if not found.function:
        return []
    lam, names, removed = aws("lambda"), p["names"], []
    try:
        lam.get_function_url_config(FunctionName=names["function"], Qualifier=names["alias"])
        lam.delete_function_url_config(FunctionName=names["function"], Qualifier=names["alias"])
        removed.append(f"Function URL on {names['alias']}")
    except aws.exc.ClientError as e:
        if not aws.missing(e):
            raise
    for sid in ("url-invoke-url", "url-invoke-function"):
        _drop_permission(aws, p, sid)
    try:
        lam.delete_function_concurrency(FunctionName=names["function"])
    except aws.exc.ClientError as e:
        if not aws.missing(e):
            raise
    return removed


FRONT = {"rest": (front_rest, remove_rest), "http": (front_http, remove_http), "url": (front_url, remove_url)}


def step_front_door(ctx: Context) -> str:
    door = ctx.plan["names"]["front_door"]
    msg = FRONT[door][0](ctx)
    removed = []
    for other, (_, remove) in FRONT.items():
        if other != door:
            removed += remove(ctx.aws, ctx.plan, ctx.found)
    return msg + (f"; removed the old front door: {', '.join(removed)}" if removed else "")


def step_alarms(ctx: Context) -> str:
    cw = ctx.aws("cloudwatch")
    for a in ctx.plan["alarms"]:
        cw.put_metric_alarm(**a, Tags=_tag_list(ctx.plan["tags"]))
    return f"CloudWatch alarms: {', '.join(a['AlarmName'] for a in ctx.plan['alarms'])}"


def deploy(
    aws: Aws,
    build: bool = True,
    params: dict | None = None,
    canary: float | None = None,
    canary_minutes: float = 10.0,
    verify: bool = True,
    check_package: bool = True,
    poll_s: float = 30.0,
) -> dict:
    """Survey, check, upload, publish, verify, promote, front door, alarms: each step says what it did."""
    import package

    template = settings.load_template()
    params = dict(params or {})
    p = plan(template, params)
    total = 12
    step = iter(f"{i}/{total}" for i in range(1, total + 1))

    found = survey(aws, p)  # raises before anything is created: collisions, foreign resources, a bad key
    verdict = check_runtime(p["function"]["Runtime"], creating=found.function is None)
    if verdict.state == "deprecating":
        print(f"WARNING: {verdict.message}", flush=True)
    say(
        next(step),
        f"account {aws.account()}, region {aws.region}{f', endpoint {aws.endpoint_url}' if aws.endpoint_url else ''}; "
        f"{verdict.message}; every named resource is ours or absent",
    )
    target = package.Target.from_template(arch=p["function"]["Architectures"][0])
    fn_zip, layer_zip = package.ensure_built(quiet=True, target=target) if build else package.paths(target)
    if check_package:
        step_check_package(Context(aws, p, template, params, found), fn_zip, layer_zip)
        say(next(step), f"the built zips answer every sample event on CPython {target.python}, isolated")
    else:
        say(next(step), "package check skipped (--no-check)")
    manifest = json.loads((package.RUNTIME_SRC / "manifest.json").read_text())

    ctx = Context(aws, p, template, params, found)
    say(next(step), step_key(ctx))
    ctx.key_sha = hashlib.sha256(ctx.key.encode()).hexdigest()
    say(next(step), step_bucket(ctx, manifest, fn_zip))
    say(next(step), step_role(ctx))
    say(next(step), step_layer(ctx, layer_zip))
    say(next(step), step_logs(ctx))
    say(next(step), step_function(ctx, fn_zip))
    say(next(step), step_publish(ctx, manifest))
    say(next(step), step_verify(ctx) if verify else f"version {ctx.version} not invoked (--no-verify: an emulator cannot run it)")
    say(next(step), step_alias(ctx, canary, canary_minutes, poll_s))
    ctx.found.function = ctx.found.function or {"FunctionName": p["names"]["function"]}
    front = step_front_door(ctx)
    say("front", front)
    say(next(step), step_alarms(ctx))
    print(f"done. Invoke URL: {ctx.url}  (front door: {p['names']['front_door']})", flush=True)
    print(
        f"  the API key is in SSM Parameter Store {p['names']['key_parameter']}; print it with "
        f"`python lambda/deploy.py status --show-key`"
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


# --- rollback -----------------------------------------------------------------------------------------------


def versions(aws: Aws, function: str) -> list[dict]:
    lam, out, marker = aws("lambda"), [], None
    while True:
        page = lam.list_versions_by_function(FunctionName=function, **({"Marker": marker} if marker else {}))
        out += [v for v in page["Versions"] if v["Version"] != "$LATEST"]
        marker = page.get("NextMarker")
        if not marker:
            return sorted(out, key=lambda v: int(v["Version"]))


def rollback(aws: Aws, to: str | None = None, params: dict | None = None) -> dict:
    """Move `live` back: to VERSION, or to the published version before the one it is on."""
    p = plan(params=params)
    names = p["names"]
    found = survey(aws, p)
    if found.function is None:
        raise DeployError(f"function {names['function']} is not deployed: nothing to roll back")
    lam = aws("lambda")
    current = lam.get_alias(FunctionName=names["function"], Name=names["alias"])["FunctionVersion"]
    known = [v["Version"] for v in versions(aws, names["function"])]
    if to is None:
        older = [v for v in known if int(v) < int(current)]
        if not older:
            raise DeployError(f"`{names['alias']}` is on version {current}, the oldest there is: nothing to roll back to")
        to = older[-1]
    if to not in known:
        raise DeployError(f"version {to} does not exist; versions: {', '.join(known)}")
    lam.update_alias(
        FunctionName=names["function"], Name=names["alias"], FunctionVersion=to, RoutingConfig={"AdditionalVersionWeights": {}}
    )
    say("rollback", f"alias {names['alias']}: version {current} -> {to}")
    return {"from": current, "to": to}


# --- status -------------------------------------------------------------------------------------------------


def status(aws: Aws, show_key: bool = False, hours: int = 24, params: dict | None = None) -> dict:
    p = plan(params=params)
    names = p["names"]
    out: dict = {"region": aws.region, "account": aws.account(), "stage": names["stage"], "deployed": False, "front_door": None}
    found = Found()
    try:
        found = survey(aws, p)
    except Collision as e:
        out["collision"] = str(e)
    lam = aws("lambda")
    if found.function:
        c = found.function  # survey read it
        alias = lam.get_alias(FunctionName=names["function"], Name=names["alias"])
        live, weights = alias["FunctionVersion"], (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights", {})
        out["function"] = {
            "name": names["function"],
            "state": c.get("State", "Active"),
            "runtime": c["Runtime"],
            "memory_mb": c["MemorySize"],
            "timeout_s": c["Timeout"],
            "architectures": c.get("Architectures", ["x86_64"]),
            "tracing": c.get("TracingConfig", {}).get("Mode"),
            "code_size": c.get("CodeSize"),
            "alias": names["alias"],
            "alias_version": live,
            "canary": weights,
            "versions": [
                {
                    "version": v["Version"],
                    "model": v.get("Description", "").removeprefix("model "),
                    "date": v.get("LastModified"),
                    "live": v["Version"] == live,
                    "canary_share": weights.get(v["Version"]),
                }
                for v in versions(aws, names["function"])
            ],
            "layers": [layer["Arn"] for layer in c.get("Layers", [])],
            "runtime_support": lifecycle.verdict(c["Runtime"], creating=False).message,
            "snapstart": (c.get("SnapStart") or {}).get("ApplyOn", "None"),
        }
    if found.rest_api:
        out["front_door"], out["url"] = "rest", aws.rest_url(found.rest_api["id"], names["stage"])
        out["api"] = {"id": found.rest_api["id"], "name": names["api"], "routes": p["routes"]}
    elif found.http_api:
        out["front_door"] = "http"
        out["url"] = (
            found.http_api.get("ApiEndpoint") or f"https://{found.http_api['ApiId']}.execute-api.{aws.region}.amazonaws.com"
        )
        out["api"] = {"id": found.http_api["ApiId"], "name": names["api"], "routes": p["http"]["routes"]}
    elif found.function:
        try:
            u = lam.get_function_url_config(FunctionName=names["function"], Qualifier=names["alias"])
            out["front_door"], out["url"] = "url", u["FunctionUrl"].rstrip("/")
            out["api"] = {"auth": u["AuthType"]}
        except aws.exc.ClientError as e:
            if not aws.missing(e):
                raise
    if found.usage_plan:
        out["usage_plan"] = {
            "id": found.usage_plan["id"],
            "throttle": found.usage_plan.get("throttle"),
            "quota": found.usage_plan.get("quota"),
        }
    if found.api_key:
        out["api_key"] = {"id": found.api_key["id"], "enabled": found.api_key.get("enabled")}
    if found.key_value:
        out.setdefault("api_key", {})["kept_in"] = f"ssm:{names['key_parameter']}"
        if show_key:
            out["api_key"]["value"] = found.key_value
    try:
        out["alarms"] = alarm_states(aws, p)
    except aws.exc.ClientError:
        out["alarms"] = {}
    out["bucket"] = bucket_name(aws, names["project"]) if found.bucket else None
    if found.function:
        import dashboard.usage as usage  # the one CloudWatch reader, shared with the cost monitor

        out["metrics"] = usage.cloudwatch_usage(aws("cloudwatch"), names["function"], hours)
    out["deployed"] = bool(found.function and out["front_door"])
    return out


def print_status(s: dict) -> None:
    print(f"region {s['region']}, account {s['account']}, stage {s['stage']}: {'deployed' if s['deployed'] else 'not deployed'}")
    if s.get("collision"):
        print(f"  WARNING   {s['collision']}")
    f = s.get("function")
    if f:
        print(
            f"  function  {f['name']} {f['state']} {f['runtime']} {f['architectures'][0]} {f['memory_mb']} MB "
            f"{f['timeout_s']} s, "
            f"tracing {f['tracing']}, SnapStart {f['snapstart']}; alias {f['alias']} -> version {f['alias_version']}"
            + (f" (canary: {f['canary']})" if f.get("canary") else "")
        )
        print(f"  runtime   {f['runtime_support']}")
        for v in f["versions"]:
            mark = "live" if v["live"] else (f"canary {v['canary_share']:.0%}" if v.get("canary_share") else "")
            print(f"  version   {v['version']:>4}  model {v['model']:<28} {v['date']}  {mark}")
    else:
        print("  function  none")
    print(f"  front     {s['front_door']}: {s['url']}" if s.get("front_door") else "  front     none")
    if s.get("usage_plan"):
        u = s["usage_plan"]
        print(f"  plan      throttle {u['throttle']}, quota {u['quota']}")
    if s.get("api_key"):
        k = s["api_key"]
        print(
            f"  key       {k.get('id', '(function checks it)')}, value in {k.get('kept_in', '?')}"
            + (f": {k['value']}" if k.get("value") else "")
        )
    print(f"  bucket    {s['bucket'] or 'none'}")
    for a, st in (s.get("alarms") or {}).items():
        print(f"  alarm     {a}: {st}")
    m = s.get("metrics") or {}
    if m:
        print(
            f"  last {m['hours']} h  invocations {m['invocations']:.0f}, errors {m['errors']:.0f}, throttles "
            f"{m['throttles']:.0f}, "
            f"duration avg {m['duration'] or 0:.1f} ms"
        )


# --- teardown -----------------------------------------------------------------------------------------------


def teardown(aws: Aws, purge: bool = False, params: dict | None = None) -> dict:
    """Delete what this stack owns - and nothing that merely shares a name with it."""
    p = plan(params=params)
    names = p["names"]
    found = survey(aws, p)  # a foreign namesake stops teardown before it deletes anything
    removed: list[str] = []
    cw = aws("cloudwatch")
    alarms = [a["AlarmName"] for a in p["alarms"] if a["AlarmName"] in alarm_states(aws, p)]
    if alarms:
        cw.delete_alarms(AlarmNames=alarms)
        removed.append(f"alarms {', '.join(alarms)}")
    removed += remove_rest(aws, p, found) + remove_http(aws, p, found)
    lam = aws("lambda")
    if found.function:
        lam.delete_function(FunctionName=names["function"])  # its versions, alias, URL and permissions go with it
        removed.append(f"function {names['function']} with its versions, alias and any Function URL")
    bucket = bucket_name(aws, names["project"]) if found.bucket else None
    ours = set(layer_record(aws, p))
    kept = []
    for v in lam.list_layer_versions(LayerName=names["layer"]).get("LayerVersions", []):
        if v["LayerVersionArn"] in ours:
            lam.delete_layer_version(LayerName=names["layer"], VersionNumber=v["Version"])
            removed.append(f"layer {names['layer']}:{v['Version']}")
        else:
            kept.append(v["Version"])
    if kept:
        say("teardown", f"kept layer versions {kept} of {names['layer']}: this stack did not publish them")
    if _parameter_exists(aws, names["layer_record"]):
        aws("ssm").delete_parameter(Name=names["layer_record"])
    if found.role:
        iam = aws("iam")
        for policy in p["role"]["ManagedPolicyArns"]:
            try:
                iam.detach_role_policy(RoleName=names["role"], PolicyArn=policy)
            except aws.exc.ClientError as e:
                if not aws.missing(e, "NoSuchEntity"):
                    raise
        iam.delete_role(RoleName=names["role"])
        removed.append(f"IAM role {names['role']}")
    if found.log_group:
        aws("logs").delete_log_group(logGroupName=names["log_group"])
        removed.append(f"log group {names['log_group']}")
    if found.key_value is not None:
        aws("ssm").delete_parameter(Name=names["key_parameter"])
        removed.append(f"SSM parameter {names['key_parameter']}")
    if purge and bucket:
        s3 = aws("s3")
        s3.delete_bucket_policy(Bucket=bucket)  # the bucket goes anyway; its TLS-only rule must not block emptying it
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            objs = [
                {"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if objs:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objs})
        s3.delete_bucket(Bucket=bucket)
        removed.append(f"bucket {bucket} and every object version in it")
    for r in removed:
        say("teardown", f"deleted {r}")
    if bucket and not purge:
        say("teardown", f"kept the versioned model bucket s3://{bucket} (pass --purge to delete it)")
    return {"removed": removed, "kept_bucket": None if purge else bucket}


# --- CLI ----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["deploy", "status", "rollback", "teardown", "plan"])
    p.add_argument("--region", default=None, help="AWS region (default: your AWS config or AWS_DEFAULT_REGION)")
    p.add_argument("--profile", default=None, help="AWS profile from ~/.aws")
    p.add_argument("--endpoint-url", default=None, help="send every call here instead of AWS (an emulator such as moto server)")
    p.add_argument("--stage", default=None, help="API Gateway stage (default: the template's StageName, prod)")
    p.add_argument(
        "--api",
        choices=list(settings.FRONT_DOORS),
        default=None,
        help="deploy: the front door - rest (API key, usage plan; default), http (HTTP API) or url (Function URL)",
    )
    p.add_argument(
        "--url-auth",
        choices=["none", "iam"],
        default=None,
        help="deploy --api url: NONE (the function checks the key) or AWS_IAM",
    )
    p.add_argument(
        "--canary", type=float, default=None, metavar="PERCENT", help="deploy: route PERCENT of live to the new version first"
    )
    p.add_argument(
        "--canary-minutes", type=float, default=10.0, metavar="M", help="deploy --canary: watch the alarms this long (default 10)"
    )
    p.add_argument(
        "--to", default=None, metavar="VERSION", help="rollback: the version to move live to (default: the one before)"
    )
    p.add_argument("--purge", action="store_true", help="teardown: also delete the versioned model bucket")
    p.add_argument("--json", action="store_true", help="print the result as JSON (for the dashboard)")
    p.add_argument("--show-key", action="store_true", help="status: print the API key's value")
    p.add_argument("--no-build", action="store_true", help="deploy dist/ as it is")
    p.add_argument("--no-verify", action="store_true", help="deploy: do not invoke the new version (an emulator cannot run code)")
    p.add_argument(
        "--arch",
        choices=["x86_64", "arm64"],
        default=None,
        help="deploy: instruction set (default: the template's Architecture); arm64 is 20%% cheaper per GB-s",
    )
    p.add_argument("--snapstart", action="store_true", help="deploy: turn on SnapStart for published versions (Python 3.12+)")
    args = p.parse_args(argv)
    if args.canary is not None and not 0 < args.canary < 100:
        p.error("--canary takes a percentage between 0 and 100 (exclusive)")
    params = {
        k: v
        for k, v in {
            "Architecture": args.arch,
            "SnapStart": "PublishedVersions" if args.snapstart else None,
            "FrontDoor": args.api,
            "StageName": args.stage,
            "UrlAuthType": {"none": "NONE", "iam": "AWS_IAM"}.get(args.url_auth or ""),
        }.items()
        if v
    }
    if args.command == "plan":
        result = plan(params=params)
        print(json.dumps(result, indent=1, default=str) if args.json else _plan_text(result))
        return 0
    try:
        aws = Aws(args.region, args.profile, args.endpoint_url)
        if args.command == "deploy":
            result = deploy(
                aws,
                build=not args.no_build,
                params=params,
                canary=args.canary,
                canary_minutes=args.canary_minutes,
                verify=not args.no_verify,
            )
        elif args.command == "status":
            result = status(aws, show_key=args.show_key, params=params)
            if not args.json:
                print_status(result)
        elif args.command == "rollback":
            result = rollback(aws, args.to, params=params)
        else:
            result = teardown(aws, purge=args.purge, params=params)
    except DeployError as e:
        print(f"deploy.py: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # botocore's errors, reworded: no traceback for a configuration problem
        print(f"deploy.py: {_explain(e, args)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    return 0


def _plan_text(p: dict) -> str:
    n, f = p["names"], p["function"]
    return "\n".join(
        [
            f"function  {n['function']}: {f['Runtime']} {f['Architectures'][0]}, {f['MemorySize']} MB, {f['Timeout']} s, "
            f"SnapStart {f['SnapStart']['ApplyOn']}, alias {n['alias']}",
            f"front     {n['front_door']} ({n['api']}); routes " + ", ".join(f"{r['method']} {r['path']}" for r in p["routes"]),
            f"plan      {p['usage_plan']['throttle']['rateLimit']:g} req/s, {p['usage_plan']['quota']['limit']:,} a month (rest)",
            f"alarms    {', '.join(a['AlarmName'] for a in p['alarms'])}",
            f"tags      {', '.join(f'{k}={v}' for k, v in p['tags'].items())}",
        ]
    )


def _explain(e: Exception, args) -> str:
    import botocore.exceptions as bx

    if isinstance(e, bx.NoCredentialsError | bx.PartialCredentialsError):
        return "no usable AWS credentials: run `aws configure`, set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or pass --profile"
    if isinstance(e, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        where = args.endpoint_url or "AWS"
        return f"cannot reach {where}: {e}. Check the network{' and that the emulator is running' if args.endpoint_url else ''}"
    if isinstance(e, bx.ClientError):
        code = e.response.get("Error", {}).get("Code", "")
        if code in (
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "AuthFailure",
        ):
            return f"AWS rejected the credentials ({code}): refresh them with `aws configure` or `aws sso login`"
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return (
                f"permission denied ({code}): {e.response['Error'].get('Message', '')}. The deploying identity needs "
                "Lambda, API Gateway, IAM, S3, SSM, Logs and CloudWatch permissions"
            )
        return f"AWS error {code}: {e.response.get('Error', {}).get('Message', e)}"
    if isinstance(e, bx.BotoCoreError):
        return f"{type(e).__name__}: {e}"
    if isinstance(e, SystemExit):
        return str(e.code)
    raise e


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
