"""deploy.py with the ledger (Ledger=on) against moto's server: its table, function, queue, schedule and alarms are
created tagged, a second deploy changes nothing, teardown removes them (the table only with --purge), and a foreign
namesake is refused before anything changes."""

from __future__ import annotations

import json

import pytest

from deployer import commands as deploy
from deployer.aws import tag_dict
from tests import test_deploy
from tests.test_deploy import EMPTY, NAMES, TAGS, client, inventory

aws, small_layer = test_deploy.aws, test_deploy.small_layer  # the same fixtures

pytestmark = pytest.mark.integration

ON = {"Ledger": "on"}


@pytest.fixture(scope="module")
def ledger_function(tmp_path_factory):
    """The real ledger function zip (small and quick to build); its layer is the small stand-in (moto runs nothing)."""
    import package

    return package.build_ledger_function(tmp_path_factory.mktemp("ledger") / "ledger_function.zip")


def run(aws, ledger_function, **kwargs):
    import package

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(package, "ledger_paths", lambda target=None: (ledger_function, aws.small_layer))
        return test_deploy.run(aws, **kwargs)


def ledger_inventory(url) -> dict:
    """The ledger's resources by kind, with their tags: leftovers, duplicates and lost tags show up here."""
    ddb, sqs, sched, lam = client("dynamodb", url), client("sqs", url), client("scheduler", url), client("lambda", url)
    tables = {t: tag_dict(ddb.list_tags_of_resource(ResourceArn=ddb.describe_table(TableName=t)["Table"]["TableArn"])["Tags"])
              for t in ddb.list_tables()["TableNames"]}  # fmt: skip
    queues = {
        u.rsplit("/", 1)[1]: sqs.list_queue_tags(QueueUrl=u).get("Tags", {}) for u in sqs.list_queues().get("QueueUrls", [])
    }
    groups = {
        g["Name"]: tag_dict(sched.list_tags_for_resource(ResourceArn=g["Arn"])["Tags"])
        for g in sched.list_schedule_groups()["ScheduleGroups"]
        if g["Name"] != "default"
    }
    schedules = sorted(f"{s['GroupName']}/{s['Name']}" for s in sched.list_schedules()["Schedules"])
    functions = {
        f["FunctionName"]: lam.get_function(FunctionName=f["FunctionName"]).get("Tags", {})
        for f in lam.list_functions()["Functions"]
    }
    layers = len(lam.list_layer_versions(LayerName=NAMES["ledger_layer"]).get("LayerVersions", []))
    return {
        "tables": tables,
        "queues": queues,
        "groups": groups,
        "schedules": schedules,
        "functions": functions,
        "layers": layers,
    }


