"""deploy.py against moto's server: deploy, deploy again (no duplicates), status, teardown, deploy again."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import boto3
import pytest
import requests
import settings

from deployer import commands as deploy
from deployer import release
from deployer.aws import tag_list
from tests.support import ROOT

pytestmark = pytest.mark.integration


def client(service, url):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1")


def inventory(url) -> dict:
    """What exists, counted by kind: duplicates and leftovers show up here."""
    apigw, lam, v2 = client("apigateway", url), client("lambda", url), client("apigatewayv2", url)
    fns = sorted(f["FunctionName"] for f in lam.list_functions()["Functions"])
    return {
        "apis": sorted(a["name"] for a in apigw.get_rest_apis()["items"]),
        "http_apis": sorted(a["Name"] for a in v2.get_apis().get("Items", [])),
        "keys": sorted(k["name"] for k in apigw.get_api_keys()["items"]),
        "plans": sorted(p["name"] for p in apigw.get_usage_plans()["items"]),
        "functions": fns,
        "urls": sum(has_url(lam, f) for f in fns),
        "layers": len(lam.list_layer_versions(LayerName=NAMES["layer"]).get("LayerVersions", [])),
        "alarms": sorted(a["AlarmName"] for a in client("cloudwatch", url).describe_alarms()["MetricAlarms"]),
        "roles": sorted(r["RoleName"] for r in client("iam", url).list_roles()["Roles"] if r["RoleName"].startswith("financial")),
        "buckets": sorted(b["Name"] for b in client("s3", url).list_buckets()["Buckets"]),
        "parameters": sorted(p["Name"] for p in client("ssm", url).describe_parameters()["Parameters"]),
        "log_groups": sorted(g["logGroupName"] for g in client("logs", url).describe_log_groups()["logGroups"]),
    }


def has_url(lam, function: str) -> bool:
    """moto has no list_function_url_configs: ask for the one on the alias."""
    try:
        lam.get_function_url_config(FunctionName=function, Qualifier="live")
        return True
    except lam.exceptions.ResourceNotFoundException:
        return False


NAMES = settings.names()
TAGS = settings.tags()
EMPTY = {
    "apis": [],
    "http_apis": [],
    "keys": [],
    "plans": [],
    "functions": [],
    "urls": 0,
    "layers": 0,
    "alarms": [],
    "roles": [],
    "parameters": [],
    "log_groups": [],
}


def reset(url):
    requests.post(f"{url}/moto-api/reset", timeout=10, verify=os.environ["AWS_CA_BUNDLE"]).raise_for_status()
    requests.post(
        f"{url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10, verify=os.environ["AWS_CA_BUNDLE"]
    ).raise_for_status()


@pytest.fixture(scope="session")
def small_layer(tmp_path_factory):
    """The layer for deploys whose package never runs (moto cannot run code): uploading the real 21 MB layer to
    moto in every test was most of a deploy's time. A deploy with check=True builds and uses the real one."""
    import zipfile

    path = tmp_path_factory.mktemp("layer") / "layer.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("python/placeholder.txt", "moto never runs this layer")
    return path


@pytest.fixture
def aws(aws_env, built_packages, small_layer):
    reset(aws_env)
    a = deploy.Aws("us-east-1", None, aws_env)
    a.small_layer = small_layer
    yield a
    reset(aws_env)


def run(aws, **kwargs):
    """deploy.deploy against moto, which cannot run code: the post-publish invoke is tested with a stub below.
    Without the package check, dist/'s function zip is deployed with the small layer."""
    import package

    kwargs = {"verify": False, "check": False, **kwargs}
    if kwargs["check"]:
        return deploy.deploy(aws, **kwargs)
    real = package.paths
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(package, "paths", lambda target=None: (real(target)[0], aws.small_layer))
        return deploy.deploy(aws, build=False, **kwargs)


class Answering:
    """A boundary fake for the Lambda client's invoke (moto cannot run code): versions in `bad` answer as a
    version that fails at import would, every other version answers the samples soundly."""

    def __init__(self, real, bad=()):
        self.real, self.bad, self.calls = real, set(bad), []

    def invoke(self, FunctionName, Qualifier, Payload):
        import io

        self.calls.append(Qualifier)
        if Qualifier in self.bad:
            body = b'{"errorMessage": "Unable to import module \'lambda_handler\'", "errorType": "Runtime.ImportModuleError"}'
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(body)}
        event = json.loads(Payload)
        body = {"prediction": 1.0} if "features" in event else {"statusCode": 200}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(body).encode())}

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def answering(aws, monkeypatch):
    """Deploys that invoke their new version through the fake above; `answering.bad` names the broken versions."""
    fake = Answering(aws("lambda"))
    monkeypatch.setitem(aws._clients, "lambda", fake)
    return fake


