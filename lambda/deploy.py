"""Deploy the forecaster to AWS with boto3, show what is deployed, and tear it down.

    python lambda/deploy.py deploy   [--region R] [--profile P] [--stage prod] [--endpoint-url URL] [--arch arm64] [--snapstart]
    python lambda/deploy.py status   [--json] [--show-key]
    python lambda/deploy.py teardown [--purge]

deploy is idempotent: a second run updates what exists and never duplicates. It creates a versioned S3
bucket for the model artifacts, an IAM role, the dependencies layer, the function (settings read from
template.yaml), a version and the alias `live`, the REST API with its stage, an API key and usage plan,
CloudWatch alarms, and X-Ray tracing. The API key lives in SSM Parameter Store (SecureString); the
function holds only its SHA-256. teardown deletes all of it but the model bucket (unless --purge).
--endpoint-url points every client at an emulator (moto server) or another AWS-compatible endpoint.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

LAMBDA_DIR = Path(__file__).resolve().parent
ROOT = LAMBDA_DIR.parent
sys.path.insert(0, str(LAMBDA_DIR))

import lifecycle  # noqa: E402
import settings  # noqa: E402

PROJECT = "financial-forecasting"
API_NAME = "financial-forecasting-api"
ROLE_NAME = "financial-forecasting-lstm-role"
LAYER_NAME = "financial-forecasting-deps"
KEY_NAME = "financial-forecasting-key"
PLAN_NAME = "financial-forecasting-plan"
KEY_PARAMETER = "/financial-forecasting/api-key"
ALIAS = "live"
MANAGED_POLICIES = ("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                    "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess")
TRUST_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                       "Action": "sts:AssumeRole"}]}


class DeployError(Exception):
    """A failure with a message that says what to do; printed without a traceback."""


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


def check_runtime(runtime: str, creating: bool, today=None) -> lifecycle.Verdict:
    """Refuse a runtime AWS blocks before anything is created; warn when its deprecation is near."""
    v = lifecycle.verdict(runtime, today=today, creating=creating)
    if v.blocked:
        raise DeployError(f"refusing to deploy: {v.message}. Nothing was created or changed.")
    return v


def usage_plan_config(template: dict) -> dict:
    params = settings.parameter_defaults(template)
    props = settings.resolve(template["Resources"]["UsagePlan"]["Properties"], params)
    return {"throttle": {"rateLimit": float(props["Throttle"]["RateLimit"]), "burstLimit": int(props["Throttle"]["BurstLimit"])},
            "quota": {"limit": int(props["Quota"]["Limit"]), "period": props["Quota"]["Period"]}}


def alarm_configs(template: dict) -> list[dict]:
    """put_metric_alarm arguments for every AWS::CloudWatch::Alarm in the template."""
    params = settings.parameter_defaults(template)
    out = []
    for res in settings.resources_of_type(template, "AWS::CloudWatch::Alarm").values():
        p = settings.resolve(res["Properties"], params)
        cfg = {k: p[k] for k in ("AlarmName", "AlarmDescription", "Namespace", "MetricName", "Period", "EvaluationPeriods",
                                 "ComparisonOperator", "TreatMissingData") if k in p}
        cfg["Threshold"] = float(p["Threshold"])
        cfg["Dimensions"] = p["Dimensions"]
        if "ExtendedStatistic" in p:
            cfg["ExtendedStatistic"] = p["ExtendedStatistic"]
        else:
            cfg["Statistic"] = p["Statistic"]
        out.append(cfg)
    return out


def stage_name(template: dict) -> str:
    return settings.parameter_defaults(template)["StageName"]


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
            raise DeployError("no AWS credentials: run `aws configure`, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                              "or pass --profile" + (" (an emulator accepts any values, e.g. testing/testing)" if endpoint_url else ""))
        self.endpoint_url = endpoint_url
        self.config = botocore.config.Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        self._clients: dict = {}

    def __call__(self, service: str):
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url, config=self.config)
        return self._clients[service]

    def code(self, err) -> str:
        return err.response.get("Error", {}).get("Code", "") if hasattr(err, "response") else ""

    def account(self) -> str:
        return self("sts").get_caller_identity()["Account"]

    def api_url(self, api_id: str, stage: str) -> str:
        if self.endpoint_url:  # moto's address for a deployed stage
            return f"{self.endpoint_url.rstrip('/')}/restapis/{api_id}/{stage}/_user_request_"
        return f"https://{api_id}.execute-api.{self.region}.amazonaws.com/{stage}"


def bucket_name(aws: Aws, account: str) -> str:
    return f"{PROJECT}-models-{account}-{aws.region}"


def _b64sha(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def _find_by_name(aws: Aws, operation: str, name: str, **kwargs) -> dict | None:
    """The first API Gateway item called `name` across every page of `operation`."""
    for page in aws("apigateway").get_paginator(operation).paginate(**kwargs):
        for item in page["items"]:
            if item["name"] == name:
                return item
    return None


def find_rest_api(aws: Aws) -> dict | None:
    return _find_by_name(aws, "get_rest_apis", API_NAME)


def find_usage_plan(aws: Aws) -> dict | None:
    return _find_by_name(aws, "get_usage_plans", PLAN_NAME)


def find_api_key(aws: Aws) -> dict | None:
    return _find_by_name(aws, "get_api_keys", KEY_NAME, includeValues=True)


def get_key(aws: Aws) -> str | None:
    try:
        return aws("ssm").get_parameter(Name=KEY_PARAMETER, WithDecryption=True)["Parameter"]["Value"]
    except aws.exc.ClientError as e:
        if aws.code(e) == "ParameterNotFound":
            return None
        raise


# --- deploy -----------------------------------------------------------------------------------------

def deploy(aws: Aws, stage: str | None = None, build: bool = True, params: dict | None = None) -> dict:
    import package

    template = settings.load_template()
    params = dict(params or {})
    stage = stage or stage_name(template)
    total = 10
    step = iter(f"{i}/{total}" for i in range(1, total + 1))

    probe = function_config(template, "0" * 64, params)
    lam = aws("lambda")
    try:
        lam.get_function(FunctionName=probe["FunctionName"])
        exists = True
    except aws.exc.ClientError as e:
        if aws.code(e) != "ResourceNotFoundException":
            raise
        exists = False
    verdict = check_runtime(probe["Runtime"], creating=not exists)
    if verdict.state == "deprecating":
        print(f"WARNING: {verdict.message}", flush=True)

    account = aws.account()
    say(next(step), f"account {account}, region {aws.region}{f', endpoint {aws.endpoint_url}' if aws.endpoint_url else ''}; "
                    f"{verdict.message}")

    target = package.Target.from_template(arch=probe["Architectures"][0])
    fn_zip, layer_zip = package.ensure_built(quiet=True, target=target) if build else package.paths(target)
    manifest = json.loads((package.RUNTIME_SRC / "manifest.json").read_text())

    # the key first: the function needs its hash
    key = get_key(aws)
    if key is None:
        key = secrets.token_urlsafe(32)
        aws("ssm").put_parameter(Name=KEY_PARAMETER, Value=key, Type="SecureString", Overwrite=False,
                                 Description="X-API-Key for the financial forecasting API")
        say(next(step), f"API key generated and stored in SSM {KEY_PARAMETER} (SecureString)")
    else:
        say(next(step), f"API key: reusing SSM {KEY_PARAMETER}")
    key_sha = hashlib.sha256(key.encode()).hexdigest()

    s3 = aws("s3")
    bucket = bucket_name(aws, account)
    try:
        s3.head_bucket(Bucket=bucket)
        created = False
    except aws.exc.ClientError:
        kwargs = {} if aws.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": aws.region}}
        s3.create_bucket(Bucket=bucket, **kwargs)
        created = True
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    prefix = f"models/{manifest['version']}"
    for f in sorted(package.RUNTIME_SRC.iterdir()):
        if f.is_file():
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{f.name}", Body=f.read_bytes())
    s3.put_object(Bucket=bucket, Key=f"{prefix}/lambda_function.zip", Body=fn_zip.read_bytes())
    say(next(step), f"bucket s3://{bucket} ({'created' if created else 'exists'}, versioned): model {manifest['version']} uploaded")

    iam = aws("iam")
    try:
        role_arn = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
        role_state = "exists"
    except aws.exc.ClientError as e:
        if aws.code(e) != "NoSuchEntity":
            raise
        role_arn = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                                   Description="Execution role of financial-forecasting-lstm")["Role"]["Arn"]
        role_state = "created"
    for policy in MANAGED_POLICIES:
        iam.attach_role_policy(RoleName=ROLE_NAME, PolicyArn=policy)
    say(next(step), f"IAM role {ROLE_NAME} ({role_state}): basic execution + X-Ray write")

    layer_sha = _b64sha(layer_zip)
    versions = lam.list_layer_versions(LayerName=LAYER_NAME).get("LayerVersions", [])
    layer_arn = None
    for v in versions:
        if v.get("Description", "").endswith(layer_sha):
            layer_arn = v["LayerVersionArn"]
            break
    if layer_arn is None:
        layer_arn = lam.publish_layer_version(
            LayerName=LAYER_NAME, Description=f"numpy, onnxruntime, orjson; sha256 {layer_sha}",
            Content={"ZipFile": layer_zip.read_bytes()}, CompatibleRuntimes=[probe["Runtime"]],
            CompatibleArchitectures=probe["Architectures"])["LayerVersionArn"]
        say(next(step), f"layer {LAYER_NAME}: published {layer_arn.rsplit(':', 1)[1]} ({layer_zip.stat().st_size / 1e6:.1f} MB)")
    else:
        say(next(step), f"layer {LAYER_NAME}: version {layer_arn.rsplit(':', 1)[1]} already holds this build")

    cfg = function_config(template, key_sha, params)
    name = cfg["FunctionName"]
    try:
        current = lam.get_function(FunctionName=name)["Configuration"]
    except aws.exc.ClientError as e:
        if aws.code(e) != "ResourceNotFoundException":
            raise
        current = None
    if current is None:
        for attempt in range(10):  # a new role takes a few seconds to become assumable on AWS
            try:
                lam.create_function(**cfg, Role=role_arn, Code={"ZipFile": fn_zip.read_bytes()}, Layers=[layer_arn], Publish=False)
                break
            except aws.exc.ClientError as e:
                if aws.code(e) == "InvalidParameterValueException" and "role" in str(e).lower() and attempt < 9:
                    time.sleep(3)
                    continue
                raise
        fn_state = "created"
    else:
        arch = cfg.pop("Architectures")  # changed with the code; update_function_configuration has no such field
        if current.get("CodeSha256") != _b64sha(fn_zip) or current.get("Architectures", ["x86_64"]) != arch:
            lam.update_function_code(FunctionName=name, ZipFile=fn_zip.read_bytes(), Architectures=arch)
            _wait_updated(aws, name)
        lam.update_function_configuration(**cfg, Role=role_arn, Layers=[layer_arn])
        cfg["Architectures"] = arch
        fn_state = "updated"
    _wait_updated(aws, name)
    version = lam.publish_version(FunctionName=name, Description=f"model {manifest['version']}")["Version"]
    try:
        lam.get_alias(FunctionName=name, Name=ALIAS)
        lam.update_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version)
    except aws.exc.ClientError as e:
        if aws.code(e) != "ResourceNotFoundException":
            raise
        lam.create_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version)
    alias_arn = f"arn:aws:lambda:{aws.region}:{account}:function:{name}:{ALIAS}"
    say(next(step), f"function {name} ({fn_state}): {cfg['Runtime']} {cfg['Architectures'][0]}, {cfg['MemorySize']} MB, "
                    f"{cfg['Timeout']} s, tracing {cfg['TracingConfig']['Mode']}, SnapStart {cfg['SnapStart']['ApplyOn']}; "
                    f"version {version} -> alias {ALIAS}")

    api_id, api_state = _rest_api(aws, template, alias_arn)
    apigw = aws("apigateway")
    apigw.create_deployment(restApiId=api_id, stageName=stage, description=f"model {manifest['version']}")
    plan = usage_plan_config(template)
    apigw.update_stage(restApiId=api_id, stageName=stage, patchOperations=[
        {"op": "replace", "path": "/tracingEnabled", "value": "true"},
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": f"{plan['throttle']['rateLimit']:g}"},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(plan["throttle"]["burstLimit"])},
        {"op": "replace", "path": "/*/*/metrics/enabled", "value": "true"},
    ])
    try:
        lam.add_permission(FunctionName=name, Qualifier=ALIAS, StatementId="apigateway-invoke", Action="lambda:InvokeFunction",
                           Principal="apigateway.amazonaws.com", SourceArn=f"arn:aws:execute-api:{aws.region}:{account}:{api_id}/*/*/*")
    except aws.exc.ClientError as e:
        if aws.code(e) != "ResourceConflictException":
            raise
    say(next(step), f"REST API {API_NAME} ({api_state}) deployed to stage {stage} with X-Ray tracing")

    key_id = _api_key(aws, key, api_id, stage)
    plan_id = _usage_plan(aws, plan, api_id, stage, key_id)
    say(next(step), f"usage plan {PLAN_NAME}: {plan['throttle']['rateLimit']:g} req/s (burst {plan['throttle']['burstLimit']}), "
                    f"{plan['quota']['limit']:,} requests a {plan['quota']['period'].lower()}; key {key_id}")

    cw = aws("cloudwatch")
    alarms = alarm_configs(template)
    for a in alarms:
        cw.put_metric_alarm(**a)
    say(next(step), f"CloudWatch alarms: {', '.join(a['AlarmName'] for a in alarms)}")

    url = aws.api_url(api_id, stage)
    say(next(step), f"done. Invoke URL: {url}")
    print(f"  the API key is in SSM Parameter Store {KEY_PARAMETER}; print it with "
          f"`python lambda/deploy.py status --show-key` or `aws ssm get-parameter --name {KEY_PARAMETER} --with-decryption`")
    return {"url": url, "api_id": api_id, "function": name, "version": version, "alias_arn": alias_arn, "layer": layer_arn,
            "bucket": bucket, "key_id": key_id, "usage_plan_id": plan_id, "stage": stage, "model_version": manifest["version"]}


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


def _rest_api(aws: Aws, template: dict, alias_arn: str) -> tuple[str, str]:
    apigw = aws("apigateway")
    api = find_rest_api(aws)
    state = "exists"
    if api is None:
        api = apigw.create_rest_api(name=API_NAME, description="Financial forecasting: next-day close from an LSTM ensemble",
                                    endpointConfiguration={"types": ["REGIONAL"]}, apiKeySource="HEADER")
        state = "created"
    api_id = api["id"]
    resources = {r["path"]: r for r in apigw.get_resources(restApiId=api_id, limit=500)["items"]}
    root_id = resources["/"]["id"]
    uri = f"arn:aws:apigateway:{aws.region}:lambda:path/2015-03-31/functions/{alias_arn}/invocations"
    for route in settings.api_routes(template):
        path = route["path"]
        if path not in resources:
            resources[path] = apigw.create_resource(restApiId=api_id, parentId=root_id, pathPart=path.strip("/"))
        rid = resources[path]["id"]
        methods = resources[path].get("resourceMethods") or {}
        if route["method"] in methods:
            current = apigw.get_method(restApiId=api_id, resourceId=rid, httpMethod=route["method"])
            if bool(current.get("apiKeyRequired")) != route["api_key_required"]:
                apigw.delete_method(restApiId=api_id, resourceId=rid, httpMethod=route["method"])
                methods = {}
        if route["method"] not in methods:
            apigw.put_method(restApiId=api_id, resourceId=rid, httpMethod=route["method"], authorizationType="NONE",
                             apiKeyRequired=route["api_key_required"])
        apigw.put_integration(restApiId=api_id, resourceId=rid, httpMethod=route["method"], type="AWS_PROXY",
                              integrationHttpMethod="POST", uri=uri)
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):  # gateway errors (403, 429, 504) carry CORS headers too
        try:
            apigw.put_gateway_response(restApiId=api_id, responseType=kind, responseParameters={
                "gatewayresponse.header.Access-Control-Allow-Origin": "'*'",
                "gatewayresponse.header.Access-Control-Allow-Headers": "'Content-Type,X-API-Key'"})
        except aws.exc.ClientError as e:
            if aws.code(e) not in ("NotImplementedException", "NotImplemented"):
                raise
    return api_id, state


def _api_key(aws: Aws, key: str, api_id: str, stage: str) -> str:
    apigw = aws("apigateway")
    existing = find_api_key(aws)
    if existing is not None and existing.get("value") not in (None, key):
        apigw.delete_api_key(apiKey=existing["id"])  # SSM holds the truth; a stale key must not linger
        existing = None
    if existing is None:
        existing = apigw.create_api_key(name=KEY_NAME, enabled=True, value=key,
                                        description="X-API-Key of the financial forecasting API (value in SSM)")
    return existing["id"]


def _usage_plan(aws: Aws, plan: dict, api_id: str, stage: str, key_id: str) -> str:
    apigw = aws("apigateway")
    existing = find_usage_plan(aws)
    if existing is None:
        existing = apigw.create_usage_plan(name=PLAN_NAME, description="Throttle and monthly quota (the budget guard)",
                                           apiStages=[{"apiId": api_id, "stage": stage}], throttle=plan["throttle"],
                                           quota=plan["quota"])
    else:
        ops = [{"op": "replace", "path": "/throttle/rateLimit", "value": f"{plan['throttle']['rateLimit']:g}"},
               {"op": "replace", "path": "/throttle/burstLimit", "value": str(plan["throttle"]["burstLimit"])},
               {"op": "replace", "path": "/quota/limit", "value": str(plan["quota"]["limit"])},
               {"op": "replace", "path": "/quota/period", "value": plan["quota"]["period"]}]
        stages = {(s["apiId"], s["stage"]) for s in existing.get("apiStages", [])}
        if (api_id, stage) not in stages:
            ops.append({"op": "add", "path": "/apiStages", "value": f"{api_id}:{stage}"})
        apigw.update_usage_plan(usagePlanId=existing["id"], patchOperations=ops)
    plan_id = existing["id"]
    keys = {k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=plan_id).get("items", [])}
    if key_id not in keys:
        apigw.create_usage_plan_key(usagePlanId=plan_id, keyId=key_id, keyType="API_KEY")
    return plan_id


# --- status -----------------------------------------------------------------------------------------

def status(aws: Aws, stage: str | None = None, show_key: bool = False, hours: int = 24) -> dict:
    template = settings.load_template()
    stage = stage or stage_name(template)
    name = template["Resources"][settings.FUNCTION_RESOURCE]["Properties"]["FunctionName"]
    account = aws.account()
    out: dict = {"region": aws.region, "account": account, "stage": stage, "deployed": False}
    lam = aws("lambda")
    try:
        c = lam.get_function(FunctionName=name)["Configuration"]
        alias = lam.get_alias(FunctionName=name, Name=ALIAS)
        versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"] if v["Version"] != "$LATEST"]
        out["function"] = {"name": name, "state": c.get("State", "Active"), "runtime": c["Runtime"], "memory_mb": c["MemorySize"],
                           "timeout_s": c["Timeout"], "architectures": c.get("Architectures", ["x86_64"]),
                           "tracing": c.get("TracingConfig", {}).get("Mode"), "last_modified": c.get("LastModified"),
                           "code_size": c.get("CodeSize"), "alias": ALIAS, "alias_version": alias["FunctionVersion"],
                           "versions": versions, "layers": [layer["Arn"] for layer in c.get("Layers", [])],
                           "runtime_support": lifecycle.verdict(c["Runtime"], creating=False).message,
                           "snapstart": (c.get("SnapStart") or {}).get("ApplyOn", "None")}
    except aws.exc.ClientError as e:
        if aws.code(e) != "ResourceNotFoundException":
            raise
        out["function"] = None
    api = find_rest_api(aws)
    if api:
        out["api"] = {"id": api["id"], "name": API_NAME, "url": aws.api_url(api["id"], stage),
                      "routes": settings.api_routes(template)}
        out["url"] = out["api"]["url"]
    plan = find_usage_plan(aws)
    if plan:
        out["usage_plan"] = {"id": plan["id"], "throttle": plan.get("throttle"), "quota": plan.get("quota")}
    key = find_api_key(aws)
    if key:
        out["api_key"] = {"id": key["id"], "enabled": key.get("enabled"), "kept_in": f"ssm:{KEY_PARAMETER}"}
        if show_key:
            out["api_key"]["value"] = get_key(aws)
    try:
        alarms = aws("cloudwatch").describe_alarms(AlarmNamePrefix=name)["MetricAlarms"]
        out["alarms"] = {a["AlarmName"]: a["StateValue"] for a in alarms}
    except aws.exc.ClientError:
        out["alarms"] = {}
    try:
        out["bucket"] = bucket_name(aws, account)
        aws("s3").head_bucket(Bucket=out["bucket"])
    except aws.exc.ClientError:
        out["bucket"] = None
    out["metrics"] = metrics(aws, name, hours) if out.get("function") else {}
    out["deployed"] = bool(out.get("function") and api)
    return out


def metrics(aws: Aws, name: str, hours: int = 24) -> dict:
    """Invocations, errors, throttles and duration from CloudWatch over the last `hours`."""
    cw = aws("cloudwatch")
    end = datetime.now(UTC) + timedelta(minutes=1)  # include the period still filling up
    start = end - timedelta(hours=hours)
    out = {"hours": hours}
    for metric, stat in (("Invocations", "Sum"), ("Errors", "Sum"), ("Throttles", "Sum"), ("Duration", "Average")):
        r = cw.get_metric_statistics(Namespace="AWS/Lambda", MetricName=metric, Dimensions=[{"Name": "FunctionName", "Value": name}],
                                     StartTime=start, EndTime=end, Period=3600, Statistics=[stat])
        points = [p[stat] for p in r.get("Datapoints", [])]
        key = metric.lower() if metric != "Duration" else "duration_ms_avg"
        out[key] = (sum(points) / len(points) if points else None) if metric == "Duration" else sum(points)
    r = cw.get_metric_statistics(Namespace="AWS/Lambda", MetricName="Duration", Dimensions=[{"Name": "FunctionName", "Value": name}],
                                 StartTime=start, EndTime=end, Period=hours * 3600, ExtendedStatistics=["p99"])
    p99 = [p.get("ExtendedStatistics", {}).get("p99") for p in r.get("Datapoints", [])]
    out["duration_ms_p99"] = max((v for v in p99 if v is not None), default=None)
    return out


def print_status(s: dict) -> None:
    print(f"region {s['region']}, account {s['account']}, stage {s['stage']}: {'deployed' if s['deployed'] else 'not deployed'}")
    f = s.get("function")
    if f:
        print(f"  function  {f['name']} {f['state']} {f['runtime']} {f['architectures'][0]} {f['memory_mb']} MB {f['timeout_s']} s, "
              f"tracing {f['tracing']}; alias {f['alias']} -> version {f['alias_version']} (versions: {', '.join(f['versions'])})")
        print(f"  runtime   {f['runtime_support']}")
    else:
        print("  function  none")
    print(f"  API       {s['api']['url']}" if s.get("api") else "  API       none")
    if s.get("usage_plan"):
        u = s["usage_plan"]
        print(f"  plan      throttle {u['throttle']}, quota {u['quota']}")
    if s.get("api_key"):
        k = s["api_key"]
        print(f"  key       {k['id']} (enabled: {k['enabled']}), value in {k['kept_in']}" + (f": {k['value']}" if k.get("value") else ""))
    print(f"  bucket    {s['bucket'] or 'none'}")
    for a, st in (s.get("alarms") or {}).items():
        print(f"  alarm     {a}: {st}")
    m = s.get("metrics") or {}
    if m:
        print(f"  last {m['hours']} h  invocations {m['invocations']:.0f}, errors {m['errors']:.0f}, throttles {m['throttles']:.0f}, "
              f"duration avg {m['duration_ms_avg'] or 0:.1f} ms, p99 {m['duration_ms_p99'] or 0:.1f} ms")


# --- teardown ---------------------------------------------------------------------------------------

def teardown(aws: Aws, purge: bool = False) -> dict:
    template = settings.load_template()
    name = template["Resources"][settings.FUNCTION_RESOURCE]["Properties"]["FunctionName"]
    removed: list[str] = []
    apigw, lam, cw, iam = aws("apigateway"), aws("lambda"), aws("cloudwatch"), aws("iam")

    alarms = [a["AlarmName"] for a in alarm_configs(template)]
    cw.delete_alarms(AlarmNames=alarms)
    removed.append(f"alarms {', '.join(alarms)}")
    plan = find_usage_plan(aws)
    if plan:
        for k in apigw.get_usage_plan_keys(usagePlanId=plan["id"]).get("items", []):
            apigw.delete_usage_plan_key(usagePlanId=plan["id"], keyId=k["id"])
        stages = plan.get("apiStages", [])
        if stages:
            apigw.update_usage_plan(usagePlanId=plan["id"], patchOperations=[
                {"op": "remove", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"} for s in stages])
        apigw.delete_usage_plan(usagePlanId=plan["id"])
        removed.append(f"usage plan {PLAN_NAME}")
    key = find_api_key(aws)
    if key:
        apigw.delete_api_key(apiKey=key["id"])
        removed.append(f"API key {key['id']}")
    api = find_rest_api(aws)
    if api:
        apigw.delete_rest_api(restApiId=api["id"])
        removed.append(f"REST API {API_NAME} ({api['id']})")
    try:
        lam.delete_function(FunctionName=name)  # its versions, alias and permissions go with it
        removed.append(f"function {name} with its versions and alias")
    except aws.exc.ClientError as e:
        if aws.code(e) != "ResourceNotFoundException":
            raise
    for v in lam.list_layer_versions(LayerName=LAYER_NAME).get("LayerVersions", []):
        lam.delete_layer_version(LayerName=LAYER_NAME, VersionNumber=v["Version"])
        removed.append(f"layer {LAYER_NAME}:{v['Version']}")
    try:
        for policy in iam.list_attached_role_policies(RoleName=ROLE_NAME)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=ROLE_NAME, PolicyArn=policy["PolicyArn"])
        iam.delete_role(RoleName=ROLE_NAME)
        removed.append(f"IAM role {ROLE_NAME}")
    except aws.exc.ClientError as e:
        if aws.code(e) != "NoSuchEntity":
            raise
    try:
        aws("logs").delete_log_group(logGroupName=f"/aws/lambda/{name}")
        removed.append(f"log group /aws/lambda/{name}")
    except aws.exc.ClientError:
        pass
    try:
        aws("ssm").delete_parameter(Name=KEY_PARAMETER)
        removed.append(f"SSM parameter {KEY_PARAMETER}")
    except aws.exc.ClientError:
        pass
    bucket = bucket_name(aws, aws.account())
    if purge:
        s3 = aws("s3")
        try:
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
                objs = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                if objs:
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": objs})
            s3.delete_bucket(Bucket=bucket)
            removed.append(f"bucket {bucket} and every object version in it")
        except aws.exc.ClientError as e:
            if aws.code(e) not in ("NoSuchBucket", "404"):
                raise
    for r in removed:
        say("teardown", f"deleted {r}")
    if not purge:
        say("teardown", f"kept the versioned model bucket s3://{bucket} (pass --purge to delete it)")
    return {"removed": removed, "kept_bucket": None if purge else bucket}


# --- CLI --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["deploy", "status", "teardown"])
    p.add_argument("--region", default=None, help="AWS region (default: your AWS config or AWS_DEFAULT_REGION)")
    p.add_argument("--profile", default=None, help="AWS profile from ~/.aws")
    p.add_argument("--endpoint-url", default=None, help="send every call here instead of AWS (an emulator such as moto server)")
    p.add_argument("--stage", default=None, help="API Gateway stage (default: the template's StageName, prod)")
    p.add_argument("--purge", action="store_true", help="teardown: also delete the versioned model bucket")
    p.add_argument("--json", action="store_true", help="print the result as JSON (for the dashboard)")
    p.add_argument("--show-key", action="store_true", help="status: print the API key's value")
    p.add_argument("--no-build", action="store_true", help="deploy dist/ as it is")
    p.add_argument("--arch", choices=["x86_64", "arm64"], default=None,
                   help="deploy: instruction set (default: the template's Architecture); arm64 is 20%% cheaper per GB-s")
    p.add_argument("--snapstart", action="store_true", help="deploy: turn on SnapStart for published versions (Python 3.12+)")
    args = p.parse_args(argv)
    params = {k: v for k, v in {"Architecture": args.arch,
                                "SnapStart": "PublishedVersions" if args.snapstart else None}.items() if v}

    try:
        aws = Aws(args.region, args.profile, args.endpoint_url)
        if args.command == "deploy":
            result = deploy(aws, args.stage, build=not args.no_build, params=params)
        elif args.command == "status":
            result = status(aws, args.stage, show_key=args.show_key)
            if not args.json:
                print_status(result)
        else:
            result = teardown(aws, purge=args.purge)
    except DeployError as e:
        print(f"deploy.py: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # botocore's errors, reworded: no traceback for a configuration problem
        print(f"deploy.py: {_explain(e, args)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    return 0


def _explain(e: Exception, args) -> str:
    import botocore.exceptions as bx

    if isinstance(e, bx.NoCredentialsError | bx.PartialCredentialsError):
        return "no usable AWS credentials: run `aws configure`, set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or pass --profile"
    if isinstance(e, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        where = args.endpoint_url or "AWS"
        return f"cannot reach {where}: {e}. Check the network{' and that the emulator is running' if args.endpoint_url else ''}"
    if isinstance(e, bx.ClientError):
        code = e.response.get("Error", {}).get("Code", "")
        if code in ("UnrecognizedClientException", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "AuthFailure"):
            return f"AWS rejected the credentials ({code}): refresh them with `aws configure` or `aws sso login`"
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return f"permission denied ({code}): {e.response['Error'].get('Message', '')}. The deploying identity needs " \
                   "Lambda, API Gateway, IAM, S3, SSM and CloudWatch permissions"
        return f"AWS error {code}: {e.response.get('Error', {}).get('Message', e)}"
    if isinstance(e, bx.BotoCoreError):
        return f"{type(e).__name__}: {e}"
    if isinstance(e, SystemExit):
        return str(e.code)
    raise e


if __name__ == "__main__":
    sys.exit(main())
