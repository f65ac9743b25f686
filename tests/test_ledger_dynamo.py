"""The DynamoDB store on moto's server (a real HTTP endpoint, as boto3 meets AWS) held to the SQLite store's rules:
each rule of ledger/schema.py refused with nothing written, batches all or nothing beyond one transaction, and a
second model version recorded beside the first on both stores and kept apart by the scorecard and the alarms."""

from __future__ import annotations

import dataclasses
import itertools

import boto3
import pandas as pd
import pytest

from ledger import live, read, schema, scoring
from ledger.dynamo import DynamoStore
from ledger.store import DuplicateError, LedgerError, SqliteStore
from models.client import ForecastClient
from tests.test_ledger import fc
from tests.test_ledger_live import FakeTicker, at, bars
from tests.test_ledger_schema import broken

pytestmark = pytest.mark.integration
_n = itertools.count()


@pytest.fixture
def table(aws_env):
    """A fresh table per test, keyed as lambda/template.yaml declares it."""
    ddb = boto3.client("dynamodb", endpoint_url=aws_env, region_name="us-east-1")
    name = f"ledger-{next(_n)}"
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield DynamoStore(name, ddb)
    ddb.delete_table(TableName=name)


def count(store: DynamoStore) -> int:
    return store.ddb.scan(TableName=store.table, Select="COUNT")["Count"]


@pytest.mark.parametrize("rule", schema.RULES, ids=lambda r: f"{r.table}:{r.name}")
def test_dynamodb_refuses_each_rule_the_sqlite_file_refuses(table, rule):
    """Finding 8: it took a close of 0 or -5, low > high, as_of after the target, a level of 80, infinities."""
    adder = {"forecasts": table.record, "outcomes": table.add_outcomes, "skips": table.add_skips}[rule.table]
    with pytest.raises(LedgerError, match=f"breaks {rule.name}"):
        adder([broken(rule)])
    assert count(table) == 0


def days(n: int) -> list[str]:
    return list(pd.bdate_range("2015-01-02", periods=n + 1).strftime("%Y-%m-%d"))


def rows(n: int, version: str = "v1") -> list:
    d = days(n)
    return [fc(target=t, as_of=a, version=version) for a, t in zip(d, d[1:], strict=False)]


@pytest.mark.parametrize("where", [0, 120, 149])
def test_a_refused_batch_of_150_writes_nothing(table, where):
    """Finding 8: the first 100 were committed before the second transaction failed."""
    batch = rows(150)
    table.record([batch[where]])
    with pytest.raises(DuplicateError, match=batch[where].target_date):
        table.record(batch)
    assert count(table) == 1
    bad = [*batch[:where], dataclasses.replace(batch[where], low=999.0), *batch[where + 1 :]]
    with pytest.raises(LedgerError, match="low_not_above_high"):
        DynamoStore(table.table, table.ddb).record(bad)
    assert count(table) == 1


def test_equal_keys_in_one_batch_are_refused_as_sqlite_refuses_them(table, tmp_path):
    batch = rows(120)
    batch.append(batch[3])
    with pytest.raises(DuplicateError):
        table.record(batch)
    assert count(table) == 0
    with SqliteStore(tmp_path / "l.sqlite") as lite, pytest.raises(DuplicateError):
        lite.record(batch)


class Version(ForecastClient):
    """The served API under another version's name: what a model update looks like to the ledger."""

    def __init__(self, url, key, name: str):
        super().__init__(url, key, timeout=60)
        self.name = name

    def model(self):
        return {**super().model(), "version": self.name}

    def predict_batch(self, instances, model_version=None):
        real = super().model()["version"]
        return [{**a, "model_version": self.name} for a in super().predict_batch(instances, real)]


def test_a_second_model_version_is_recorded_beside_the_first_and_kept_apart(table, local_api, monkeypatch, tmp_path):
    """Model versions kept apart: after an update, the new version forecasts days the old one already forecast;
    both are recorded on both stores, scored against one close, and the scorecard keeps them apart."""
    import yfinance

    monkeypatch.setattr(yfinance, "Ticker", FakeTicker)
    with SqliteStore(tmp_path / "l.sqlite") as lite:
        for store in (lite, table):
            cache = live.LastGood(tmp_path / f"m{id(store)}")
            FakeTicker.answers = {"AAPL": bars("AAPL", "2013-02-26"), "IBM": bars("IBM", "2013-02-26")}
            for name in ("v-old", "v-new"):
                out = live.run(Version(local_api.url, local_api.key, name), store, ["AAPL", "IBM"], at("2013-02-26"), cache)
                assert out["forecasts"] == 2 and out["model_version"] == name
            FakeTicker.answers = {"AAPL": bars("AAPL", "2013-02-27"), "IBM": bars("IBM", "2013-02-27")}
            out = live.run(Version(local_api.url, local_api.key, "v-new"), store, ["AAPL", "IBM"], at("2013-02-27"), cache)
            assert out["outcomes"] == 2  # one close per ticker and day, scoring both versions
            assert store.forecast_keys("v-old", ["AAPL"]) == {("AAPL", "2013-02-27")}
            assert store.forecast_keys("v-new", ["AAPL"]) == {("AAPL", "2013-02-27"), ("AAPL", "2013-02-28")}
        dyn = scoring.scorecard(scoring.score_rows(table.joined(["AAPL", "IBM"])))
        sql = read.scorecard(lite.path)
        key = [(c["ticker"], c["model_version"], c["n"]) for c in sql]
        assert key == [(c["ticker"], c["model_version"], c["n"]) for c in dyn]
        assert key == [("AAPL", "v-new", 1), ("AAPL", "v-old", 1), ("IBM", "v-new", 1), ("IBM", "v-old", 1)]
        assert {(a["ticker"], a["model_version"]) for a in read.alarms(lite.path)} == {(t, v) for t, v, _ in key}
