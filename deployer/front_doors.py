"""The three front doors in front of `live` (REST API, HTTP API, Function URL): which one a deploy keeps, making
each, and removing the others so nothing is left billing."""

from __future__ import annotations

from . import record
from .aws import Aws, DeployError
from .steps import Context
from .survey import Found, delete_api_key, delete_http_api, delete_rest_api, delete_usage_plan


def url_config_of(aws: Aws, p: dict, found: Found) -> dict | None:
    """The Function URL on `live`, if any."""
    if not found.function:
        return None
    try:
        return aws("lambda").get_function_url_config(FunctionName=p["names"]["function"], Qualifier=p["names"]["alias"])
    except aws.exc.ClientError as e:
        if not aws.missing(e):
            raise
        return None


def doors_found(aws: Aws, p: dict, found: Found) -> dict:
    """{door: its URL} for every front door that exists: more than one means an interrupted switch."""
    out = {}
    if found.rest_api:
        out["rest"] = aws.rest_url(found.rest_api["id"], p["names"]["stage"])
    if found.http_api:
        out["http"] = (
            found.http_api.get("ApiEndpoint") or f"https://{found.http_api['ApiId']}.execute-api.{aws.region}.amazonaws.com"
        )
    url = url_config_of(aws, p, found)
    if url:
        out["url"] = url["FunctionUrl"].rstrip("/")
    return out


def choose(aws: Aws, p: dict, found: Found, params: dict, allow_public: bool) -> tuple[dict, str]:
    """Keep the live front door and its auth type unless asked otherwise; refuse a silent widening (IAM to public)."""
    rec = record.read(aws, p) if found.record else {}
    doors = doors_found(aws, p, found)
    current = rec.get("front_door") if rec.get("front_door") in doors else (next(iter(doors)) if len(doors) == 1 else None)
    url = url_config_of(aws, p, found) if "url" in doors else None
    current_auth = url["AuthType"] if url else None
    door = params.get("FrontDoor") or current or p["names"]["front_door"]
    auth = params.get("UrlAuthType") or (current_auth if door == "url" and current_auth else p["names"]["url_auth"])
    if current_auth == "AWS_IAM" and (door != "url" or auth != "AWS_IAM") and not allow_public:
        raise DeployError(
            f"the Function URL is AWS_IAM (only signed callers); {'--api ' + door if door != 'url' else 'auth NONE'} "
            "would open it "
            "to anyone with the API key. Pass --allow-public to widen access on purpose. Nothing was changed"
        )
    kept = []
    if "FrontDoor" not in params and current:
        kept.append(f"front door {door} kept")
    if "UrlAuthType" not in params and door == "url" and current_auth:
        kept.append(f"auth {auth} kept")
    return {**params, "FrontDoor": door, "UrlAuthType": auth}, "; ".join(kept)


def _permission(ctx: Context, sid: str, **kwargs) -> None:
    lam, names = ctx.aws("lambda"), ctx.plan["names"]
    drop_permission(ctx.aws, ctx.plan, sid)
    lam.add_permission(FunctionName=names["function"], Qualifier=names["alias"], StatementId=sid, **kwargs)


def drop_permission(aws: Aws, p: dict, sid: str) -> None:
    try:
        aws("lambda").remove_permission(FunctionName=p["names"]["function"], Qualifier=p["names"]["alias"], StatementId=sid)
    except aws.exc.ClientError as e:
        if not aws.missing(e):
            raise


