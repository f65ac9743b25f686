"""What template.yaml says, as boto3 arguments: pure functions of the template (tests compare them with samtranslator)."""

from __future__ import annotations

import settings

ALARM_FIELDS = (
    "AlarmName",
    "AlarmDescription",
    "Namespace",
    "MetricName",
    "Period",
    "EvaluationPeriods",
    "ComparisonOperator",
    "TreatMissingData",
)


def function_config(template: dict, key_sha256: str, params: dict | None = None) -> dict:
    """create_function / update_function_configuration arguments (`params` as --param overrides)."""
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


LEDGER_PREFIX = "Ledger"  # logical ids of the ledger's resources: its alarms are not the predict function's


def alarm_configs(template: dict, params: dict | None = None, ledger: bool = False) -> list[dict]:
    """put_metric_alarm arguments for the predict function's alarms (the canary rolls back on them), or the ledger's."""
    out = []
    for logical_id in settings.resources_of_type(template, "AWS::CloudWatch::Alarm"):
        if logical_id.startswith(LEDGER_PREFIX) != ledger:
            continue
        p = settings.resource_props(template, logical_id, params)
        cfg = {k: p[k] for k in ALARM_FIELDS if k in p}
        cfg["Period"], cfg["EvaluationPeriods"] = int(cfg["Period"]), int(cfg["EvaluationPeriods"])
        cfg["Threshold"] = float(p["Threshold"])
        cfg["Dimensions"] = p.get("Dimensions", [])
        if "ExtendedStatistic" in p:
            cfg["ExtendedStatistic"] = p["ExtendedStatistic"]
        else:
            cfg["Statistic"] = p["Statistic"]
        out.append(cfg)
    return out


def canary_alarm_configs(alarms: list[dict], function: str, alias: str, version: str) -> list[dict]:
    """Copies of the function's AWS/Lambda alarms that watch one version only (Lambda's ExecutedVersion dimension),
    so a canary is judged on its own errors and latency, not on the primary's."""
    out = []
    for a in alarms:
        if a["Namespace"] != "AWS/Lambda" or [d["Name"] for d in a["Dimensions"]] != ["FunctionName"]:
            continue
        out.append(
            {
                **a,
                "AlarmName": f"{a['AlarmName']}-canary",
                "AlarmDescription": f"{a.get('AlarmDescription', '')} (version {version} during its canary)".strip(),
                "Dimensions": [
                    {"Name": "FunctionName", "Value": function},
                    {"Name": "Resource", "Value": f"{function}:{alias}"},
                    {"Name": "ExecutedVersion", "Value": version},
                ],
            }
        )
    return out


def metric_filters(template: dict, params: dict | None = None) -> list[dict]:
    """put_metric_filter arguments: metrics the function's own EMF log line yields (its 5xx count)."""
    out = []
    for logical_id in settings.resources_of_type(template, "AWS::Logs::MetricFilter"):
        p = settings.resource_props(template, logical_id, params)
        [t] = p["MetricTransformations"]
        out.append(
            {
                "filterName": logical_id,
                "filterPattern": p["FilterPattern"],
                "metricTransformations": [
                    {
                        "metricName": t["MetricName"],
                        "metricNamespace": t["MetricNamespace"],
                        "metricValue": str(t["MetricValue"]),
                        **({"defaultValue": float(t["DefaultValue"])} if "DefaultValue" in t else {}),
                    }
                ],
            }
        )
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


def _bucket_arns(value, arn: str):
    """The bucket policy's references to the bucket ({"Fn::GetAtt": [ModelBucket, Arn]}, ${ModelBucket.Arn}) as its ARN."""
    if isinstance(value, dict):
        if value == {"Fn::GetAtt": ["ModelBucket", "Arn"]}:
            return arn
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return value["Fn::Sub"].replace("${ModelBucket.Arn}", arn)
        return {k: _bucket_arns(v, arn) for k, v in value.items()}
    if isinstance(value, list):
        return [_bucket_arns(v, arn) for v in value]
    return value


def bucket_config(template: dict, bucket: str, params: dict | None = None) -> dict:
    """The model bucket's settings as S3's put_* arguments, read from ModelBucket and ModelBucketPolicy."""
    props = settings.resource_props(template, "ModelBucket", params)
    policy = settings.resource_props(template, "ModelBucketPolicy", params)["PolicyDocument"]
    rules = []
    for r in props["LifecycleConfiguration"]["Rules"]:
        rule = {"ID": r["Id"], "Status": r["Status"], "Filter": {"Prefix": r.get("Prefix", "")}}
        if "NoncurrentVersionExpiration" in r:
            rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(r["NoncurrentVersionExpiration"]["NoncurrentDays"])}
        rules.append(rule)
    return {
        "versioning": dict(props["VersioningConfiguration"]),
        "encryption": {
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": dict(r["ServerSideEncryptionByDefault"])}
                for r in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
        },
        "lifecycle": {"Rules": rules},
        "public_access_block": {k: bool(v) for k, v in props["PublicAccessBlockConfiguration"].items()},
        "policy": _bucket_arns(policy, f"arn:aws:s3:::{bucket}"),
    }


