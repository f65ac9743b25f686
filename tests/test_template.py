"""template.yaml: passes cfn-lint offline, and samtranslator's CloudFormation agrees with deploy.py."""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys

import pytest
import settings

from deployer import commands as deploy
from tests.support import LAMBDA_DIR, ROOT

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
        return {
            "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
            "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
        }


def transformed(front_door: str) -> dict:
    from samtranslator.translator.transform import transform

    t = copy.deepcopy(settings.load_template())
    # `sam package` turns local paths into S3 URIs before the transform
    t["Resources"]["ForecastFunction"]["Properties"]["CodeUri"] = "s3://bucket/lambda_function.zip"
    t["Resources"]["DependenciesLayer"]["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
    t["Resources"]["LedgerFunction"]["Properties"]["CodeUri"] = "s3://bucket/ledger_function.zip"
    t["Resources"]["LedgerLayer"]["Properties"]["ContentUri"] = "s3://bucket/ledger_layer.zip"
    params = {"ApiKeyValue": KEY, "ApiKeySha256": KEY_SHA, **settings.params_with_defaults(t), "FrontDoor": front_door}
    with pytest.MonkeyPatch.context() as mp:  # the transform asks boto3 for a region to build ARNs
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        out = transform(t, params, _Policies())
    # what CloudFormation would create for this FrontDoor: resources whose Condition holds
    holds = {
        "IsRest": front_door == "rest",
        "IsHttp": front_door == "http",
        "IsUrl": front_door == "url",
        "IsPublicUrl": front_door == "url",
        "LedgerOn": False,  # the template's default (tests/test_ledger_aws.py transforms it with Ledger=on)
    }
    out["Resources"] = {k: v for k, v in out["Resources"].items() if holds.get(v.get("Condition"), True)}
    return out


@pytest.fixture(scope="module")
def cfn():
    return transformed("rest")


def of_type(cfn, kind):
    return [r for r in cfn["Resources"].values() if r["Type"] == kind]


def test_function_settings_agree(cfn):
    [fn] = of_type(cfn, "AWS::Lambda::Function")
    defaults = settings.params_with_defaults(settings.load_template())
    p = settings.resolve(fn["Properties"], defaults)
    expected = deploy.function_config(settings.load_template(), KEY_SHA)
    for field in ("FunctionName", "Runtime", "Handler", "MemorySize", "Timeout", "Architectures", "TracingConfig", "SnapStart"):
        assert p[field] == expected[field], field
    assert expected["Runtime"] == "python3.13" and expected["SnapStart"] == {"ApplyOn": "None"}
    env = p["Environment"]["Variables"]
    assert set(env) == set(expected["Environment"]["Variables"])
    assert env["API_KEY_SHA256"] == {"Ref": "ApiKeySha256"}
    [alias] = of_type(cfn, "AWS::Lambda::Alias")
    assert alias["Properties"]["Name"] == settings.names()["alias"]
    [layer] = of_type(cfn, "AWS::Lambda::LayerVersion")
    layer = settings.resolve(layer["Properties"], defaults)
    assert layer["LayerName"] == settings.names()["layer"]
    assert layer["CompatibleRuntimes"] == [expected["Runtime"]] and layer["CompatibleArchitectures"] == expected["Architectures"]


def test_tags_agree(cfn):
    [fn] = of_type(cfn, "AWS::Lambda::Function")
    tags = {
        t["Key"]: settings.resolve(t["Value"], settings.params_with_defaults(settings.load_template()))
        for t in fn["Properties"]["Tags"]
    }
    assert {k: v for k, v in tags.items() if not k.startswith("lambda:")} == deploy.plan()["tags"]


def test_rest_routes_responses_and_validator_agree(cfn):
    [api] = of_type(cfn, "AWS::ApiGateway::RestApi")
    assert api["Properties"]["Name"] == {"Ref": "ApiName"}
    body = api["Properties"]["Body"]
    routes = []
    for path, methods in body["paths"].items():
        for method, op in methods.items():
            if not isinstance(op, dict) or "x-amazon-apigateway-integration" not in op:
                continue
            required = any("api_key" in s for s in op.get("security", []))
            routes.append({"path": path, "method": method.upper(), "api_key_required": required})
            assert op["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    assert sorted(routes, key=lambda r: (r["path"], r["method"])) == settings.api_routes() == deploy.plan()["routes"]
    rest = deploy.plan()["rest"]
    assert [{"path": "/predict", "method": "POST", "validator": "body"}] == rest["validated"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    for kind, headers in rest["gateway_responses"].items():
        got = responses[kind]["responseParameters"]
        assert {k.removeprefix("gatewayresponse.header."): v for k, v in got.items()} == headers
    assert set(rest["gateway_responses"]) == {"DEFAULT_4XX", "DEFAULT_5XX"}


def test_usage_plan_alarms_and_tracing_agree(cfn):
    [plan] = of_type(cfn, "AWS::ApiGateway::UsagePlan")
    expected = deploy.usage_plan_config(settings.load_template())
    assert plan["Properties"]["Throttle"] == {
        "RateLimit": {"Ref": "ThrottleRateLimit"},
        "BurstLimit": {"Ref": "ThrottleBurstLimit"},
    }
    assert expected == {"throttle": {"rateLimit": 50.0, "burstLimit": 100}, "quota": {"limit": 300000, "period": "MONTH"}}
    defaults = settings.params_with_defaults(settings.load_template())
    names = sorted(settings.resolve(a["Properties"]["AlarmName"], defaults) for a in of_type(cfn, "AWS::CloudWatch::Alarm"))
    assert names == sorted(a["AlarmName"] for a in deploy.alarm_configs(settings.load_template()))
    alarms = deploy.alarm_configs(settings.load_template())
    assert all(
        a["Dimensions"] == [{"Name": "FunctionName", "Value": "financial-forecasting-lstm"}]
        for a in alarms
        if a["Namespace"] == "AWS/Lambda"
    )
    [filt] = of_type(cfn, "AWS::Logs::MetricFilter")  # the function's own 5xx lines, whether or not it raised
    [mine] = deploy.plan()["metric_filters"]
    assert filt["Properties"]["FilterPattern"] == mine["filterPattern"] == "{ $.status >= 500 }"
    metric = mine["metricTransformations"][0]
    assert [(a["Namespace"], a["MetricName"]) for a in alarms if a["Namespace"] != "AWS/Lambda"] == [
        (metric["metricNamespace"], metric["metricName"])
    ]
    [stage] = of_type(cfn, "AWS::ApiGateway::Stage")
    assert stage["Properties"]["TracingEnabled"] is True
    assert "AccessLogSetting" in stage["Properties"]
    assert [k["Properties"]["Value"] for k in of_type(cfn, "AWS::ApiGateway::ApiKey")] == [{"Ref": "ApiKeyValue"}]


def test_http_front_door_agrees():
    cfn = transformed("http")
    assert not of_type(cfn, "AWS::ApiGateway::RestApi") and not of_type(cfn, "AWS::Lambda::Url")
    http = deploy.plan()["http"]
    routes = sorted(r["Properties"]["RouteKey"] for r in of_type(cfn, "AWS::ApiGatewayV2::Route"))
    assert (
        routes
        == http["routes"]
        == sorted(f"{r['method']} {r['path']}" for r in settings.api_routes() if r["method"] != "OPTIONS")
    )
    [api] = of_type(cfn, "AWS::ApiGatewayV2::Api")
    assert api["Properties"]["CorsConfiguration"] == http["cors"]
    [stage] = of_type(cfn, "AWS::ApiGatewayV2::Stage")
    defaults = settings.params_with_defaults(settings.load_template())
    assert {
        k: float(v) if "Rate" in k else int(v)
        for k, v in settings.resolve(stage["Properties"]["DefaultRouteSettings"], defaults).items()
    } == http["throttle"]
    assert len(of_type(cfn, "AWS::Lambda::Permission")) == 1


def test_url_front_door_agrees():
    cfn = transformed("url")
    assert not of_type(cfn, "AWS::ApiGateway::RestApi") and not of_type(cfn, "AWS::ApiGatewayV2::Api")
    [url] = of_type(cfn, "AWS::Lambda::Url")
    u = deploy.plan()["url"]
    assert (
        url["Properties"]["Cors"] == u["cors"] and url["Properties"]["AuthType"] == {"Ref": "UrlAuthType"} and u["auth"] == "NONE"
    )
    actions = sorted(p["Properties"]["Action"] for p in of_type(cfn, "AWS::Lambda::Permission"))
    assert actions == ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"]  # both, since October 2025
    [fn] = of_type(cfn, "AWS::Lambda::Function")
    assert fn["Properties"]["ReservedConcurrentExecutions"] == {
        "Fn::If": ["IsUrl", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert u["reserved_concurrency"] == 10


def test_outputs(cfn):
    assert {"ApiUrl", "FunctionArn", "ModelBucketName"} <= set(cfn["Outputs"])


def test_runtime_is_named_once():
    """python3.13 appears in the template only as the PythonRuntime parameter's default; everything else refers to it."""
    text = (LAMBDA_DIR / "template.yaml").read_text()
    assert text.count("python3.13") == 2  # the default, and its place among AllowedValues
    # python3.11 is named only where the Runtime parameter's description says why it is not the default
    assert text.count("python3.11") == 1 and "(python3.11, on Amazon Linux 2, is deprecated" in text


def test_no_setting_is_hard_coded_in_deploy_py():
    """Every name deploy.py uses comes from the template: none of the template's defaults appear in its source."""
    for path in sorted((ROOT / "deployer").glob("*.py")):
        source = path.read_text()
        for name, value in settings.names().items():
            if name in ("front_door", "url_auth", "alias", "stage"):
                continue
            assert value not in source, f"{name} {value!r} is written in {path.name}; read it from template.yaml"
    assert "AES256" not in (ROOT / "deployer" / "steps.py").read_text(), "the bucket's settings come from ModelBucket"


@pytest.mark.parametrize("overrides", [{"Architecture": "arm64"}, {"SnapStart": "PublishedVersions"}])
def test_overrides_reach_the_function(overrides):
    cfg = deploy.function_config(settings.load_template(), KEY_SHA, overrides)
    if "Architecture" in overrides:
        assert cfg["Architectures"] == ["arm64"]
    else:
        assert cfg["SnapStart"] == {"ApplyOn": "PublishedVersions"}
