"""The ownership survey: look up every name the stack uses and prove each resource is ours before anything changes.

Each kind of resource is one `Kind` in KINDS: how to find every resource with our names (and their tags), when an
untagged one is still ours to resume, what else an owned one must satisfy, and how teardown deletes it. A new
kind of resource joins the stack by adding one entry here (teardown deletes in the reverse order of KINDS).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import layers, ledger
from .aws import Aws, Collision, DeployError, bucket_name, is_ours, refuse, tag_dict
from .plan import canary_alarm_configs

MIN_KEY_LENGTH = 20  # API Gateway refuses shorter API keys

Hit = tuple[str, Any, dict]  # (name, the resource as AWS described it, its tags)


@dataclass(frozen=True)
class Kind:
    field: str  # attribute of Found that holds it (a list when `many`)
    label: str  # how messages name it
    lookup: Callable[[Aws, dict], list[Hit]]  # every resource with one of our names, whoever owns it
    adopt: Callable[[Aws, dict, Any, Hit], bool] | None = None  # untagged but ours to resume
    check: Callable[[Aws, dict, Hit], None] | None = None  # more proof once the tags say ours
    delete: Callable[[Aws, dict, Any], str | None] | None = None  # teardown; returns what it deleted
    many: bool = False
    purge_only: bool = False  # teardown deletes it only with --purge


def _missing(aws: Aws, call, *codes: str):
    try:
        return call()
    except aws.exc.ClientError as e:
        if aws.missing(e, *codes) if codes else aws.missing(e):
            return None
        raise


# --- lookups: every resource with our names --------------------------------------------------------------


def _function(key: str) -> Callable[[Aws, dict], list[Hit]]:
    def lookup(aws: Aws, p: dict) -> list[Hit]:
        name = p["names"][key]
        fn = _missing(aws, lambda: aws("lambda").get_function(FunctionName=name))
        return [(name, fn["Configuration"], fn.get("Tags") or {})] if fn else []

    return lookup


def _role(key: str) -> Callable[[Aws, dict], list[Hit]]:
    def lookup(aws: Aws, p: dict) -> list[Hit]:
        iam, name = aws("iam"), p["names"][key]
        role = _missing(aws, lambda: iam.get_role(RoleName=name)["Role"], "NoSuchEntity")
        return [(name, role, tag_dict(iam.list_role_tags(RoleName=name).get("Tags")))] if role else []

    return lookup


def _parameter(key: str, decrypt: bool) -> Callable[[Aws, dict], list[Hit]]:
    def lookup(aws: Aws, p: dict) -> list[Hit]:
        ssm, name = aws("ssm"), p["names"][key]
        param = _missing(aws, lambda: ssm.get_parameter(Name=name, WithDecryption=decrypt)["Parameter"], "ParameterNotFound")
        if param is None:
            return []
        return [(name, param, tag_dict(ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name).get("TagList")))]

    return lookup


def _apigw(operation: str, key: str, **kwargs) -> Callable[[Aws, dict], list[Hit]]:
    def lookup(aws: Aws, p: dict) -> list[Hit]:
        name, out = p["names"][key], []
        for page in aws("apigateway").get_paginator(operation).paginate(**kwargs):
            out += [(name, item, item.get("tags") or {}) for item in page["items"] if item["name"] == name]
        return out

    return lookup


def _http_apis(aws: Aws, p: dict) -> list[Hit]:
    name, out, token = p["names"]["api"], [], None
    while True:
        page = aws("apigatewayv2").get_apis(**({"NextToken": token} if token else {}))
        out += [
            (name, a, a.get("Tags") or {}) for a in page.get("Items", []) if a["Name"] == name and a.get("ProtocolType") == "HTTP"
        ]
        token = page.get("NextToken")
        if not token:
            return out


def _log_group(key: str) -> Callable[[Aws, dict], list[Hit]]:
    def lookup(aws: Aws, p: dict) -> list[Hit]:
        logs, name = aws("logs"), p["names"][key]
        groups = [g for g in logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", []) if g["logGroupName"] == name]
        return [(name, g, logs.list_tags_for_resource(resourceArn=g["arn"].removesuffix(":*")).get("tags", {})) for g in groups]

    return lookup


def alarm_names(p: dict) -> list[str]:
    """The template's alarms and the per-version copies a canary makes."""
    n = p["names"]
    return [a["AlarmName"] for a in p["alarms"] + canary_alarm_configs(p["alarms"], n["function"], n["alias"], "0")]