def test_deploy_creates_everything_tagged_and_is_idempotent(aws, aws_env, capsys):
    first = run(aws)  # the package check passing is covered by test_a_failing_new_version_never_becomes_live
    out = capsys.readouterr().out
    assert "[14/14]" in out and f"Invoke URL: {first['url']}" in out
    key = client("ssm", aws_env).get_parameter(Name=NAMES["key_parameter"], WithDecryption=True)["Parameter"]["Value"]
    assert key and key not in out, "the key must not be printed by default"

    lam, apigw = client("lambda", aws_env), client("apigateway", aws_env)
    template = settings.load_template()
    expected = deploy.function_config(template, hashlib.sha256(key.encode()).hexdigest())
    fn = lam.get_function(FunctionName=NAMES["function"])
    cfg = fn["Configuration"]
    for field in ("Runtime", "Handler", "MemorySize", "Timeout", "Architectures", "TracingConfig"):
        assert cfg[field] == expected[field], field
    assert cfg["Runtime"] == "python3.13" and cfg["Architectures"] == ["x86_64"] and cfg["TracingConfig"]["Mode"] == "Active"
    assert cfg["Environment"]["Variables"]["API_KEY_SHA256"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(cfg), "the function holds only the key's hash"
    assert fn["Tags"] == TAGS
    assert lam.get_alias(FunctionName=NAMES["function"], Name="live")["FunctionVersion"] == first["version"]

    resources = {r["path"]: r for r in apigw.get_resources(restApiId=first["api_id"])["items"]}
    for route in settings.api_routes(template):
        m = apigw.get_method(restApiId=first["api_id"], resourceId=resources[route["path"]]["id"], httpMethod=route["method"])
        assert bool(m.get("apiKeyRequired")) == route["api_key_required"], route
        assert m["methodIntegration"]["type"] == "AWS_PROXY"
        assert m["methodIntegration"]["uri"].endswith(f"{first['alias_arn']}/invocations")
        assert bool(m.get("requestValidatorId")) == (route == {"path": "/predict", "method": "POST", "api_key_required": True})
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        params = apigw.get_gateway_response(restApiId=first["api_id"], responseType=kind)["responseParameters"]
        assert params["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"
    assert apigw.get_rest_api(restApiId=first["api_id"])["tags"] == TAGS
    stage = apigw.get_stage(restApiId=first["api_id"], stageName="prod")
    assert stage["tracingEnabled"] is True
    plan = apigw.get_usage_plan(usagePlanId=first["usage_plan_id"])
    assert plan["throttle"] == {"rateLimit": 50.0, "burstLimit": 100} and plan["quota"]["limit"] == 300000
    assert [k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]] == [first["key_id"]]
    assert apigw.get_api_key(apiKey=first["key_id"], includeValue=True)["value"] == key
    s3 = client("s3", aws_env)
    assert s3.get_bucket_versioning(Bucket=first["bucket"])["Status"] == "Enabled"
    assert (
        s3.get_bucket_encryption(Bucket=first["bucket"])["ServerSideEncryptionConfiguration"]["Rules"][0][
            "ApplyServerSideEncryptionByDefault"
        ]["SSEAlgorithm"]
        == "AES256"
    )
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=first["bucket"])["Rules"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
    policy = json.loads(s3.get_bucket_policy(Bucket=first["bucket"])["Policy"])
    assert policy["Statement"][0]["Effect"] == "Deny" and policy["Statement"][0]["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=first["bucket"])["Contents"]]
    assert f"models/{first['model_version']}/model.onnx" in keys and f"models/{first['model_version']}/manifest.json" in keys
    [group] = [g for g in client("logs", aws_env).describe_log_groups()["logGroups"] if g["logGroupName"] == NAMES["log_group"]]
    assert group["retentionInDays"] == 30
    iam = client("iam", aws_env)
    assert {a["PolicyArn"] for a in iam.list_attached_role_policies(RoleName=NAMES["role"])["AttachedPolicies"]} == set(
        deploy.plan()["role"]["ManagedPolicyArns"]
    )

    before = inventory(aws_env)
    assert len(before["alarms"]) == 4 and before["layers"] == 1
    second = run(aws)
    assert inventory(aws_env) == before, "a second deploy must update, never duplicate"
    assert second["api_id"] == first["api_id"] and second["key_id"] == first["key_id"]
    assert lam.get_alias(FunctionName=NAMES["function"], Name="live")["FunctionVersion"] == second["version"]


@pytest.mark.parametrize("door", ["rest", "http", "url"])
def test_each_front_door_deploys_switches_and_tears_down_to_nothing(aws, aws_env, door):
    other = {"rest": "http", "http": "url", "url": "rest"}[door]
    run(aws, params={"FrontDoor": other})
    result = run(aws, params={"FrontDoor": door})
    inv = inventory(aws_env)
    assert (inv["apis"] != []) == (door == "rest") and (inv["keys"] != []) == (door == "rest")
    assert (inv["http_apis"] != []) == (door == "http") and (inv["urls"] == 1) == (door == "url"), inv
    s = deploy.status(aws, params={"FrontDoor": door})
    assert s["deployed"] and s["front_door"] == door and s["url"] == result["url"]
    lam = client("lambda", aws_env)
    if door == "url":
        policy = json.loads(lam.get_policy(FunctionName=NAMES["function"], Qualifier="live")["Policy"])
        actions = {st["Action"] for st in policy["Statement"]}
        assert {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"} <= actions
        assert lam.get_function_concurrency(FunctionName=NAMES["function"])["ReservedConcurrentExecutions"] == 10
    if door == "http":
        routes = sorted(r["RouteKey"] for r in client("apigatewayv2", aws_env).get_routes(ApiId=result["api_id"])["Items"])
        assert routes == ["GET /health", "GET /model", "POST /predict"]
    deploy.teardown(aws, purge=True)
    assert {k: v for k, v in inventory(aws_env).items() if k != "buckets"} == EMPTY
    assert inventory(aws_env)["buckets"] == []


def test_teardown_keeps_the_bucket_unless_purged(aws, aws_env):
    first = run(aws)
    deploy.teardown(aws)
    left = inventory(aws_env)
    assert {k: v for k, v in left.items() if k != "buckets"} == EMPTY and left["buckets"] == [first["bucket"]]
    again = run(aws)
    assert deploy.status(aws)["deployed"] and again["url"] != first["url"]


def test_rollback_and_versions(aws, aws_env, answering, capsys):
    from deployer.status import print_status

    run(aws, verify=True)
    run(aws, verify=True)
    third = run(aws, verify=True)
    s = deploy.status(aws)
    assert [v["version"] for v in s["function"]["versions"]] == ["1", "2", "3"]
    assert [v["live"] for v in s["function"]["versions"]] == [False, False, True]
    assert [v["check"] for v in s["function"]["versions"]] == ["passed"] * 3
    assert all(v["model"] == third["model_version"] and v["date"] for v in s["function"]["versions"])
    print_status(s)
    assert "live" in capsys.readouterr().out
    assert deploy.rollback(aws) == {"from": "3", "to": "2"}
    assert deploy.rollback(aws) == {"from": "2", "to": "3"}, "by default, back to the version live was on before"
    assert deploy.rollback(aws, to="1") == {"from": "3", "to": "1"}
    with pytest.raises(deploy.DeployError, match="does not exist"):
        deploy.rollback(aws, to="9")


def test_canary_routes_a_share_then_promotes(aws, aws_env, monkeypatch):
    run(aws)
    seen = []
    real = release.alarm_states

    def watch(a, names):
        seen.append(client("lambda", aws_env).get_alias(FunctionName=NAMES["function"], Name="live"))
        return real(a, names)

    monkeypatch.setattr(release, "alarm_states", watch)
    second = run(aws, canary=10, canary_minutes=0.02, poll_s=0.3)
    assert seen and seen[0]["FunctionVersion"] == "1"
    assert seen[0]["RoutingConfig"]["AdditionalVersionWeights"] == {second["version"]: 0.1}
    alias = client("lambda", aws_env).get_alias(FunctionName=NAMES["function"], Name="live")
    assert alias["FunctionVersion"] == second["version"] and not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")


def test_canary_rolls_back_when_an_alarm_fires(aws, aws_env, monkeypatch):
    run(aws)
    real = release.alarm_states

    def firing(a, names):  # moto never evaluates alarms: the new version's own errors alarm fires once it exists
        client("cloudwatch", aws_env).set_alarm_state(
            AlarmName=f"{NAMES['function']}-errors-canary", StateValue="ALARM", StateReason="t"
        )
        return real(a, names)

    monkeypatch.setattr(release, "alarm_states", firing)
    with pytest.raises(deploy.DeployError, match="canary rolled back.*errors-canary"):
        run(aws, canary=25, canary_minutes=0.02, poll_s=0.3)
    alias = client("lambda", aws_env).get_alias(FunctionName=NAMES["function"], Name="live")
    assert alias["FunctionVersion"] == "1" and not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")


class FailingLambda:
    """A boundary fake: the Lambda client's invoke, answering as a version that fails at import would."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def invoke(self, **kwargs):
        import io

        self.calls.append(kwargs)
        body = b'{"errorMessage": "Unable to import module \'lambda_handler\'", "errorType": "Runtime.ImportModuleError"}'
        return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(body)}

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_failing_new_version_never_becomes_live(aws, aws_env, monkeypatch, capsys):
    run(aws)
    real = aws("lambda")
    fake = FailingLambda(real)
    monkeypatch.setitem(aws._clients, "lambda", fake)
    with pytest.raises(deploy.DeployError) as err:
        deploy.deploy(aws, verify=True)
    assert "version 2 did not answer" in str(err.value) and "stays on 1" in str(err.value)
    assert "Runtime.ImportModuleError" in str(err.value)
    assert {c["Qualifier"] for c in fake.calls} == {"2"}, "the new version itself is invoked, never the alias"
    assert real.get_alias(FunctionName=NAMES["function"], Name="live")["FunctionVersion"] == "1"


def test_verify_version_accepts_a_sound_answer():
    assert release.verify_version(Answering(None), "f", "7") == []


def test_a_broken_package_is_refused_before_upload(aws, aws_env, built_packages, monkeypatch, tmp_path):
    import zipfile

    import package

    tampered = tmp_path / "fn.zip"
    with zipfile.ZipFile(built_packages[0]) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "runtime/model.onnx":
                data = data[:-1] + bytes([data[-1] ^ 0xFF])  # fails its sha256 in the manifest
            dst.writestr(item, data)
    monkeypatch.setattr(package, "paths", lambda target=None: (tampered, built_packages[1]))
    with pytest.raises(deploy.DeployError, match=r"nothing was uploaded(.|\n)*GET /health: expected HTTP 200, got 503"):
        deploy.deploy(aws, build=False, verify=False)
    assert {k: v for k, v in inventory(aws_env).items() if k != "buckets"} == EMPTY and inventory(aws_env)["buckets"] == []


# --- collisions: touch only what is ours ------------------------------------------------------------


def foreign_rest_api(url, name):
    apigw = client("apigateway", url)
    api = apigw.create_rest_api(name=name, description="someone else's")
    root = apigw.get_resources(restApiId=api["id"])["items"][0]["id"]
    apigw.create_resource(restApiId=api["id"], parentId=root, pathPart="their-route")
    return api["id"]


@pytest.mark.parametrize(
    "kind",
    [
        "rest_api",
        "http_api",
        "api_key",
        "usage_plan",
        "role",
        "other_stack_role",
        "function",
        "parameter",
        "alarm",
        "log_group",
        "bucket",
    ],
)
def test_a_foreign_namesake_stops_deploy_and_teardown_before_any_change(aws, aws_env, kind):
    if kind == "other_stack_role":  # this app's tag, another stack's: not ours either
        client("iam", aws_env).create_role(
            RoleName=NAMES["role"],
            AssumeRolePolicyDocument=json.dumps(deploy.plan()["role"]["AssumeRolePolicyDocument"]),
            Tags=tag_list({**TAGS, "forecast-stack": "another-stack"}),
        )
    elif kind == "log_group":
        client("logs", aws_env).create_log_group(logGroupName=NAMES["log_group"], tags={"app": "someone-else"})
    elif kind == "bucket":  # our account-and-region name, untagged, but holding someone's objects: not ours to resume
        s3 = client("s3", aws_env)
        bucket = f"{TAGS['app']}-models-123456789012-us-east-1"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="theirs.txt", Body=b"x")
    elif kind == "rest_api":
        foreign_rest_api(aws_env, NAMES["api"])
    elif kind == "http_api":
        client("apigatewayv2", aws_env).create_api(Name=NAMES["api"], ProtocolType="HTTP")
    elif kind == "api_key":
        client("apigateway", aws_env).create_api_key(name=NAMES["key"], enabled=True, value="x" * 30)
    elif kind == "usage_plan":
        client("apigateway", aws_env).create_usage_plan(name=NAMES["plan"])
    elif kind == "role":
        iam = client("iam", aws_env)
        iam.create_role(
            RoleName=NAMES["role"], AssumeRolePolicyDocument=json.dumps(deploy.plan()["role"]["AssumeRolePolicyDocument"])
        )
        iam.attach_role_policy(RoleName=NAMES["role"], PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    elif kind == "function":
        import package

        role = client("iam", aws_env).create_role(
            RoleName="someone-elses-role", AssumeRolePolicyDocument=json.dumps(deploy.plan()["role"]["AssumeRolePolicyDocument"])
        )["Role"]["Arn"]
        client("lambda", aws_env).create_function(
            FunctionName=NAMES["function"],
            Runtime="python3.13",
            Handler="x.y",
            Role=role,
            Code={"ZipFile": package.paths()[0].read_bytes()},
        )
    elif kind == "parameter":
        client("ssm", aws_env).put_parameter(Name=NAMES["key_parameter"], Value="y" * 30, Type="SecureString")
    elif kind == "alarm":
        client("cloudwatch", aws_env).put_metric_alarm(**deploy.alarm_configs(settings.load_template())[0])
    before = inventory(aws_env)
    with pytest.raises(deploy.Collision, match="is not this stack's|not ours"):
        run(aws)
    assert inventory(aws_env) == before, "nothing may be created when a name collides"
    with pytest.raises(deploy.Collision):
        deploy.teardown(aws, purge=True)
    assert inventory(aws_env) == before, "teardown must not delete what it does not own"


def test_our_role_with_extra_policies_is_refused(aws, aws_env):
    run(aws)
    client("iam", aws_env).attach_role_policy(RoleName=NAMES["role"], PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    with pytest.raises(deploy.Collision, match="AdministratorAccess"):
        run(aws)


@pytest.mark.parametrize(
    "value, kind, match",
    [("short-key", "SecureString", "at least 20"), ("a-plaintext-key-of-30-chars-xx", "String", "plaintext")],
)
def test_the_key_is_checked_before_anything_is_created(aws, aws_env, value, kind, match):
    client("ssm", aws_env).put_parameter(Name=NAMES["key_parameter"], Value=value, Type=kind, Tags=tag_list(TAGS))
    before = inventory(aws_env)
    with pytest.raises(deploy.DeployError, match=match):
        run(aws)
    assert inventory(aws_env) == before


def test_teardown_deletes_only_the_layer_versions_it_published(aws, aws_env, built_packages):
    lam = client("lambda", aws_env)
    theirs = lam.publish_layer_version(
        LayerName=NAMES["layer"], Content={"ZipFile": built_packages[1].read_bytes()}, Description="someone else's build"
    )["Version"]
    run(aws)
    assert inventory(aws_env)["layers"] == 2
    deploy.teardown(aws)
    assert [v["Version"] for v in lam.list_layer_versions(LayerName=NAMES["layer"])["LayerVersions"]] == [theirs]


def run_cli(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k == "AWS_CA_BUNDLE"}
    env.update({"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "deployer", *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_no_credentials_is_a_clear_message():
    r = run_cli("deploy", "--region", "us-east-1")
    assert r.returncode == 2 and "no AWS credentials" in r.stderr and "aws configure" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_no_region_is_a_clear_message():
    r = run_cli("status", env_extra={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"})
    assert r.returncode == 2 and "--region" in r.stderr and "Traceback" not in r.stderr


def test_unreachable_endpoint_is_a_clear_message():
    r = run_cli(
        "status",
        "--region",
        "us-east-1",
        "--endpoint-url",
        "http://127.0.0.1:9",
        env_extra={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
    )
    assert r.returncode == 2 and "cannot reach http://127.0.0.1:9" in r.stderr and "Traceback" not in r.stderr


def test_cli_json_status_and_plan(aws_env):
    r = run_cli(
        "status",
        "--json",
        "--region",
        "us-east-1",
        "--endpoint-url",
        aws_env,
        env_extra={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["region"] == "us-east-1"
    r = run_cli("plan", "--json", "--api", "url")
    assert r.returncode == 0 and json.loads(r.stdout)["names"]["front_door"] == "url"


def test_a_retired_runtime_is_refused_before_anything_is_created(aws, aws_env, monkeypatch, capsys):
    """moto accepts any runtime string; deploy.py must not: python3.10 (Amazon Linux 2) is blocked, nothing is made."""
    a = aws
    before = inventory(aws_env)
    real = settings.function_settings

    def with_old_runtime(template=None, params=None):
        return real(template, {**(params or {}), "PythonRuntime": "python3.10"})

    monkeypatch.setattr(settings, "function_settings", with_old_runtime)
    with pytest.raises(deploy.DeployError) as err:
        deploy.deploy(a)
    message = str(err.value)
    assert "python3.10" in message and "2026-11-30" in message and "PythonRuntime" in message and "Nothing was created" in message
    assert inventory(aws_env) == before
    assert inventory(aws_env)["parameters"] == [], "not even the key may be created before the refusal"


@pytest.mark.parametrize(
    "runtime, today, creating, state",
    [
        ("python3.13", "2026-11-26", True, "supported"),
        ("python3.13", "2029-03-01", True, "deprecating"),  # within a year: a warning, not a refusal
        ("python3.12", "2028-11-01", False, "deprecating"),  # deprecated, updates not blocked until 2029-01-10
        ("python3.12", "2028-12-01", True, "blocked"),  # creates blocked from 2028-11-30
        ("python3.11", "2026-11-30", True, "deprecating"),  # deprecation extended to 2027-06-30: a warning, not retired
        ("python3.11", "2027-07-31", True, "blocked"),  # creates blocked from 2027-07-31
        ("python3.11", "2027-08-30", False, "deprecating"),  # updates still allowed until 2027-08-31
        ("python3.10", "2026-11-30", True, "blocked"),  # creates blocked from 2026-11-30
        ("python3.9", "2026-01-01", True, "blocked"),  # no confirmed create block: blocked from deprecation
        ("python3.99", "2026-11-26", True, "unknown"),
    ],
)
def test_runtime_lifecycle_rules(runtime, today, creating, state):
    from datetime import date

    from deployer import lifecycle

    v = lifecycle.verdict(runtime, today=date.fromisoformat(today), creating=creating)
    assert v.state == state, v.message
    assert v.blocked == (state in ("blocked", "unknown"))


def test_python311_is_a_warning_with_its_dates_not_retired():
    """AWS extended python3.11 to 2027-06-30 (English "Building Lambda functions with Python" page, checked
    2026-11-30): the guard warns with every date and never calls it retired before then."""
    from datetime import date

    from deployer import lifecycle

    v = lifecycle.verdict("python3.11", today=date(2026, 11, 30), creating=True)
    assert v.state == "deprecating" and not v.blocked
    assert "2027-06-30" in v.message and "2027-07-31" in v.message and "2027-08-31" in v.message
    assert "retired" not in v.message and "still deploys" in v.message


@pytest.mark.parametrize("url", ["not a url", "http://[::1", "http://127.0.0.1:99999", "ftp://x"])
def test_a_malformed_endpoint_url_is_one_line_before_any_call(url):
    """The hostile pass: botocore's ValueError escaped as a traceback."""
    r = run_cli("status", "--region", "us-east-1", "--endpoint-url", url)
    assert r.returncode == 2 and "--endpoint-url" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_an_endpoint_that_is_not_aws_is_named_not_a_traceback():
    """botocore's ResponseParserError is not a BotoCoreError: a plain web server behind --endpoint-url."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        r = run_cli(
            "status",
            "--region",
            "us-east-1",
            "--endpoint-url",
            url,
            env_extra={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
        )
    finally:
        server.shutdown()
        server.server_close()
    assert r.returncode == 2 and "not an AWS API's response" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_lifecycle_help_is_help_not_a_runtime(capsys):
    from deployer import lifecycle

    with pytest.raises(SystemExit) as done:
        lifecycle.main(["--help"])
    assert done.value.code == 0 and "usage: python -m deployer.lifecycle" in capsys.readouterr().out
    assert lifecycle.main(["python3.13"]) == 0 and lifecycle.main(["python9.9"]) == 1
