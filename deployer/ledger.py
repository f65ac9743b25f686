"""The ledger on AWS (Ledger=on): its table, daily job, dead-letter queue, schedule and drift alarms.

Found and proven ours by the survey like every other resource (the kinds below join survey.KINDS). Schedules carry
no tags, so the stack owns its schedule through a tagged schedule group named after the stack: deleting the group
deletes its schedules (EventBridge Scheduler's DeleteScheduleGroup).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import settings

from . import layers
from .aws import Aws, b64sha, tag_dict, tag_list, wait_updated

Hit = tuple[str, Any, dict]


def _missing(aws: Aws, call, *codes: str):
    try:
        return call()
    except aws.exc.ClientError as e:
        if aws.missing(e, *codes):
            return None
        raise


# --- lookups: every resource with our names --------------------------------------------------------------


def table(aws: Aws, p: dict) -> list[Hit]:
    ddb, name = aws("dynamodb"), p["names"]["ledger_table"]
    t = _missing(aws, lambda: ddb.describe_table(TableName=name)["Table"])
    return [(name, t, tag_dict(ddb.list_tags_of_resource(ResourceArn=t["TableArn"]).get("Tags")))] if t else []


def queue(aws: Aws, p: dict) -> list[Hit]:
    sqs, name = aws("sqs"), p["names"]["ledger_queue"]
    found = _missing(
        aws, lambda: sqs.get_queue_url(QueueName=name), "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"
    )
    if found is None:
        return []
    url = found["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return [(name, {"QueueUrl": url, "QueueArn": arn, "QueueName": name}, sqs.list_queue_tags(QueueUrl=url).get("Tags") or {})]


def schedule_group(aws: Aws, p: dict) -> list[Hit]:
    sched, name = aws("scheduler"), p["names"]["schedule_group"]
    g = _missing(aws, lambda: sched.get_schedule_group(Name=name))
    return [(name, g, tag_dict(sched.list_tags_for_resource(ResourceArn=g["Arn"]).get("Tags")))] if g else []


def alarms(aws: Aws, p: dict) -> list[Hit]:
    cw = aws("cloudwatch")
    names = [a["AlarmName"] for a in p["ledger"]["alarms"]]
    found = cw.describe_alarms(AlarmNames=names).get("MetricAlarms", [])
    return [(a["AlarmName"], a, tag_dict(cw.list_tags_for_resource(ResourceARN=a["AlarmArn"]).get("Tags"))) for a in found]


# --- teardown ----------------------------------------------------------------------------------------------


def delete_table(aws: Aws, p: dict, item: dict) -> str:
    aws("dynamodb").delete_table(TableName=item["TableName"])
    return f"DynamoDB table {item['TableName']} (the track record)"


def delete_queue(aws: Aws, p: dict, item: dict) -> str:
    aws("sqs").delete_queue(QueueUrl=item["QueueUrl"])
    return f"SQS queue {item['QueueName']}"


def delete_schedule_group(aws: Aws, p: dict, item: dict) -> str:
    aws("scheduler").delete_schedule_group(Name=item["Name"])  # and every schedule in it
    return f"schedule group {item['Name']} with its schedules"


def delete_alarms(aws: Aws, p: dict, items: list[dict]) -> str | None:
    if not items:
        return None
    aws("cloudwatch").delete_alarms(AlarmNames=[a["AlarmName"] for a in items])
    return f"alarms {', '.join(a['AlarmName'] for a in items)}"


def delete_layers(aws: Aws, p: dict, rec: dict) -> list[int]:
    """The ledger layer versions the record lists (a layer carries no tags): called with the record's own teardown."""
    lam, name, ours = aws("lambda"), p["names"]["ledger_layer"], set(rec.get("ledger_layers", []))
    deleted = []
    for v in layers.versions(aws, name) if ours else []:
        if v["LayerVersionArn"] in ours:
            lam.delete_layer_version(LayerName=name, VersionNumber=v["Version"])
            deleted.append(v["Version"])
    return deleted