def _alarms(aws: Aws, p: dict) -> list[Hit]:
    cw = aws("cloudwatch")
    found = cw.describe_alarms(AlarmNames=alarm_names(p)).get("MetricAlarms", [])
    return [(a["AlarmName"], a, tag_dict(cw.list_tags_for_resource(ResourceARN=a["AlarmArn"]).get("Tags"))) for a in found]


def _bucket(aws: Aws, p: dict) -> list[Hit]:
    s3, name = aws("s3"), bucket_name(aws, p["names"]["project"])
    try:
        s3.head_bucket(Bucket=name)
    except aws.exc.ClientError as e:
        if aws.code(e) in ("403", "AccessDenied"):
            raise Collision(
                f"S3 bucket {name!r} exists and belongs to someone else (403). Nothing was created or changed; "
                "set the ProjectTag parameter to another value to use another bucket name"
            ) from None
        if aws.code(e) in ("404", "NoSuchBucket", "NotFound"):
            return []
        raise
    try:
        tags = tag_dict(s3.get_bucket_tagging(Bucket=name).get("TagSet"))
    except aws.exc.ClientError:
        tags = {}
    return [(name, {"Name": name}, tags)]


# --- resumable leftovers and further proof ------------------------------------------------------------------


def _adopt_log_group(aws: Aws, p: dict, found: Found, hit: Hit) -> bool:
    """Lambda creates its log group itself, untagged, once our function has run: ours, but only then."""
    return not hit[2] and found.function is not None


def _adopt_ledger_log(aws: Aws, p: dict, found: Found, hit: Hit) -> bool:
    """The same rule for the ledger function's log group: untagged is ours only once our ledger function exists."""
    return not hit[2] and found.ledger_function is not None


def _adopt_bucket(aws: Aws, p: dict, found: Found, hit: Hit) -> bool:
    """A deploy killed between CreateBucket and tagging leaves an untagged, empty bucket with our account-and-region
    name: resume it. A bucket with objects in it, or anyone's tags, stays someone else's."""
    return not hit[2] and not aws("s3").list_object_versions(Bucket=hit[0], MaxKeys=1).get("Versions")


def _role_props(p: dict, name: str) -> dict:
    """The template's properties of the role with this name (the predict function's, or one of the ledger's)."""
    roles = {p["names"]["ledger_role"]: p["ledger"]["role"], p["names"]["ledger_scheduler_role"]: p["ledger"]["scheduler_role"]}
    return roles.get(name, p["role"])


def _check_role(aws: Aws, p: dict, hit: Hit) -> None:
    iam, name = aws("iam"), hit[0]
    props = _role_props(p, name)
    attached = {a["PolicyArn"] for a in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]}
    inline = set(iam.list_role_policies(RoleName=name).get("PolicyNames", []))
    ours_inline = {x["PolicyName"] for x in props.get("Policies", [])}
    extra = sorted(attached - set(props.get("ManagedPolicyArns", []))) + [f"inline:{n}" for n in sorted(inline - ours_inline)]
    if extra:
        raise Collision(
            f"IAM role {name!r} carries our tags but also policies that are not ours ({', '.join(extra)}): "
            "the function would run with them. Nothing was changed; detach them or delete the role, then deploy again"
        )


def _check_key(aws: Aws, p: dict, hit: Hit) -> None:
    name, param = hit[0], hit[1]
    if param["Type"] != "SecureString":
        raise Collision(
            f"SSM parameter {name!r} holds the API key as {param['Type']}, in plaintext: refusing "
            "to use it. Delete it (deploy makes a SecureString) or make it a SecureString. Nothing was changed"
        )
    if len(param["Value"]) < MIN_KEY_LENGTH:
        raise DeployError(
            f"the API key in SSM {name!r} has {len(param['Value'])} characters; API Gateway needs at least "
            f"{MIN_KEY_LENGTH}. Put a longer one there, or delete it to have one generated. Nothing was changed"
        )