def front_rest(ctx: Context) -> str:
    """REST API: routes from the template, AWS_PROXY to `live`, gateway responses, validator, stage, key, usage plan."""
    aws, p, names = ctx.aws, ctx.plan, ctx.plan["names"]
    apigw, rest = aws("apigateway"), p["rest"]
    api = ctx.found.rest_api or apigw.create_rest_api(
        name=names["api"],
        description="Financial forecasting: next-day close from an LSTM ensemble",
        endpointConfiguration={"types": [rest["endpoint"]]},
        apiKeySource=rest["key_source"],
        tags=p["tags"],
    )
    api_id = api["id"]
    resources = {r["path"]: r for r in apigw.get_resources(restApiId=api_id, limit=500)["items"]}
    uri = f"arn:aws:apigateway:{aws.region}:lambda:path/2015-03-31/functions/{ctx.alias_arn}/invocations"
    validators = {v["name"]: v["id"] for v in apigw.get_request_validators(restApiId=api_id).get("items", [])}
    for vname, spec in rest["validators"].items():
        if vname not in validators:
            validators[vname] = apigw.create_request_validator(restApiId=api_id, name=vname, **spec)["id"]
    for route in p["routes"]:
        path, method = route["path"], route["method"]
        if path not in resources:
            resources[path] = apigw.create_resource(restApiId=api_id, parentId=resources["/"]["id"], pathPart=path.strip("/"))
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
            params = {f"gatewayresponse.header.{h}": v for h, v in headers.items()}
            apigw.put_gateway_response(restApiId=api_id, responseType=kind, responseParameters=params)
        except aws.exc.ClientError as e:
            if aws.code(e) not in ("NotImplementedException", "NotImplemented"):
                raise
    apigw.create_deployment(restApiId=api_id, stageName=names["stage"], description="deployer")
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
    source = f"arn:aws:execute-api:{aws.region}:{aws.account()}:{api_id}/*/*/*"
    _permission(ctx, "apigateway-rest", Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com", SourceArn=source)
    key_id = _api_key(ctx)
    plan_id = _usage_plan(ctx, api_id, key_id)
    ctx.url = aws.rest_url(api_id, names["stage"])
    ctx.result.update({"api_id": api_id, "key_id": key_id, "usage_plan_id": plan_id})
    up = p["usage_plan"]
    return (
        f"REST API {names['api']} ({'exists' if ctx.found.rest_api else 'created'}) on stage {names['stage']}: usage plan "
        f"{up['throttle']['rateLimit']:g} req/s, {up['quota']['limit']:,} a month"
        + ("" if access else "; access logging off (this account has no API Gateway CloudWatch role)")
    )


def _access_log_destination(ctx: Context) -> str | None:
    """The access-log group (the survey proved it ours or absent), if the account lets API Gateway write to CloudWatch
    (an account-wide setting we never change)."""
    aws, names = ctx.aws, ctx.plan["names"]
    try:
        if not aws("apigateway").get_account().get("cloudwatchRoleArn"):
            return None
    except aws.exc.ClientError:
        return None
    logs = aws("logs")
    if not ctx.found.access_log_group:
        logs.create_log_group(logGroupName=names["access_log_group"], tags=ctx.plan["tags"])
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
    if key_id not in {k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=existing["id"]).get("items", [])}:
        apigw.create_usage_plan_key(usagePlanId=existing["id"], keyId=key_id, keyType="API_KEY")
    return existing["id"]


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
    integ = next(
        (i for i in v2.get_integrations(ApiId=api_id).get("Items", []) if i.get("IntegrationUri") == ctx.alias_arn), None
    )
    if integ is None:
        integ = v2.create_integration(
            ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=ctx.alias_arn, PayloadFormatVersion=http["payload_format"]
        )
    have = {r["RouteKey"]: r for r in v2.get_routes(ApiId=api_id).get("Items", [])}
    target = f"integrations/{integ['IntegrationId']}"
    for key in http["routes"]:
        if key in have:
            v2.update_route(ApiId=api_id, RouteId=have[key]["RouteId"], Target=target)
        else:
            v2.create_route(ApiId=api_id, RouteKey=key, Target=target)
    for key, r in have.items():
        if key not in http["routes"]:
            v2.delete_route(ApiId=api_id, RouteId=r["RouteId"])
    stage = {"ApiId": api_id, "StageName": http["stage"], "AutoDeploy": True, "DefaultRouteSettings": http["throttle"]}
    have_stage = next((s for s in v2.get_stages(ApiId=api_id).get("Items", []) if s["StageName"] == http["stage"]), None)
    if have_stage:
        settings_now = {k: have_stage.get("DefaultRouteSettings", {}).get(k) for k in http["throttle"]}
        if settings_now != http["throttle"] or not have_stage.get("AutoDeploy"):  # unchanged: no call (moto's update fails)
            v2.update_stage(**stage)
    else:
        v2.create_stage(**stage, Tags=p["tags"])
    source = f"arn:aws:execute-api:{aws.region}:{aws.account()}:{api_id}/*"
    _permission(ctx, "apigateway-http", Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com", SourceArn=source)
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
    if url_config_of(ctx.aws, p, ctx.found):
        url = lam.update_function_url_config(**args)["FunctionUrl"]
    else:
        url = lam.create_function_url_config(**args)["FunctionUrl"]
    if cfg["auth"] == "NONE":  # since October 2025 a public URL needs both statements
        _permission(ctx, "url-invoke-url", Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="NONE")
        _permission(ctx, "url-invoke-function", Action="lambda:InvokeFunction", Principal="*", InvokedViaFunctionUrl=True)
    else:
        for sid in ("url-invoke-url", "url-invoke-function"):
            drop_permission(ctx.aws, p, sid)
    lam.put_function_concurrency(FunctionName=names["function"], ReservedConcurrentExecutions=cfg["reserved_concurrency"])
    ctx.url = url.rstrip("/")
    return (
        f"Function URL ({cfg['auth']}) on alias {names['alias']}; "
        f"reserved concurrency {cfg['reserved_concurrency']} caps the spend"
        + ("; the function checks X-API-Key" if cfg["auth"] == "NONE" else "; callers sign with SigV4 (AWS_IAM)")
    )


def remove_rest(aws: Aws, p: dict, found: Found) -> list[str]:
    removed = [
        delete(aws, p, item)
        for delete, item in (
            (delete_usage_plan, found.usage_plan),
            (delete_api_key, found.api_key),
            (delete_rest_api, found.rest_api),
        )
        if item
    ]
    if found.function:
        drop_permission(aws, p, "apigateway-rest")
    return removed


def remove_http(aws: Aws, p: dict, found: Found) -> list[str]:
    if not found.http_api:
        return []
    removed = [delete_http_api(aws, p, found.http_api)]
    if found.function:
        drop_permission(aws, p, "apigateway-http")
    return removed


def remove_url(aws: Aws, p: dict, found: Found) -> list[str]:
    lam, names, removed = aws("lambda"), p["names"], []
    if not found.function:
        return []
    if url_config_of(aws, p, found):
        lam.delete_function_url_config(FunctionName=names["function"], Qualifier=names["alias"])
        removed.append(f"Function URL on {names['alias']}")
    for sid in ("url-invoke-url", "url-invoke-function"):
        drop_permission(aws, p, sid)
    try:
        lam.delete_function_concurrency(FunctionName=names["function"])
    except aws.exc.ClientError as e:
        if not aws.missing(e):
            raise
    return removed


FRONT = {"rest": (front_rest, remove_rest), "http": (front_http, remove_http), "url": (front_url, remove_url)}


def step_front_door(ctx: Context) -> str:
    """Make the chosen door, remember it (and its auth type), then remove the others."""
    door = ctx.plan["names"]["front_door"]
    msg = FRONT[door][0](ctx)
    record.update(ctx.aws, ctx.plan, front_door=door, url_auth=ctx.plan["url"]["auth"] if door == "url" else None)
    removed = []
    for other, (_, remove) in FRONT.items():
        if other != door:
            removed += remove(ctx.aws, ctx.plan, ctx.found)
    return msg + (f"; removed the old front door: {', '.join(removed)}" if removed else "")
