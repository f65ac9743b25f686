"""template.yaml: passes cfn-lint offline, and samtranslator's CloudFormation agrees with deploy.py."""
from __future__ import annotations

import copy
import hashlib
import subprocess
import sys

import pytest

import deploy
import settings
from tests.support import LAMBDA_DIR

KEY = "k" * 32
KEY_SHA = hashlib.sha256(KEY.encode()).hexdigest()


def test_cfn_lint_passes():
    from pathlib import Path

    exe = [str(Path(sys.executable).with_name("cfn-lint")), str(LAMBDA_DIR / "template.yaml")]
    r = subprocess.run(exe, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


class _Policies:
    """samtranslator asks IAM for managed policy ARNs; answer offline."""

    def load(self):
        return {"AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
                "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"}


@pytest.fixture(scope="module")
def cfn():
    from samtranslator.translator.transform import transform

    t = copy.deepcopy(settings.load_template())
    # `sam package` turns local paths into S3 URIs before the transform
    t["Resources"]["ForecastFunction"]["Properties"]["CodeUri"] = "s3://bucket/lambda_function.zip"
    t["Resources"]["DependenciesLayer"]["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
    params = {"ApiKeyValue": KEY, "ApiKeySha256": KEY_SHA, **{k: v for k, v in settings.parameter_defaults(t).items() if v is not None}}
    with pytest.MonkeyPatch.context() as mp:  # the transform asks boto3 for a region to build ARNs
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return transform(t, params, _Policies())


def of_type(cfn, kind):
    return [r for r in cfn["Resources"].values() if r["Type"] == kind]


def test_function_settings_agree(cfn):
    [fn] = of_type(cfn, "AWS::Lambda::Function")
    defaults = settings.parameter_defaults(settings.load_template())
    p = settings.resolve(fn["Properties"], {k: v for k, v in defaults.items() if v is not None})
    expected = deploy.function_config(settings.load_template(), KEY_SHA)
    for field in ("FunctionName", "Runtime", "Handler", "MemorySize", "Timeout", "Architectures", "TracingConfig", "SnapStart"):
        assert p[field] == expected[field], field
    assert expected["Runtime"] == "python3.13" and expected["SnapStart"] == {"ApplyOn": "None"}
    env = p["Environment"]["Variables"]
    assert set(env) == set(expected["Environment"]["Variables"])
    assert env["API_KEY_SHA256"] == {"Ref": "ApiKeySha256"}
    [alias] = of_type(cfn, "AWS::Lambda::Alias")
    assert alias["Properties"]["Name"] == deploy.ALIAS
    [layer] = of_type(cfn, "AWS::Lambda::LayerVersion")
    layer = settings.resolve(layer["Properties"], defaults)
    assert layer["LayerName"] == deploy.LAYER_NAME
    assert layer["CompatibleRuntimes"] == [expected["Runtime"]] and layer["CompatibleArchitectures"] == expected["Architectures"]


def test_runtime_is_named_once():
    """python3.13 appears in the template only as the PythonRuntime parameter's default; everything else refers to it."""
    text = (LAMBDA_DIR / "template.yaml").read_text()
    assert text.count("python3.13") == 2  # the default, and its place among AllowedValues
    assert "python3.11" not in text.replace("(python3.11 ran on Amazon Linux 2", "")


@pytest.mark.parametrize("overrides", [{"Architecture": "arm64"}, {"SnapStart": "PublishedVersions"}])
def test_overrides_reach_the_function(overrides):
    cfg = deploy.function_config(settings.load_template(), KEY_SHA, overrides)
    if "Architecture" in overrides:
        assert cfg["Architectures"] == ["arm64"]
    else:
        assert cfg["SnapStart"] == {"ApplyOn": "PublishedVersions"}


def test_api_routes_agree(cfn):
    [api] = of_type(cfn, "AWS::ApiGateway::RestApi")
    assert api["Properties"]["Name"] == deploy.API_NAME
    body = api["Properties"]["Body"]
    routes = []
    for path, methods in body["paths"].items():
        for method, op in methods.items():
            required = any("api_key" in s for s in op.get("security", []))
            routes.append({"path": path, "method": method.upper(), "api_key_required": required})
            assert op["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    assert sorted(routes, key=lambda r: (r["path"], r["method"])) == settings.api_routes()


def test_usage_plan_alarms_and_tracing_agree(cfn):
    [plan] = of_type(cfn, "AWS::ApiGateway::UsagePlan")
    expected = deploy.usage_plan_config(settings.load_template())
    assert plan["Properties"]["Throttle"] == {"RateLimit": {"Ref": "ThrottleRateLimit"}, "BurstLimit": {"Ref": "ThrottleBurstLimit"}}
    assert expected == {"throttle": {"rateLimit": 50.0, "burstLimit": 100}, "quota": {"limit": 300000, "period": "MONTH"}}
    names = sorted(a["Properties"]["AlarmName"] for a in of_type(cfn, "AWS::CloudWatch::Alarm"))
    assert names == sorted(a["AlarmName"] for a in deploy.alarm_configs(settings.load_template()))
    [stage] = of_type(cfn, "AWS::ApiGateway::Stage")
    assert stage["Properties"]["TracingEnabled"] is True
    assert [k["Properties"]["Value"] for k in of_type(cfn, "AWS::ApiGateway::ApiKey")] == [{"Ref": "ApiKeyValue"}]


def test_outputs(cfn):
    assert {"ApiUrl", "FunctionArn", "ApiKeyId", "ModelBucketName"} <= set(cfn["Outputs"])