# --- teardown of each kind -------------------------------------------------------------------------------


def _delete_parameter(aws: Aws, p: dict, item: dict) -> str:
    aws("ssm").delete_parameter(Name=item["Name"])
    return f"SSM parameter {item['Name']}"


def _delete_record(aws: Aws, p: dict, item: dict) -> str:
    """The layer versions the record lists (and only those: a layer name may be shared), then the record itself."""
    import json

    lam, layer, record = aws("lambda"), p["names"]["layer"], json.loads(item["Value"])
    ours = set(record.get("layers", []))
    deleted, kept = [], []
    for v in layers.versions(aws, layer):  # every page: a stack past 50 versions keeps none behind
        if v["LayerVersionArn"] in ours:
            lam.delete_layer_version(LayerName=layer, VersionNumber=v["Version"])
            deleted.append(v["Version"])
        else:
            kept.append(v["Version"])
    ledger_deleted = ledger.delete_layers(aws, p, record)
    aws("ssm").delete_parameter(Name=item["Name"])
    return (
        f"layer versions {deleted or 'none'} of {layer}"
        + (f", ledger layer versions {ledger_deleted} of {p['names']['ledger_layer']}" if ledger_deleted else "")
        + (f" (kept {kept}: this stack did not publish them)" if kept else "")
        + f" and the record {item['Name']}"
    )


def _delete_role(aws: Aws, p: dict, item: dict) -> str:
    iam, props = aws("iam"), _role_props(p, item["RoleName"])
    for policy in props.get("ManagedPolicyArns", []):
        _missing(aws, lambda policy=policy: iam.detach_role_policy(RoleName=item["RoleName"], PolicyArn=policy), "NoSuchEntity")
    for policy in props.get("Policies", []):
        name = policy["PolicyName"]
        _missing(aws, lambda name=name: iam.delete_role_policy(RoleName=item["RoleName"], PolicyName=name), "NoSuchEntity")
    iam.delete_role(RoleName=item["RoleName"])
    return f"IAM role {item['RoleName']}"


def _delete_function(aws: Aws, p: dict, item: dict) -> str:
    aws("lambda").delete_function(FunctionName=item["FunctionName"])  # its versions, alias, URL and permissions go too
    return f"function {item['FunctionName']} with its versions, alias and any Function URL"


def _delete_log_group(aws: Aws, p: dict, item: dict) -> str:
    aws("logs").delete_log_group(logGroupName=item["logGroupName"])
    return f"log group {item['logGroupName']}"


def _delete_alarms(aws: Aws, p: dict, items: list[dict]) -> str | None:
    if not items:
        return None
    aws("cloudwatch").delete_alarms(AlarmNames=[a["AlarmName"] for a in items])
    return f"alarms {', '.join(a['AlarmName'] for a in items)}"


