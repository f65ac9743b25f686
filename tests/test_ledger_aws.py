"""The ledger on AWS, on moto: the DynamoDB store's conditional writes (nothing overwritten, a refused batch writes
nothing), its reads scored exactly as the SQLite store's, and the ledger function's daily run end to end."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ledger import scoring
from ledger.dynamo import DynamoStore
from ledger.store import DuplicateError, Outcome, SqliteStore
from tests.test_ledger import SMALL, fc

TABLE = "financial-forecasting-ledger"


@pytest.fixture
def ddb(monkeypatch):
    import boto3
    from moto import mock_aws

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(  # as template.yaml declares it
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def items(client) -> list:
    return sorted(json.dumps(i, sort_keys=True) for i in client.scan(TableName=TABLE)["Items"])


def test_a_second_write_is_refused_by_the_condition_and_nothing_changes(ddb):
    store = DynamoStore(TABLE, ddb)
    store.record([fc()])
    before = items(ddb)
    with pytest.raises(DuplicateError, match=r"forecasts \(AAPL, 2016-01-05, v1\) is already recorded"):
        store.record([fc(prediction=555.0)])
    assert items(ddb) == before


def test_a_batch_with_one_duplicate_writes_none_of_it(ddb):
    store = DynamoStore(TABLE, ddb)
    store.record([fc()])
    with pytest.raises(DuplicateError):
        store.record([fc(target="2016-01-06"), fc()])
    assert len(items(ddb)) == 1


def test_a_second_close_is_refused(ddb):
    store = DynamoStore(TABLE, ddb)
    store.add_outcomes([Outcome("AAPL", "2016-01-05", 102.0, "yfinance", "t")])
    with pytest.raises(DuplicateError, match="outcomes"):
        store.add_outcomes([Outcome("AAPL", "2016-01-05", 99.0, "yfinance", "t")])


def test_batches_beyond_one_transaction_are_written(ddb):
    store = DynamoStore(TABLE, ddb)
    days = [f"2016-{m:02d}-{d:02d}" for m in range(1, 8) for d in range(2, 28)][:150]
    store.record([fc(target=d, as_of=f"{d[:8]}01") for d in days])
    assert store.forecast_keys("v1", ["AAPL"]) == {("AAPL", d) for d in days}


def test_a_batch_goes_in_as_few_transactions_as_dynamodb_allows(ddb, monkeypatch):
    """150 rows are two TransactWriteItems (100 is DynamoDB's limit), not 150 separate puts: each transaction is
    all-or-nothing, so a failure between transactions (a throttle, a race the key check cannot see) leaves at most
    one transaction's rows, and the rerun converges."""
    store = DynamoStore(TABLE, ddb)
    calls = []
    real = store.ddb.transact_write_items
    monkeypatch.setattr(store.ddb, "transact_write_items", lambda **kw: calls.append(len(kw["TransactItems"])) or real(**kw))
    days = [f"2016-{m:02d}-{d:02d}" for m in range(1, 8) for d in range(2, 28)][:150]
    store.record([fc(target=d, as_of=f"{d[:8]}01") for d in days])
    assert calls == [100, 50]


def test_dynamo_and_sqlite_score_the_same(ddb, tmp_path):
    dyn = DynamoStore(TABLE, ddb)
    with SqliteStore(tmp_path / "l.sqlite") as lite:
        for store in (dyn, lite):
            store.record([f for f, _ in SMALL] + [fc(target="2016-01-08")])
            store.add_outcomes([Outcome("AAPL", f.target_date, c, "snapshot", "t") for f, c in SMALL])
        assert dyn.awaiting_outcomes(["AAPL"]) == lite.awaiting_outcomes(["AAPL"]) == [("AAPL", "2016-01-08")]
        from ledger import read

        want = read.scorecard(lite.path)
    got = scoring.scorecard(scoring.score_rows(dyn.joined(["AAPL"])))
    assert got == want


def test_the_ledger_function_runs_the_daily_job(ddb, local_api, monkeypatch, capsys, tmp_path):
    """handler(): the API key from SSM, forecasts into DynamoDB, the alarms as EMF metric lines."""
    import boto3

    from ledger import handler, live
    from tests.test_ledger_live import FakeTicker, at, bars

    boto3.client("ssm").put_parameter(Name="/ff/key", Value=local_api.key, Type="SecureString")
    for k, v in {"LEDGER_TABLE": TABLE, "FORECAST_API_URL": local_api.url, "API_KEY_PARAMETER": "/ff/key",
                 "AWS_LAMBDA_FUNCTION_NAME": "ff-ledger"}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    import yfinance

    monkeypatch.setattr(yfinance, "Ticker", FakeTicker)
    FakeTicker.answers = {"AAPL": bars("AAPL", "2013-02-26")}
    monkeypatch.setattr(handler, "now", lambda: at("2013-02-26"))
    monkeypatch.setattr(handler, "MARKET_CACHE", tmp_path / "market")
    # a retired version whose every close fell outside its band: its alarms are its own, never the served version's
    days = list(pd.bdate_range("2012-08-31", "2012-12-31").strftime("%Y-%m-%d")[:81])
    retired = DynamoStore(TABLE, ddb)
    retired.record([fc(target=d, as_of=a, version="retired") for a, d in zip(days, days[1:], strict=False)])
    days = days[1:]
    retired.add_outcomes([Outcome("AAPL", d, 200.0, "yfinance", "t") for d in days])
    out = handler.handler({"watchlist": "AAPL"}, None)
    assert out["forecasts"] == 1
    assert DynamoStore(TABLE, ddb).forecast_keys(out["model_version"], ["AAPL"]) == {("AAPL", "2013-02-27")}
    assert all(a["model_version"] == out["model_version"] for a in out["alarms"])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert lines[0]["FunctionName"] == "ff-ledger" and lines[0]["CoverageAlarms"] == 0 and lines[0]["KupiecAlarms"] == 0
    assert lines[-1]["RunsCompleted"] == 1  # the heartbeat, last: written only by a run that completed
    assert lines[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == handler.NAMESPACE
    assert handler.handler({"watchlist": "AAPL"}, None)["forecasts"] == 0  # idempotent on DynamoDB too
    assert live.parse_watchlist("AAPL") == ["AAPL"]


@pytest.mark.parametrize(
    "event", [{"watchlist": 5}, [1, 2], "AAPL", 7, {"watchlist": "A;B"}, {"watchlist": ["AAPL"]}, {"watchlist": {"a": 1}}]
)
def test_a_malformed_event_is_answered_never_raised(event, capsys):
    """Finding 9: AttributeError on a list, SystemExit (which ends the runtime process) on "A;B"."""
    from ledger import handler

    out = handler.handler(event, None)
    assert out["code"] == "bad_event" and out["error"]
    assert "RunsCompleted" not in capsys.readouterr().out  # no heartbeat: the LedgerMissedRun alarm will say so


def test_metric_lines_count_the_tickers_in_alarm():
    from ledger.handler import metric_lines

    alarms = [
        {"ticker": "AAPL", "coverage_alarm": True, "kupiec_alarm": False, "winkler_alarm": True, "coverage_60": 0.6,
         "kupiec_p": 0.2, "winkler_days_above_1": 25},
        {"ticker": "IBM", "coverage_alarm": True, "kupiec_alarm": True, "winkler_alarm": False, "coverage_60": None,
         "kupiec_p": 0.01, "winkler_days_above_1": 0},
    ]  # fmt: skip
    lines = metric_lines(alarms, "fn", 0)
    assert {k: lines[0][k] for k in ("CoverageAlarms", "KupiecAlarms", "WinklerAlarms")} == {
        "CoverageAlarms": 2, "KupiecAlarms": 1, "WinklerAlarms": 1}  # fmt: skip
    assert "Coverage60" not in lines[2] and lines[2]["Ticker"] == "IBM"


# --- the ledger in lambda/template.yaml -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ledger_cfn() -> dict:
    """lambda/template.yaml with Ledger=on as CloudFormation would run it (samtranslator, offline)."""
    import copy
    import sys

    from samtranslator.translator.transform import transform

    from tests.support import LAMBDA_DIR

    sys.path.insert(0, str(LAMBDA_DIR))
    import settings

    t = copy.deepcopy(settings.load_template())
    for fn, code in (("LedgerFunction", "ledger_function"), ("ForecastFunction", "lambda_function")):
        t["Resources"][fn]["Properties"]["CodeUri"] = f"s3://bucket/{code}.zip"
    for layer, code in (("LedgerLayer", "ledger_layer"), ("DependenciesLayer", "layer")):
        t["Resources"][layer]["Properties"]["ContentUri"] = f"s3://bucket/{code}.zip"
    params = {**settings.params_with_defaults(t), "Ledger": "on", "ApiKeyValue": "k" * 20, "ApiKeySha256": "0" * 64}

    class Policies:
        def load(self):
            return {}

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return transform(t, params, Policies())


def test_the_ledger_lives_in_the_one_template():
    """No second template to drift from the first: lambda/template.yaml (cfn-lint in test_template) declares it all."""
    from tests.support import ROOT

    assert not (ROOT / "ledger" / "template.yaml").exists()


def one(cfn: dict, kind: str) -> dict:
    [r] = [r["Properties"] for k, r in cfn["Resources"].items() if r["Type"] == kind and k.startswith("Ledger")]
    return r


def test_the_table_is_on_demand_with_the_stores_keys(ledger_cfn):
    table = one(ledger_cfn, "AWS::DynamoDB::Table")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert {"Key": "app", "Value": {"Ref": "ProjectTag"}} in table["Tags"]


def test_the_ledger_function_has_its_own_handler_and_layer(ledger_cfn):
    import importlib

    fn = one(ledger_cfn, "AWS::Lambda::Function")
    module, func = fn["Handler"].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), func))
    [layer] = fn["Layers"]
    assert (
        "LedgerLayer" in layer["Ref"]
        and fn["Environment"]["Variables"]["LEDGER_METRICS_NAMESPACE"] == "FinancialForecasting/Ledger"
    )
    assert {"Key": "app", "Value": {"Ref": "ProjectTag"}} in fn["Tags"]
    role = [r for r in ledger_cfn["Resources"].values() if r["Type"] == "AWS::IAM::Role" and "lambda" in json.dumps(r)][0]
    actions = json.dumps(role["Properties"]["Policies"])
    assert "dynamodb:PutItem" in actions and "UpdateItem" not in actions and "DeleteItem" not in actions


