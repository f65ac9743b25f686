"""The ledger: insert-only store, NYSE target days, scores worked out by hand, alarms, and the replay job over a
real local API (idempotent: a second run adds nothing and asks the API nothing)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import sqlite3

import numpy as np
import pandas as pd
import pytest

from ledger import read, replay, scoring, sessions
from ledger.store import DuplicateError, Forecast, LedgerError, Outcome, SqliteStore


def fc(ticker="AAPL", target="2016-01-05", version="v1", **kw) -> Forecast:
    base = dict(
        ticker=ticker, target_date=target, model_version=version, issued_at="2026-11-30T12:00:00Z",
        as_of=str(dt.date.fromisoformat(target) - dt.timedelta(days=1)), prediction=101.0, low=98.0, high=104.0,
        level=0.8, last_close=100.0, volatility=0.01, confidence=0.6, source="snapshot", input_hash="ab" * 32,
        vol20=0.012, rolling_low=97.0, rolling_high=103.0, garch_low=96.0, garch_high=104.0,
        plain_low=98.0, plain_high=104.0,
    )  # fmt: skip
    return Forecast(**{**base, **kw})


@pytest.fixture
def store(tmp_path):
    with SqliteStore(tmp_path / "ledger.sqlite") as s:
        yield s


def dump(path) -> list:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM forecasts ORDER BY 1, 2, 3").fetchall()


# --- insert-only --------------------------------------------------------------------------------------------------


def test_a_second_write_of_a_key_is_refused_and_nothing_changes(store):
    store.record([fc()])
    before = dump(store.path)
    with pytest.raises(
        DuplicateError, match=r"forecasts \(ticker=AAPL, target_date=2016-01-05, model_version=v1\) is already recorded"
    ):
        store.record([fc(prediction=555.0)])
    assert dump(store.path) == before


def test_a_batch_with_one_duplicate_writes_none_of_it(store):
    store.record([fc()])
    with pytest.raises(DuplicateError):
        store.record([fc(target="2016-01-06"), fc()])
    assert store.counts()["forecasts"] == 1


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE forecasts SET prediction = 1",
        "DELETE FROM forecasts",
        "INSERT OR REPLACE INTO forecasts SELECT * FROM forecasts",
        "INSERT INTO forecasts SELECT * FROM forecasts WHERE true ON CONFLICT DO UPDATE SET prediction = 1",
        "UPDATE outcomes SET close = 1",
        "DELETE FROM outcomes",
        "INSERT OR REPLACE INTO outcomes SELECT * FROM outcomes",
    ],
)
def test_the_database_itself_refuses_to_change_history(store, sql):
    """A user with sqlite3 in hand, not only this code, meets the triggers."""
    store.record([fc()])
    store.add_outcomes([Outcome("AAPL", "2016-01-05", 102.0, "snapshot", "2026-11-30T12:00:00Z")])
    with sqlite3.connect(store.path) as conn:
        before = conn.execute("SELECT * FROM forecasts").fetchall() + conn.execute("SELECT * FROM outcomes").fetchall()
        with pytest.raises(sqlite3.DatabaseError, match="ledger: .*(insert-only|already recorded)"):
            conn.execute(sql)
        assert conn.execute("SELECT * FROM forecasts").fetchall() + conn.execute("SELECT * FROM outcomes").fetchall() == before


def test_a_second_close_for_a_day_is_refused(store):
    store.add_outcomes([Outcome("AAPL", "2016-01-05", 102.0, "snapshot", "t")])
    with pytest.raises(DuplicateError, match="outcomes"):
        store.add_outcomes([Outcome("AAPL", "2016-01-05", 99.0, "yfinance", "t")])


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"target_date": "5 Jan 2016"}, "target_date_is_a_date"),
        ({"low": 110.0}, "low_not_above_high"),
        ({"as_of": "2016-01-05"}, "as_of_before_target"),
    ],
)
def test_a_malformed_row_is_refused_with_its_key(store, change, problem):
    with pytest.raises(LedgerError, match=f"refused forecasts row .*{problem}"):
        store.record([fc(**change)])


def test_a_file_that_is_not_a_ledger_gets_a_clear_error(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_text("not a database at all" * 100)
    with pytest.raises(LedgerError, match="is not a usable ledger"):
        SqliteStore(bad)


def test_the_schema_documents_the_issue_columns(store):
    with sqlite3.connect(store.path) as conn:
        cols = {r[1] for r in conn.execute("PRAGMA table_info(forecasts)")}
        keys = [r[1] for r in conn.execute("PRAGMA table_info(forecasts)") if r[5]]
        out = {r[1] for r in conn.execute("PRAGMA table_info(outcomes)")}
    assert {"ticker", "target_date", "model_version", "issued_at", "as_of", "prediction", "low", "high", "level",
            "last_close", "volatility", "confidence", "source", "input_hash"} <= cols  # fmt: skip
    assert keys == ["ticker", "target_date", "model_version"]
    assert out == {"ticker", "date", "close", "source", "fetched_at", "adjustment"}


# --- calendar -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "as_of, target",
    [
        ("2016-07-01", "2016-07-05"),  # Friday before Independence Day (Monday)
        ("2016-07-02", "2016-07-05"),  # a Saturday
        ("2016-11-23", "2016-11-25"),  # Thanksgiving
        ("2017-12-22", "2017-12-26"),  # Christmas on a Monday
        ("2012-10-26", "2012-10-31"),  # Hurricane Sandy closed the market two days
        ("2018-12-04", "2018-12-06"),  # the national day of mourning for George H. W. Bush
        ("2016-01-05", "2016-01-06"),  # an ordinary Tuesday
    ],
)
def test_the_target_day_is_the_next_nyse_session(as_of, target):
    assert sessions.next_session(as_of) == dt.date.fromisoformat(target)


def test_sessions_skip_holidays():
    assert dt.date(2016, 7, 4) not in sessions.sessions("2016-07-01", "2016-07-06")
    assert len(sessions.sessions("2016-07-01", "2016-07-06")) == 3


# --- scores by hand -----------------------------------------------------------------------------------------------

# three forecasts for AAPL, closes 102, 97, 100: worked out below by hand
SMALL = [
    (fc(target="2016-01-05", prediction=101.0, low=98.0, high=104.0), 102.0),  # covered, up called, up: hit
    (fc(target="2016-01-06", prediction=101.0, low=99.0, high=103.0), 97.0),  # below low by 2, up called, down: miss
    (fc(target="2016-01-07", prediction=99.0, low=95.0, high=101.0, last_close=100.0), 100.0),  # covered, no move
]


@pytest.fixture
def small(store):
    store.record([f for f, _ in SMALL])
    store.add_outcomes([Outcome("AAPL", f.target_date, c, "snapshot", "t") for f, c in SMALL])
    return store


def test_scores_recomputed_by_hand(small):
    rows = read.scored(small.path)
    assert rows["abs_error"].tolist() == [1.0, 4.0, 1.0]
    assert rows["naive_abs_error"].tolist() == [2.0, 3.0, 0.0]
    assert rows["covered"].tolist() == [True, False, True]
    # the last close stayed put, so a call of "down" misses
    assert rows["direction_hit"].tolist() == [1.0, 0.0, 0.0]
    # Winkler on prices relative to the last close: width + 2/0.2 x miss; row 2 = 0.04 + 10 x 0.02
    assert rows["winkler"].tolist() == pytest.approx([0.06, 0.24, 0.06])
    assert rows["winkler_rolling"].tolist() == pytest.approx([0.06, 0.06 + 10 * 0.0, 0.06])
    [card] = read.scorecard(small.path)
    assert card["n"] == 3 and card["ticker"] == "AAPL" and card["model_version"] == "v1"
    assert card["coverage"] == pytest.approx(2 / 3)
    assert card["mase"] == pytest.approx(6.0 / 5.0)  # sum |pred - close| / sum |last - close|
    assert card["winkler_vs_rolling"] == pytest.approx(0.12 / 0.06)
    assert card["direction_hit"] == pytest.approx(1 / 3)


def test_a_forecast_waits_for_its_close(small):
    small.record([fc(target="2016-01-08")])
    assert small.awaiting_outcomes() == [("AAPL", "2016-01-08")]
    assert read.scorecard(small.path)[0]["n"] == 3


def test_the_read_api_cannot_write(small):
    with pytest.raises(sqlite3.OperationalError, match="readonly"), read._connect(small.path) as conn:
        conn.execute("CREATE TABLE x (a)")


def test_no_ledger_file_says_what_to_run(tmp_path):
    with pytest.raises(read.NoLedger, match="make ledger"):
        read.scorecard(tmp_path / "none.sqlite")


# --- alarms -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, breaches, lr",
    [
        (100, 20, 0.0),  # exactly the nominal 20%: no evidence at all
        # -2 ln[(0.8^65 0.2^35) / (0.65^65 0.35^35)]
        (100, 35, -2 * (65 * math.log(0.8) + 35 * math.log(0.2) - 65 * math.log(0.65) - 35 * math.log(0.35))),
        (50, 0, -2 * 50 * math.log(0.8)),  # never breached: 0 log 0 = 0
    ],
)
def test_kupiec_by_hand(n, breaches, lr):
    got, p = scoring.kupiec(n, breaches)
    assert got == pytest.approx(lr)
    assert (p < 0.05) == (lr > 3.841458820694124)  # chi-squared(1) at 5%


def scored_frame(covered: list[bool], winkler: list[float], winkler_rolling: list[float]) -> pd.DataFrame:
    n = len(covered)
    days = pd.bdate_range("2016-01-04", periods=n).strftime("%Y-%m-%d")
    return pd.DataFrame(
        {
            "ticker": "AAPL",
            "model_version": "v1",
            "target_date": days,
            "level": 0.8,
            "covered": covered,
            "winkler": winkler,
            "winkler_rolling": winkler_rolling,
            "winkler_garch": winkler_rolling,
            "abs_error": 1.0,
            "naive_abs_error": 1.0,
        }  # fmt: skip
    )


@pytest.mark.parametrize(
    "covered, alarm",
    [([True] * 80, True), ([True, True, True, True, False] * 16, False), ([True, False] * 40, True), ([True] * 59, False)],
)
def test_rolling_coverage_alarm(covered, alarm):
    [a] = scoring.alarms(scored_frame(covered, [1.0] * len(covered), [1.0] * len(covered)))
    assert a["coverage_alarm"] is alarm


@pytest.mark.parametrize("days_worse, alarm", [(19, False), (20, True)])
def test_winkler_alarm_needs_20_days_running(days_worse, alarm):
    # the served interval scores 1.0 throughout; the rolling baseline turns better (0.5) on the last days, pulling the
    # 60-day ratio above 1 a few days after it starts: find where the ratio first exceeds 1 and end the frame there
    served = [1.0] * 300
    base = [1.2] * 100 + [0.5] * 200
    frame = scored_frame([True] * 300, served, base)
    ratio = scoring.rolling_series(frame)["winkler_ratio_rolling60"].to_numpy()
    first = int(np.argmax(ratio > 1.0))
    cut = frame.iloc[: first + days_worse]
    [a] = scoring.alarms(cut)
    assert a["winkler_days_above_1"] == days_worse and a["winkler_alarm"] is alarm


def test_kupiec_alarm_on_a_badly_covering_record():
    [a] = scoring.alarms(scored_frame([True, False] * 50, [1.0] * 100, [1.0] * 100))
    assert a["kupiec_breaches"] == 50 and a["kupiec_alarm"] is True


# --- the replay ---------------------------------------------------------------------------------------------------


def test_a_replayed_window_equals_one_built_from_data_cut_at_its_day(manifest, aapl):
    """The replay cuts one feature frame; the window it sends for day t is the one data up to t alone gives."""
    from models.features import window

    days = pd.DatetimeIndex(["2011-04-11", "2012-06-01", "2013-02-28"])
    reqs = replay.day_requests(aapl, manifest, days)
    for r in reqs:
        alone = window(aapl[aapl.index <= r["as_of"]], manifest["scaler"])
        np.testing.assert_allclose(r["features"], alone, rtol=0, atol=1e-9)
    assert len(reqs) == 3


def test_the_input_hash_is_the_window_not_the_call():
    a = np.arange(600, dtype=float)
    assert replay.input_hash(a) == replay.input_hash(a.copy()) != replay.input_hash(a + 1e-9)


def test_unknown_tickers_are_named():
    with pytest.raises(SystemExit, match=r"--tickers NOPE not in the bundled snapshot; it has .*AAPL"):
        replay.parse_tickers("AAPL,NOPE")


def test_replay_records_scores_and_is_idempotent(local_api, tmp_path, capsys):
    """Over the real local API: GOOG's test period recorded, scored like models.evaluate, and a second run adds
    nothing and does not call POST /predict again."""
    db = tmp_path / "ledger.sqlite"
    args = ["--url", local_api.url, "--key", local_api.key, "--db", str(db), "--tickers", "GOOG", "--json"]
    calls = lambda: sum(1 for r in local_api.invocations() if r.get("path", "").endswith("/predict"))  # noqa: E731
    assert replay.main(args) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["database"] == str(db)
    [card] = first["scorecard"]
    spans = local_api_card(local_api)["test_metrics"]
    assert card["n"] == spans["spans"]["GOOG"]["n_test"] == 306
    assert card["coverage"] == pytest.approx(spans["per_ticker_risk"]["GOOG"]["served"]["coverage"])
    assert card["mase"] == pytest.approx(spans["per_ticker"]["GOOG"]["ensemble"]["mase"], rel=1e-6)
    risk = spans["per_ticker_risk"]["GOOG"]
    assert card["winkler_vs_rolling"] == pytest.approx(risk["served"]["winkler"] / risk["rolling20"]["winkler"], rel=1e-6)
    assert card["winkler_vs_garch"] == pytest.approx(risk["served"]["winkler"] / risk["garch"]["winkler"], rel=1e-6)
    assert card["direction_hit"] == pytest.approx(spans["per_ticker"]["GOOG"]["ensemble"]["directional_accuracy"])
    assert set(card) >= {"ticker", "model_version", "n", "coverage", "mase", "winkler_vs_rolling", "winkler_vs_garch"}
    before, n_calls = dump(db), calls()
    assert n_calls >= math.ceil(306 / 64)
    assert replay.main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == first
    assert dump(db) == before and calls() == n_calls


def local_api_card(api) -> dict:
    import requests

    return requests.get(api.url + "/model", timeout=10).json()


def test_forecast_rows_are_frozen_dataclasses():
    with pytest.raises(dataclasses.FrozenInstanceError):
        fc().prediction = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "args, says",
    [
        (["--url", "http://127.0.0.1:9/prod"], "ledger: nothing answers at http://127.0.0.1:9/prod"),
        (["--url", "http://127.0.0.1:9/prod", "--db", "{tmp}/junk.sqlite"], "is not a usable ledger"),
        (["--tickers", "ZZZ"], "--tickers ZZZ not in the bundled snapshot"),
    ],
)
def test_bad_input_gets_one_clear_line(tmp_path, args, says):
    (tmp_path / "junk.sqlite").write_text("junk" * 500)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    with pytest.raises(SystemExit, match=says):
        replay.main(["--db", str(tmp_path / "l.sqlite"), *args])