def delete_usage_plan(aws: Aws, p: dict, plan: dict) -> str:
    apigw, plan_id = aws("apigateway"), plan["id"]
    for k in apigw.get_usage_plan_keys(usagePlanId=plan_id).get("items", []):
        apigw.delete_usage_plan_key(usagePlanId=plan_id, keyId=k["id"])
    stages = plan.get("apiStages", [])
    if stages:
        ops = [{"op": "remove", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"} for s in stages]
        apigw.update_usage_plan(usagePlanId=plan_id, patchOperations=ops)
    apigw.delete_usage_plan(usagePlanId=plan_id)
    return f"usage plan {plan['name']}"


def delete_api_key(aws: Aws, p: dict, key: dict) -> str:
    aws("apigateway").delete_api_key(apiKey=key["id"])
    return f"API key {key['id']}"


def delete_rest_api(aws: Aws, p: dict, api: dict) -> str:
    aws("apigateway").delete_rest_api(restApiId=api["id"])
    return f"REST API {api['name']} ({api['id']})"


def delete_http_api(aws: Aws, p: dict, api: dict) -> str:
    aws("apigatewayv2").delete_api(ApiId=api["ApiId"])
    return f"HTTP API {api['Name']} ({api['ApiId']})"


def _delete_bucket(aws: Aws, p: dict, item: dict) -> str:
    s3, bucket = aws("s3"), item["Name"]
    _missing(aws, lambda: s3.delete_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy")  # its TLS rule must not block emptying
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objs = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if objs:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objs})
    s3.delete_bucket(Bucket=bucket)
    return f"bucket {bucket} and every object version in it"


# survey in this order (a log group's adoption needs the function); teardown deletes in reverse
KINDS: list[Kind] = [
    Kind("bucket", "S3 bucket", _bucket, adopt=_adopt_bucket, delete=_delete_bucket, purge_only=True),
    Kind("key_parameter", "SSM parameter", _parameter("key_parameter", True), check=_check_key, delete=_delete_parameter),
    Kind("role", "IAM role", _role("role"), check=_check_role, delete=_delete_role),
    Kind("record", "SSM parameter (deploy record)", _parameter("record", False), delete=_delete_record),
    Kind("function", "Lambda function", _function("function"), delete=_delete_function),
    Kind("log_group", "log group", _log_group("log_group"), adopt=_adopt_log_group, delete=_delete_log_group),
    Kind("access_log_group", "log group (REST access log)", _log_group("access_log_group"), delete=_delete_log_group),
    Kind("rest_api", "REST API", _apigw("get_rest_apis", "api"), delete=delete_rest_api),
    Kind("api_key", "API key", _apigw("get_api_keys", "key", includeValues=True), delete=delete_api_key),
    Kind("usage_plan", "usage plan", _apigw("get_usage_plans", "plan"), delete=delete_usage_plan),
    Kind("http_api", "HTTP API", _http_apis, delete=delete_http_api),
    Kind("alarms", "CloudWatch alarm", _alarms, delete=_delete_alarms, many=True),
    # the ledger's (Ledger=on); surveyed whatever the flag, so teardown finds what an earlier deploy made.
    # Its table holds the track record: like the model bucket, teardown deletes it only with --purge
    Kind("ledger_table", "DynamoDB table", ledger.table, delete=ledger.delete_table, purge_only=True),
    Kind("ledger_queue", "SQS queue", ledger.queue, delete=ledger.delete_queue),
    Kind("ledger_role", "IAM role (ledger)", _role("ledger_role"), check=_check_role, delete=_delete_role),
    Kind("ledger_scheduler_role", "IAM role (schedule)", _role("ledger_scheduler_role"), check=_check_role, delete=_delete_role),
    Kind("ledger_function", "Lambda function (ledger)", _function("ledger_function"), delete=_delete_function),
    Kind("ledger_log_group", "log group", _log_group("ledger_log_group"), adopt=_adopt_ledger_log, delete=_delete_log_group),
    Kind("schedule_group", "EventBridge Scheduler schedule group", ledger.schedule_group, delete=ledger.delete_schedule_group),
    Kind("ledger_alarms", "CloudWatch alarm (ledger)", ledger.alarms, delete=ledger.delete_alarms, many=True),
]


class Found:
    """What the survey found: each kind's resource when it is ours, None (or []) when absent."""

    def __init__(self) -> None:
        for k in KINDS:
            setattr(self, k.field, [] if k.many else None)
        self.notes: list[str] = []

    @property
    def key_value(self) -> str | None:
        return self.key_parameter["Value"] if self.key_parameter else None


def survey(aws: Aws, p: dict) -> Found:
    """Look up every named resource and prove each is ours. Raises Collision before anything is created."""
    found, want = Found(), p["tags"]
    for kind in KINDS:
        for hit in kind.lookup(aws, p):
            name, item, tags = hit
            if is_ours(tags, want):
                if kind.check:
                    kind.check(aws, p, hit)
            elif kind.adopt and kind.adopt(aws, p, found, hit):
                found.notes.append(f"{kind.label} {name} is untagged but ours to resume")
            else:
                raise refuse(kind.label, name, tags, want)
            if kind.many:
                getattr(found, kind.field).append(item)
            else:
                setattr(found, kind.field, item)
    return found