# --- deploy ------------------------------------------------------------------------------------------------


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def fill(value, refs: dict):
    """The template's references to other resources ({"Ref": X}, {"Fn::GetAtt": [X, "Arn"]}, ${AWS::Region} ...) as
    the values this deploy made: what CloudFormation would substitute."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in refs:
            return refs[value["Ref"]]
        if set(value) == {"Fn::GetAtt"} and f"{value['Fn::GetAtt'][0]}.{value['Fn::GetAtt'][1]}" in refs:
            return refs[f"{value['Fn::GetAtt'][0]}.{value['Fn::GetAtt'][1]}"]
        if set(value) == {"Fn::Sub"}:
            return settings.resolve(value, refs)
        return {k: fill(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, refs) for v in value]
    return value


def _role(ctx, key: str, props: dict, refs: dict, found: dict | None) -> str:
    """Create (tagged) or reuse the role; its managed policies and inline policies exactly as the template says."""
    iam, name = ctx.aws("iam"), ctx.plan["names"][key]
    props = fill(props, refs)
    if found is None:
        arn = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
            Description=props["Description"],
            Tags=tag_list(ctx.plan["tags"]),
        )["Role"]["Arn"]
    else:
        arn = found["Arn"]
    for policy in props.get("ManagedPolicyArns", []):
        iam.attach_role_policy(RoleName=name, PolicyArn=policy)
    for policy in props.get("Policies", []):
        iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"]))
    return arn


def _layer(ctx, layer_zip: Path) -> str:
    """Publish the ledger layer unless a version this stack published holds this build: recorded (layers have no tags),
    its intent first, exactly as the predict function's layer."""
    fn = ctx.plan["ledger"]["function"]
    what = "the ledger job's dependencies (ledger/requirements.txt)"
    return layers.publish(ctx.aws, ctx.plan, "ledger_layer", layer_zip, what, fn["Runtime"], fn["Architectures"]).arn


def _function(ctx, fn_zip: Path, cfg: dict, role_arn: str, layer_arn: str) -> str:
    """Create the ledger function, or change only what differs (a second deploy of the same build changes nothing)."""

    lam, name, found = ctx.aws("lambda"), cfg["FunctionName"], ctx.found.ledger_function
    if found is None:
        for attempt in range(10):  # a new role takes a few seconds to become assumable on AWS
            try:
                lam.create_function(
                    **cfg, Role=role_arn, Code={"ZipFile": fn_zip.read_bytes()}, Layers=[layer_arn], Tags=ctx.plan["tags"]
                )
                break
            except ctx.aws.exc.ClientError as e:
                if ctx.aws.code(e) == "InvalidParameterValueException" and "role" in str(e).lower() and attempt < 9:
                    time.sleep(3)
                    continue
                raise
        wait_updated(ctx.aws, name)
        return "created"
    changed = []
    arch = cfg.pop("Architectures")
    if found.get("CodeSha256") != b64sha(fn_zip) or found.get("Architectures", ["x86_64"]) != arch:
        lam.update_function_code(FunctionName=name, ZipFile=fn_zip.read_bytes(), Architectures=arch)
        wait_updated(ctx.aws, name)
        changed.append("code")
    have = {
        "FunctionName": name,
        "Runtime": found.get("Runtime"),
        "Handler": found.get("Handler"),
        "MemorySize": found.get("MemorySize"),
        "Timeout": found.get("Timeout"),
        "Description": found.get("Description", ""),
        "Environment": {"Variables": (found.get("Environment") or {}).get("Variables", {})},
        "TracingConfig": {"Mode": (found.get("TracingConfig") or {}).get("Mode")},
        "Role": found.get("Role"),
        "Layers": [x["Arn"] for x in found.get("Layers", [])],
    }
    want = {**cfg, "Role": role_arn, "Layers": [layer_arn]}
    stale = sorted(k for k, v in want.items() if have.get(k) != v)
    if stale:
        lam.update_function_configuration(**want)
        wait_updated(ctx.aws, name)
        changed.append(f"configuration ({', '.join(stale)})")
    return f"updated {' and '.join(changed)}" if changed else "unchanged"


