"""deploy.py against moto's server: deploy, deploy again (no duplicates), status, teardown, deploy again."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import boto3
import pytest

from tests.support import LAMBDA_DIR, ROOT

sys.path.insert(0, str(LAMBDA_DIR))
import deploy  # noqa: E402
import settings  # noqa: E402

pytestmark = pytest.mark.integration


def client(service, url):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1")


def inventory(url) -> dict:
    """What exists, counted by kind: duplicates would show up here."""
    apigw, lam = client("apigateway", url), client("lambda", url)
    return {
        "apis": sorted(a["name"] for a in apigw.get_rest_apis()["items"]),
        "keys": sorted(k["name"] for k in apigw.get_api_keys()["items"]),
        "plans": sorted(p["name"] for p in apigw.get_usage_plans()["items"]),
        "functions": sorted(f["FunctionName"] for f in lam.list_functions()["Functions"]),
        "layers": len(lam.list_layer_versions(LayerName=deploy.LAYER_NAME).get("LayerVersions", [])),
        "alarms": sorted(a["AlarmName"] for a in client("cloudwatch", url).describe_alarms()["MetricAlarms"]),
        "roles": sorted(r["RoleName"] for r in client("iam", url).list_roles()["Roles"] if r["RoleName"].startswith("financial")),
        "buckets": sorted(b["Name"] for b in client("s3", url).list_buckets()["Buckets"]),
    }


@pytest.fixture
def aws(aws_env, built_packages):
    a = deploy.Aws("us-east-1", None, aws_env)
    yield a
    deploy.teardown(a, purge=True)


def test_deploy_creates_everything_and_is_idempotent(aws, aws_env, capsys):
    first = deploy.deploy(aws)
    out = capsys.readouterr().out
    assert "[10/10] done. Invoke URL:" in out and first["url"] in out
    key = deploy.get_key(aws)
    assert key and key not in out, "the key must not be printed by default"

    lam, apigw = client("lambda", aws_env), client("apigateway", aws_env)
    template = settings.load_template()
    expected = deploy.function_config(template, hashlib.sha256(key.encode()).hexdigest())
    cfg = lam.get_function_configuration(FunctionName="financial-forecasting-lstm")
    for field in ("Runtime", "Handler", "MemorySize", "Timeout", "Architectures", "TracingConfig"):
        assert cfg[field] == expected[field], field
    assert cfg["Runtime"] == "python3.13" and cfg["Architectures"] == ["x86_64"] and cfg["TracingConfig"]["Mode"] == "Active"
    assert cfg["Environment"]["Variables"]["API_KEY_SHA256"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(cfg), "the function holds only the key's hash"
    assert lam.get_alias(FunctionName="financial-forecasting-lstm", Name="live")["FunctionVersion"] == first["version"]

    resources = {r["path"]: r for r in apigw.get_resources(restApiId=first["api_id"])["items"]}
    for route in settings.api_routes(template):
        m = apigw.get_method(restApiId=first["api_id"], resourceId=resources[route["path"]]["id"], httpMethod=route["method"])
        assert bool(m.get("apiKeyRequired")) == route["api_key_required"], route
        assert m["methodIntegration"]["type"] == "AWS_PROXY"
        assert m["methodIntegration"]["uri"].endswith(f"{first['alias_arn']}/invocations")
    stage = apigw.get_stage(restApiId=first["api_id"], stageName="prod")
    assert stage["tracingEnabled"] is True
    plan = apigw.get_usage_plan(usagePlanId=first["usage_plan_id"])
    assert plan["throttle"] == {"rateLimit": 50.0, "burstLimit": 100} and plan["quota"]["limit"] == 300000
    assert [k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]] == [first["key_id"]]
    assert apigw.get_api_key(apiKey=first["key_id"], includeValue=True)["value"] == key
    s3 = client("s3", aws_env)
    assert s3.get_bucket_versioning(Bucket=first["bucket"])["Status"] == "Enabled"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=first["bucket"])["Contents"]]
    assert f"models/{first['model_version']}/model.onnx" in keys and f"models/{first['model_version']}/manifest.json" in keys

    before = inventory(aws_env)
    assert len(before["alarms"]) == 3 and before["layers"] == 1
    second = deploy.deploy(aws)
    assert inventory(aws_env) == before, "a second deploy must update, never duplicate"
    assert second["api_id"] == first["api_id"] and second["key_id"] == first["key_id"] and deploy.get_key(aws) == key


def test_status_teardown_and_redeploy(aws, aws_env, capsys):
    assert deploy.status(aws)["deployed"] is False
    first = deploy.deploy(aws)
    s = deploy.status(aws)
    assert s["deployed"] and s["url"] == first["url"] and s["function"]["alias_version"] == first["version"]
    assert set(s["metrics"]) >= {"invocations", "errors", "throttles", "duration_ms_avg", "duration_ms_p99"}
    assert "value" not in s["api_key"] and deploy.status(aws, show_key=True)["api_key"]["value"] == deploy.get_key(aws)
    deploy.print_status(s)
    assert "alias live" in capsys.readouterr().out

    deploy.teardown(aws)
    left = inventory(aws_env)
    assert left["apis"] == left["keys"] == left["plans"] == left["functions"] == left["alarms"] == left["roles"] == []
    assert left["layers"] == 0 and left["buckets"] == [first["bucket"]], "the model bucket is kept without --purge"
    assert deploy.get_key(aws) is None

    again = deploy.deploy(aws)
    assert deploy.status(aws)["deployed"] and again["url"] != first["url"]
    deploy.teardown(aws, purge=True)
    assert inventory(aws_env)["buckets"] == []


def run_cli(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", **(env_extra or {})})
    return subprocess.run([sys.executable, str(LAMBDA_DIR / "deploy.py"), *args], capture_output=True, text=True, env=env, cwd=ROOT)


def test_no_credentials_is_a_clear_message():
    r = run_cli("deploy", "--region", "us-east-1")
    assert r.returncode == 2 and "no AWS credentials" in r.stderr and "aws configure" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_no_region_is_a_clear_message():
    r = run_cli("status", env_extra={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"})
    assert r.returncode == 2 and "--region" in r.stderr and "Traceback" not in r.stderr


def test_unreachable_endpoint_is_a_clear_message():
    r = run_cli("status", "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9",
                env_extra={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"})
    assert r.returncode == 2 and "cannot reach http://127.0.0.1:9" in r.stderr and "Traceback" not in r.stderr


def test_cli_json_status(aws_env):
    r = run_cli("status", "--json", "--region", "us-east-1", "--endpoint-url", aws_env,
                env_extra={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    assert r.returncode == 0, r.stderr
    import json

    assert json.loads(r.stdout)["region"] == "us-east-1"


def test_a_retired_runtime_is_refused_before_anything_is_created(aws_env, built_packages, monkeypatch, capsys):
    """moto accepts any runtime string; deploy.py must not: python3.11 (Amazon Linux 2) is blocked, nothing is made."""
    a = deploy.Aws("us-east-1", None, aws_env)
    before = inventory(aws_env)
    real = settings.function_settings

    def with_old_runtime(template=None, params=None):
        return real(template, {**(params or {}), "PythonRuntime": "python3.11"})

    monkeypatch.setattr(settings, "function_settings", with_old_runtime)
    with pytest.raises(deploy.DeployError) as err:
        deploy.deploy(a)
    message = str(err.value)
    assert "python3.11" in message and "2026-06-30" in message and "PythonRuntime" in message and "Nothing was created" in message
    assert inventory(aws_env) == before
    assert deploy.get_key(a) is None, "not even the key may be created before the refusal"


@pytest.mark.parametrize("runtime, today, creating, state", [
    ("python3.13", "2026-11-26", True, "supported"),
    ("python3.13", "2029-03-01", True, "deprecating"),     # within 180 days: a warning, not a refusal
    ("python3.12", "2028-11-01", False, "deprecating"),    # deprecated, updates not blocked until 2029-01-10
    ("python3.12", "2028-12-01", True, "blocked"),         # creates blocked from 2028-11-30
    ("python3.11", "2026-11-26", False, "blocked"),        # updates blocked from 2026-08-31
    ("python3.11", "2026-07-15", True, "blocked"),         # no confirmed create block: blocked from deprecation
    ("python3.99", "2026-11-26", True, "unknown"),
])
def test_runtime_lifecycle_rules(runtime, today, creating, state):
    from datetime import date

    import lifecycle

    v = lifecycle.verdict(runtime, today=date.fromisoformat(today), creating=creating)
    assert v.state == state, v.message
    assert v.blocked == (state in ("blocked", "unknown"))