def test_the_schedule_runs_after_the_close_in_new_york_with_retries_and_a_dlq(ledger_cfn):
    s = one(ledger_cfn, "AWS::Scheduler::Schedule")
    assert s["ScheduleExpressionTimezone"] == "America/New_York"
    params = ledger_cfn["Parameters"]
    assert params["LedgerScheduleExpression"]["Default"] == "cron(30 16 * * ? *)"  # 16:30, after the 16:00 bell, daily
    assert s["Target"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert s["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["LedgerDeadLetterQueue", "Arn"]}}


def test_the_alarms_watch_what_the_handler_emits(ledger_cfn):
    from ledger import handler

    alarms = [r["Properties"] for r in ledger_cfn["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    drift = {a["MetricName"]: a for a in alarms if a["Namespace"] == handler.NAMESPACE}
    assert set(drift) == {*handler.ALARM_METRICS.values(), "RunsCompleted"}
    ledger_fn = {"Fn::Sub": "${FunctionName}-ledger"}
    assert all(a["Dimensions"] == [{"Name": "FunctionName", "Value": ledger_fn}] for a in drift.values())
    assert any(a["Namespace"] == "AWS/SQS" for a in alarms)  # a run that failed its retries


def test_a_failed_run_reaches_the_dead_letter_queue_and_alarms(ledger_cfn):
    """Finding 6: Scheduler's DLQ covers only the hand-over to Lambda; a run that raises is retried by Lambda and,
    without an on-failure destination, discarded. Now: 2 retries on purpose, the record to the queue, an alarm on
    the function's errors, and a heartbeat whose absence (missing data) breaches."""
    from ledger import handler

    res = ledger_cfn["Resources"]
    [invoke] = [r["Properties"] for r in res.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert invoke["MaximumRetryAttempts"] == 2 and invoke["MaximumEventAgeInSeconds"] <= 3600
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["LedgerDeadLetterQueue", "Arn"]}
    role = json.dumps(res["LedgerRole"]["Properties"]["Policies"])
    assert '"sqs:SendMessage"' in role  # Lambda sends the failure record with the function's own role
    alarms = {
        r["Properties"]["AlarmName"]["Fn::Sub"]: r["Properties"] for r in res.values() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    errors = alarms["${FunctionName}-ledger-errors"]
    assert errors["Namespace"] == "AWS/Lambda" and errors["MetricName"] == "Errors"
    missed = alarms["${FunctionName}-ledger-missed-run"]
    assert missed["MetricName"] == handler.heartbeat("f", 0)["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]
    assert missed["TreatMissingData"] == "breaching" and missed["ComparisonOperator"] == "LessThanThreshold"
    assert missed["Period"] == 86400  # the schedule runs every day, so every day has its heartbeat


def test_the_role_cannot_overwrite_with_a_plain_put(ledger_cfn):
    """Finding 8: PutItem only inside TransactWriteItems, where every put is conditional; no UpdateItem/DeleteItem."""
    [stmt] = [
        st
        for pol in ledger_cfn["Resources"]["LedgerRole"]["Properties"]["Policies"]
        for st in pol["PolicyDocument"]["Statement"]
        if "dynamodb:PutItem" in st["Action"]
    ]
    assert stmt["Condition"] == {"ForAnyValue:StringEquals": {"dynamodb:EnclosingOperation": ["TransactWriteItems"]}}


def test_the_predict_package_holds_nothing_of_the_ledger(built_packages):
    """The ledger runs in its own function: the predict function's zip and layer (so its cold start) are untouched."""
    import zipfile

    for path in built_packages:
        names = zipfile.ZipFile(path).namelist()
        assert not [n for n in names if n.startswith("ledger/") or "exchange_calendars" in n], path


def test_the_templates_table_and_schedule_are_what_aws_accepts(monkeypatch):
    """The table and the schedule exactly as ledger/template.yaml declares them, created through boto3 on moto (the
    calls deploy will make): on demand, tagged, New York time, retries and the dead-letter queue kept."""
    import sys

    import boto3
    from moto import mock_aws

    from tests.support import LAMBDA_DIR

    sys.path.insert(0, str(LAMBDA_DIR))
    import settings

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    t = settings.load_template()
    params = settings.params_with_defaults(t)
    with mock_aws():
        table = settings.resolve(t["Resources"]["LedgerTable"]["Properties"], params)
        ddb = boto3.client("dynamodb")
        # CloudFormation's names differ from the API's in two places: SSEEnabled is Enabled; PITR is a second call
        api = {k: v for k, v in table.items() if k != "PointInTimeRecoverySpecification"}
        api["SSESpecification"] = {"Enabled": table["SSESpecification"]["SSEEnabled"]}
        arn = ddb.create_table(**api)["TableDescription"]["TableArn"]
        assert ddb.describe_table(TableName=table["TableName"])["Table"]["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        tags = {x["Key"]: x["Value"] for x in ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]}
        assert tags["app"] == "financial-forecasting"
        dlq = boto3.client("sqs").create_queue(QueueName="ledger-dlq")["QueueUrl"]
        dlq_arn = boto3.client("sqs").get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        schedule = settings.resolve(t["Resources"]["LedgerDailySchedule"]["Properties"], params)
        schedule["Target"] |= {
            "Arn": "arn:aws:lambda:us-east-1:123456789012:function:ledger",
            "RoleArn": "arn:aws:iam::123456789012:role/s",
        }
        schedule["Target"]["DeadLetterConfig"] = {"Arn": dlq_arn}
        scheduler = boto3.client("scheduler")
        group = settings.resolve(t["Resources"]["LedgerScheduleGroup"]["Properties"], params)
        scheduler.create_schedule_group(**group)
        schedule["GroupName"] = group["Name"]
        scheduler.create_schedule(**schedule)
        got = scheduler.get_schedule(Name=schedule["Name"], GroupName=group["Name"])
    assert got["ScheduleExpression"] == "cron(30 16 * * ? *)" and got["ScheduleExpressionTimezone"] == "America/New_York"
    assert got["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 3 and got["Target"]["DeadLetterConfig"]["Arn"] == dlq_arn