def step(ctx, fn_zip: Path | None, layer_zip: Path | None) -> str:
    """Everything the ledger needs, after the front door (its job calls the API at ctx.url). Tagged when created."""
    led, names, tags = ctx.plan["ledger"], ctx.plan["names"], ctx.plan["tags"]
    if not led["enabled"]:
        left = [
            k
            for k in ("ledger_table", "ledger_function", "ledger_queue", "schedule_group")
            if getattr(ctx.found, k, None) is not None
        ]
        return "ledger off" + (f" ({', '.join(left)} from an earlier deploy stay; teardown removes them)" if left else "")
    aws = ctx.aws
    refs = {
        **settings.params_with_defaults(ctx.template, ctx.params),  # a ${Parameter} beside ${AWS::Region} is still open
        "AWS::Region": aws.region,
        "AWS::AccountId": aws.account(),
        "AWS::Partition": _partition(aws.region),
        "LedgerTable": names["ledger_table"],
        "LedgerScheduleGroup": names["schedule_group"],
    }
    ddb = aws("dynamodb")
    if ctx.found.ledger_table is None:
        made = ddb.create_table(TableName=names["ledger_table"], **led["table"], Tags=tag_list(tags))
        arn = made["TableDescription"]["TableArn"]
        ddb.get_waiter("table_exists").wait(TableName=names["ledger_table"], WaiterConfig={"Delay": 2, "MaxAttempts": 60})
        if led["point_in_time_recovery"]:
            ddb.update_continuous_backups(
                TableName=names["ledger_table"], PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        table_state = "created"
    else:
        arn, table_state = ctx.found.ledger_table["TableArn"], "exists"
    refs["LedgerTable.Arn"] = arn
    sqs = aws("sqs")
    if ctx.found.ledger_queue is None:
        url = sqs.create_queue(QueueName=names["ledger_queue"], Attributes=led["queue"], tags=tags)["QueueUrl"]
        q_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    else:
        q_arn = ctx.found.ledger_queue["QueueArn"]
    refs["LedgerDeadLetterQueue.Arn"] = q_arn
    role_arn = _role(ctx, "ledger_role", led["role"], refs, ctx.found.ledger_role)
    layer_arn = _layer(ctx, layer_zip)
    logs = aws("logs")
    if not ctx.found.ledger_log_group:
        logs.create_log_group(logGroupName=names["ledger_log_group"], tags=tags)
    logs.put_retention_policy(logGroupName=names["ledger_log_group"], retentionInDays=ctx.plan["log_retention_days"])
    cfg = fill(json.loads(json.dumps(led["function"])), refs)
    cfg["Environment"]["Variables"]["FORECAST_API_URL"] = ctx.url  # the front door this deploy made
    fn_state = _function(ctx, fn_zip, cfg, role_arn, layer_arn)
    # a failed run: 2 retries, then its record to the dead-letter queue (Scheduler's own DLQ covers only the hand-over)
    aws("lambda").put_function_event_invoke_config(
        FunctionName=names["ledger_function"], **led["event_invoke"], DestinationConfig={"OnFailure": {"Destination": q_arn}}
    )
    fn_arn = aws("lambda").get_function_configuration(FunctionName=names["ledger_function"])["FunctionArn"]
    refs["LedgerFunction.Arn"] = fn_arn
    sched_role = _role(ctx, "ledger_scheduler_role", led["scheduler_role"], refs, ctx.found.ledger_scheduler_role)
    refs["LedgerSchedulerRole.Arn"] = sched_role
    sched = aws("scheduler")
    if ctx.found.schedule_group is None:
        sched.create_schedule_group(Name=names["schedule_group"], Tags=tag_list(tags))
    want = fill(led["schedule"], refs)
    have = _missing(aws, lambda: sched.get_schedule(Name=want["Name"], GroupName=want["GroupName"]))
    if have is None:
        sched.create_schedule(**want)
        sched_state = "created"
    elif {k: have.get(k) for k in want} != want:
        sched.update_schedule(**want)
        sched_state = "updated"
    else:
        sched_state = "unchanged"
    cw = aws("cloudwatch")
    for a in led["alarms"]:
        cw.put_metric_alarm(**a, Tags=tag_list(tags))
    return (
        f"ledger: table {names['ledger_table']} ({table_state}, on demand), function {names['ledger_function']} ({fn_state}), "
        f"dead-letter queue {names['ledger_queue']}, schedule {names['schedule_group']}/{want['Name']} ({sched_state}: "
        f"{want['ScheduleExpression']} {want['ScheduleExpressionTimezone']}), {len(led['alarms'])} alarms"
    )