def test_the_ledger_deploys_tagged_changes_nothing_twice_and_tears_down(aws, aws_env, ledger_function, capsys):
    first = run(aws, ledger_function, params=ON)
    out = capsys.readouterr().out
    assert "[14/14] ledger: table" in out
    led = ledger_inventory(aws_env)
    assert led["tables"] == {NAMES["ledger_table"]: TAGS}
    assert led["queues"] == {NAMES["ledger_queue"]: TAGS}
    assert led["groups"] == {NAMES["schedule_group"]: TAGS}
    assert led["schedules"] == [f"{NAMES['schedule_group']}/{NAMES['schedule']}"]
    assert led["functions"][NAMES["ledger_function"]] == TAGS and led["layers"] == 1

    ddb = client("dynamodb", aws_env)
    table = ddb.describe_table(TableName=NAMES["ledger_table"])["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    cfg = client("lambda", aws_env).get_function_configuration(FunctionName=NAMES["ledger_function"])
    env = cfg["Environment"]["Variables"]
    assert cfg["Handler"] == "ledger.handler.handler" and env["LEDGER_TABLE"] == NAMES["ledger_table"]
    assert env["FORECAST_API_URL"] == first["url"], "the daily job calls the front door this deploy made"
    s = client("scheduler", aws_env).get_schedule(Name=NAMES["schedule"], GroupName=NAMES["schedule_group"])
    assert s["ScheduleExpressionTimezone"] == "America/New_York" and s["Target"]["Arn"] == cfg["FunctionArn"]
    assert s["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 3
    assert s["Target"]["DeadLetterConfig"]["Arn"].endswith(f":{NAMES['ledger_queue']}")
    iam = client("iam", aws_env)
    policy = iam.get_role_policy(RoleName=NAMES["ledger_role"], PolicyName="ledger-table-and-key")["PolicyDocument"]
    text = json.dumps(policy)
    assert table["TableArn"] in text and "DeleteItem" not in text and "${" not in text, "the table's own ARN, no placeholder"
    cw = client("cloudwatch", aws_env)
    ledger_alarms = [a for a in cw.describe_alarms()["MetricAlarms"] if a["AlarmName"].startswith(NAMES["ledger_function"])]
    assert len(ledger_alarms) == 6  # coverage, Kupiec, Winkler, dead letters, errors, missed run
    missed = next(a for a in ledger_alarms if a["AlarmName"].endswith("-missed-run"))
    assert missed["TreatMissingData"] == "breaching" and missed["MetricName"] == "RunsCompleted"
    invoke = client("lambda", aws_env).get_function_event_invoke_config(FunctionName=NAMES["ledger_function"])
    assert invoke["MaximumRetryAttempts"] == 2 and invoke["DestinationConfig"]["OnFailure"]["Destination"].endswith(
        f":{NAMES['ledger_queue']}"
    ), "a run that raises reaches the dead-letter queue after Lambda's retries"
    assert "EnclosingOperation" in text and "TransactWriteItems" in text, "no plain PutItem: it would overwrite"
    assert all(tag_dict(cw.list_tags_for_resource(ResourceARN=a["AlarmArn"])["Tags"]) == TAGS for a in ledger_alarms)
    from deployer.status import print_status

    full = deploy.status(aws, params=ON)
    st = full["ledger"]
    assert st["table"] == NAMES["ledger_table"] and "America/New_York" in st["schedule"] and len(st["alarms"]) == 6
    capsys.readouterr()
    print_status(full)
    assert f"  schedule  {NAMES['schedule_group']}/{NAMES['schedule']}: cron(30 16" in capsys.readouterr().out

    before, before_all = ledger_inventory(aws_env), inventory(aws_env)
    fn_before = client("lambda", aws_env).get_function_configuration(FunctionName=NAMES["ledger_function"])
    fn_before.pop("ResponseMetadata")
    run(aws, ledger_function, params=ON)
    out = capsys.readouterr().out
    assert f"function {NAMES['ledger_function']} (unchanged)" in out and "(unchanged: cron(" in out, out
    assert ledger_inventory(aws_env) == before and inventory(aws_env) == before_all, "a second deploy changes nothing"
    fn_after = client("lambda", aws_env).get_function_configuration(FunctionName=NAMES["ledger_function"])
    fn_after.pop("ResponseMetadata")
    assert fn_after == fn_before, "the same build must not update the ledger function"

    deploy.teardown(aws)
    led = ledger_inventory(aws_env)
    assert led["tables"] == {NAMES["ledger_table"]: TAGS}, "the track record stays unless --purge, like the model bucket"
    assert not led["queues"] and not led["groups"] and not led["schedules"] and not led["functions"] and not led["layers"]
    assert not iam.list_roles()["Roles"] and not cw.describe_alarms()["MetricAlarms"]
    logs = [g["logGroupName"] for g in client("logs", aws_env).describe_log_groups()["logGroups"]]
    assert NAMES["ledger_log_group"] not in logs
    deploy.teardown(aws, purge=True)
    assert ledger_inventory(aws_env)["tables"] == {}


def test_ledger_off_creates_nothing_of_it(aws, aws_env, ledger_function):
    run(aws, ledger_function)  # the template's default
    led = ledger_inventory(aws_env)
    assert not led["tables"] and not led["queues"] and not led["groups"] and list(led["functions"]) == [NAMES["function"]]


@pytest.mark.parametrize("kind", ["table", "queue", "schedule_group", "ledger_log_group"])
def test_a_foreign_ledger_namesake_is_refused_and_never_deleted(aws, aws_env, ledger_function, kind):
    """A table (or queue, schedule group, log group) of our name that is not ours stops deploy and teardown before any
    change; teardown --purge must not delete it."""
    if kind == "table":
        client("dynamodb", aws_env).create_table(
            TableName=NAMES["ledger_table"],
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
    elif kind == "queue":
        client("sqs", aws_env).create_queue(QueueName=NAMES["ledger_queue"], tags={"app": "someone-else"})
    elif kind == "schedule_group":
        client("scheduler", aws_env).create_schedule_group(Name=NAMES["schedule_group"])
    else:  # untagged, and no ledger function of ours: someone else's
        client("logs", aws_env).create_log_group(logGroupName=NAMES["ledger_log_group"])
    before, before_all = ledger_inventory(aws_env), inventory(aws_env)
    with pytest.raises(deploy.Collision, match="is not this stack's"):
        run(aws, ledger_function, params=ON)
    assert ledger_inventory(aws_env) == before and inventory(aws_env) == before_all, "nothing may be created"
    with pytest.raises(deploy.Collision):
        deploy.teardown(aws, purge=True)
    assert ledger_inventory(aws_env) == before and inventory(aws_env) == before_all, "teardown never deletes it"


def test_a_missing_ledger_package_is_one_line_before_anything_is_created(aws, aws_env, tmp_path):
    import package

    before = inventory(aws_env)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(package, "ledger_paths", lambda target=None: (tmp_path / "ledger_function.zip", tmp_path / "ledger_layer.zip"))
        needs = r"ledger_function.zip and ledger_layer.zip in dist/: run `python lambda/package.py --ledger`"
        with pytest.raises(deploy.DeployError, match=needs):
            test_deploy.run(aws, params=ON)
    assert inventory(aws_env) == before and not ledger_inventory(aws_env)["tables"]


# --- a deploy killed between publishing the ledger's layer and recording it -----------------------------------


def record_of(url) -> dict:
    return json.loads(client("ssm", url).get_parameter(Name=NAMES["record"])["Parameter"]["Value"])


def ledger_layer_arns(url) -> list[str]:
    versions = client("lambda", url).list_layer_versions(LayerName=NAMES["ledger_layer"])["LayerVersions"]
    return [v["LayerVersionArn"] for v in versions]


def kill_after_ledger_layer_publish(aws, ledger_function, monkeypatch) -> str:
    """Deploy with the ledger on and "die" right after PublishLayerVersion of the ledger's layer (the predict layer's
    publish runs through); returns the version the dead deploy published."""
    from tests.test_deploy_state import Interrupting, Killed

    ledger_only = Interrupting(aws("lambda"), "publish_layer_version", when=lambda kw: kw["LayerName"] == NAMES["ledger_layer"])
    monkeypatch.setitem(aws._clients, "lambda", ledger_only)
    with pytest.raises(Killed):
        run(aws, ledger_function, params=ON)
    aws._clients.pop("lambda")
    [leaked] = ledger_layer_arns(aws.endpoint_url)
    assert leaked not in record_of(aws.endpoint_url)["ledger_layers"], "the crash came before the version was recorded"
    return leaked


def test_kill_after_publishing_the_ledger_layer_leaks_nothing(aws, aws_env, ledger_function, monkeypatch):
    kill_after_ledger_layer_publish(aws, ledger_function, monkeypatch)
    deploy.teardown(aws, purge=True)
    assert ledger_layer_arns(aws_env) == [], "teardown deletes the version the killed deploy published"
    assert {k: v for k, v in inventory(aws_env).items() if k != "buckets"} == EMPTY


def test_the_next_deploy_claims_a_leaked_ledger_layer_version(aws, aws_env, ledger_function, monkeypatch):
    leaked = kill_after_ledger_layer_publish(aws, ledger_function, monkeypatch)
    run(aws, ledger_function, params=ON)
    assert ledger_layer_arns(aws_env) == [leaked], "the leaked version is reused, not doubled"
    r = record_of(aws_env)
    assert r["ledger_layers"] == [leaked] and r.get("ledger_layer_intent") is None
    cfg = client("lambda", aws_env).get_function_configuration(FunctionName=NAMES["ledger_function"])
    assert [x["Arn"] for x in cfg["Layers"]] == [leaked]
    deploy.teardown(aws)
    assert ledger_layer_arns(aws_env) == []