def ledger_config(template: dict, params: dict | None = None) -> dict:
    """The ledger's resources (Ledger=on) as their APIs take them; ARNs of other resources are filled in by the deploy."""
    p = settings.params_with_defaults(template, params)
    table = settings.resource_props(template, "LedgerTable", params)
    fn = settings.resource_props(template, "LedgerFunction", params)
    queue = settings.resource_props(template, "LedgerDeadLetterQueue", params)
    return {
        "enabled": p["Ledger"] == "on",
        # CloudFormation's names differ from DynamoDB's API in two places: SSEEnabled is Enabled; PITR is a second call
        "table": {
            "BillingMode": table["BillingMode"],
            "AttributeDefinitions": table["AttributeDefinitions"],
            "KeySchema": table["KeySchema"],
            "SSESpecification": {"Enabled": bool(table["SSESpecification"]["SSEEnabled"])},
        },
        "point_in_time_recovery": bool(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]),
        "function": {
            "FunctionName": fn["FunctionName"],
            "Runtime": fn["Runtime"],
            "Handler": fn["Handler"],
            "MemorySize": int(fn["MemorySize"]),
            "Timeout": int(fn["Timeout"]),
            "Description": fn.get("Description", ""),
            "Environment": {
                "Variables": {k: v if isinstance(v, dict) else str(v) for k, v in fn["Environment"]["Variables"].items()}
            },
            "TracingConfig": {"Mode": fn.get("Tracing", "PassThrough")},
            "Architectures": list(fn.get("Architectures", ["x86_64"])),
        },
        "role": settings.resource_props(template, "LedgerRole", params),
        "scheduler_role": settings.resource_props(template, "LedgerSchedulerRole", params),
        "queue": {
            "MessageRetentionPeriod": str(queue["MessageRetentionPeriod"]),
            "SqsManagedSseEnabled": str(bool(queue["SqsManagedSseEnabled"])).lower(),
        },
        "schedule": settings.resource_props(template, "LedgerDailySchedule", params),
        # put_function_event_invoke_config's arguments; the on-failure destination (the queue's ARN) is the deploy's
        "event_invoke": {
            "MaximumRetryAttempts": int(fn["EventInvokeConfig"]["MaximumRetryAttempts"]),
            "MaximumEventAgeInSeconds": int(fn["EventInvokeConfig"]["MaximumEventAgeInSeconds"]),
        },
        "alarms": alarm_configs(template, params, ledger=True),
    }


def plan(template: dict | None = None, params: dict | None = None) -> dict:
    """Everything a deploy applies, resolved: what `python -m deployer plan --json` prints and the dashboard reads."""
    template = template or settings.load_template()
    p = settings.params_with_defaults(template, params)
    return {
        "names": settings.names(template, params),
        "tags": settings.tags(template, params),
        "function": function_config(template, "0" * 64, params),
        "routes": settings.api_routes(template),
        "usage_plan": usage_plan_config(template, params),
        "alarms": alarm_configs(template, params),
        "metric_filters": metric_filters(template, params),
        "rest": rest_api_config(template, params),
        "http": http_api_config(template, params),
        "url": url_config(template, params),
        "role": settings.resource_props(template, "FunctionRole", params),
        "log_retention_days": int(p["LogRetentionDays"]),
        "bucket": bucket_config(template, "BUCKET", params),
        "front_doors": list(settings.FRONT_DOORS),
        "ledger": ledger_config(template, params),
    }


def plan_text(p: dict) -> str:
    """`python -m deployer plan`: one line a concern, only the chosen front door's settings."""
    n, f = p["names"], p["function"]
    door = n["front_door"]
    if door == "rest":
        up = p["usage_plan"]
        t = up["throttle"]
        front = f"usage plan {t['rateLimit']:g} req/s, burst {t['burstLimit']}, {up['quota']['limit']:,} a month"
    elif door == "http":
        front = f"stage throttle {p['http']['throttle']['ThrottlingRateLimit']:g} req/s; the function checks X-API-Key"
    else:
        front = f"auth {p['url']['auth']}, reserved concurrency {p['url']['reserved_concurrency']}"
    snap = f["SnapStart"]["ApplyOn"]
    return "\n".join(
        [
            f"function  {n['function']}: {f['Runtime']} {f['Architectures'][0]}, {f['MemorySize']} MB, {f['Timeout']} s, "
            f"SnapStart {'off' if snap == 'None' else snap}, alias {n['alias']}",
            f"front     {door} ({n['api'] + ', stage ' + n['stage'] if door != 'url' else 'Function URL'}); routes "
            + ", ".join(f"{r['method']} {r['path']}" for r in p["routes"]),
            f"          {front}",
            f"alarms    {', '.join(a['AlarmName'] for a in p['alarms'])}",
            f"layer     {n['layer']}; record {n['record']}",
            "ledger    "
            + (
                f"on: table {n['ledger_table']}, function {n['ledger_function']}, schedule {n['schedule_group']}/"
                f"{n['schedule']} ({p['ledger']['schedule']['ScheduleExpression']} America/New_York)"
                if p["ledger"]["enabled"]
                else "off (--ledger on adds the track record's table, daily job and schedule)"
            ),
            f"tags      {', '.join(f'{k}={v}' for k, v in p['tags'].items())}",
        ]
    )
