"""The daily job against hostile market data (yfinance faked at its boundary, a real local API): one ticker's bad
bar, out-of-range window, split, unit jump, other symbol's data or off-contract answer is skipped for the day with
its reason, and every other ticker is still forecast and scored, in the units its forecast was made in."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from ledger import guards, live
from ledger.store import SqliteStore
from models.client import EndpointError, ForecastClient
from models.data import load_prices
from tests.test_ledger_live import FakeTicker, at, bars

DAY1, DAY2 = "2013-02-26", "2013-02-27"


@pytest.fixture
def yf(monkeypatch):
    import yfinance

    FakeTicker.answers, FakeTicker.calls = {}, []
    monkeypatch.setattr(yfinance, "Ticker", FakeTicker)
    return FakeTicker


@pytest.fixture
def job(local_api, yf, tmp_path):
    client = ForecastClient(local_api.url, local_api.key, timeout=60)
    cache = live.LastGood(tmp_path / "market")
    with SqliteStore(tmp_path / "ledger.sqlite") as store:

        def run(answers: dict, day: str, client=client) -> dict:
            yf.answers = answers
            return live.run(client, store, list(answers), at(day), cache)

        run.store = store
        yield run


def skipped(store, ticker: str) -> list[tuple[str, str]]:
    return store.conn.execute("SELECT reason_code, detail FROM skips WHERE ticker = ?", (ticker,)).fetchall()


def with_bar(df: pd.DataFrame, day: str, **values) -> pd.DataFrame:
    df = df.copy()
    row = df.index[df.index.normalize().tz_localize(None) == pd.Timestamp(day)][0]
    for k, v in values.items():
        df.loc[row, k] = v
    return df


@pytest.mark.parametrize("close", [0.0, -5.0])
def test_a_non_positive_close_skips_only_that_ticker_every_day(job, close):
    """Finding 1: the bar stays in the history, so it must not stop any later day either."""
    bad = with_bar(bars("IBM", DAY1), "2013-02-20", Close=close)
    day1 = job({"AAPL": bars("AAPL", DAY1), "IBM": bad}, DAY1)
    assert day1["forecasts"] == 1 and "recorded for 2013-02-27" in day1["tickers"]["AAPL"]["forecast"]
    assert skipped(job.store, "IBM")[0][0] == "bad_price" and "2013-02-20" in skipped(job.store, "IBM")[0][1]
    day2 = job({"AAPL": bars("AAPL", DAY2), "IBM": with_bar(bars("IBM", DAY2), "2013-02-20", Close=close)}, DAY2)
    assert day2["outcomes"] == 1 and day2["forecasts"] == 1  # AAPL scored and forecast again
    assert any(s["reason_code"] == "bad_price" for s in day2["skips"])


def test_a_non_positive_close_on_the_target_day_is_not_recorded_and_the_rest_are(job):
    job({"AAPL": bars("AAPL", DAY1), "IBM": bars("IBM", DAY1)}, DAY1)
    day2 = job({"AAPL": bars("AAPL", DAY2), "IBM": with_bar(bars("IBM", DAY2), DAY2, Close=0.0)}, DAY2)
    assert day2["outcomes"] == 1  # AAPL's close
    assert job.store.awaiting_outcomes(["IBM"]) == [("IBM", DAY2)]  # waits: a later fetch may hold a real close
    assert any(r == "bad_price" for r, _ in skipped(job.store, "IBM"))


def test_a_window_outside_the_models_published_range_skips_only_that_ticker(job, local_api):
    """Finding 2: a spurious High of 50x the close; the bound is GET /model's, not a copy."""
    bad = with_bar(bars("IBM", DAY1), "2013-02-25", High=50 * float(bars("IBM", DAY1)["Close"].iloc[-2]))
    out = job({"AAPL": bars("AAPL", DAY1), "IBM": bad}, DAY1)
    assert out["forecasts"] == 1
    [(code, detail)] = skipped(job.store, "IBM")
    limit = ForecastClient(local_api.url, local_api.key).model()["input_limit"]["standardized_abs_max"]
    assert code == "out_of_bounds" and f"±{limit:g}" in detail


def split(df: pd.DataFrame, ex_date: str, ratio: float) -> pd.DataFrame:
    """yfinance after a ratio:1 split effective `ex_date`: every earlier bar divided by it (volume multiplied)."""
    df = df.copy()
    before = df.index.normalize().tz_localize(None) < pd.Timestamp(ex_date)
    df.loc[:, ["Open", "High", "Low", "Close"]] = df[["Open", "High", "Low", "Close"]].astype(float)
    df.loc[before, ["Open", "High", "Low", "Close"]] /= ratio
    df.loc[~before, ["Open", "High", "Low", "Close"]] /= ratio  # the new session trades in the new units too
    df.loc[before | ~before, "Volume"] *= ratio
    return df


def test_a_split_between_forecast_and_close_is_scored_in_the_forecasts_units(job):
    """Finding 3: a 10:1 split the day of the target: the close arrives in new units, the forecast has the old."""
    job({"AAPL": bars("AAPL", DAY1), "IBM": bars("IBM", DAY1)}, DAY1)
    out = job({"AAPL": split(bars("AAPL", DAY2), DAY2, 10.0), "IBM": bars("IBM", DAY2)}, DAY2)
    assert out["outcomes"] == 2
    close, adj = job.store.conn.execute("SELECT close, adjustment FROM outcomes WHERE ticker = 'AAPL'").fetchone()
    want = float(load_prices("AAPL", source="snapshot").loc[DAY2, "Close"])
    assert adj == 10.0 and close == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(
    "hostile, code",
    [
        (lambda df: with_bar(df, DAY2, Close=float(df["Close"].iloc[-2]) / 10), "unit_jump"),  # unadjusted 10x
        (lambda df: bars("IBM", DAY2), "unit_jump"),  # another symbol's data under AAPL's name
    ],
    ids=["unadjusted-jump", "other-symbol"],
)
def test_a_close_in_units_that_cannot_be_explained_is_quarantined(job, hostile, code):
    job({"AAPL": bars("AAPL", DAY1), "IBM": bars("IBM", DAY1)}, DAY1)
    out = job({"AAPL": hostile(bars("AAPL", DAY2)), "IBM": bars("IBM", DAY2)}, DAY2)
    assert out["outcomes"] == 1  # IBM's
    assert job.store.awaiting_outcomes(["AAPL"]) == [("AAPL", DAY2)]
    assert code in [r for r, _ in skipped(job.store, "AAPL")]


@pytest.mark.parametrize("column", ["Open", "Close"])
def test_a_zero_on_the_as_of_day_is_not_recorded_as_of_that_day(job, column):
    """Finding 4: the feature builder drops the row; the forecast would be a two-day one labelled one-day."""
    out = job({"AAPL": bars("AAPL", DAY1), "IBM": with_bar(bars("IBM", DAY1), DAY1, **{column: 0.0})}, DAY1)
    assert out["forecasts"] == 1
    assert job.store.conn.execute("SELECT COUNT(*) FROM forecasts WHERE ticker = 'IBM'").fetchone() == (0,)
    assert skipped(job.store, "IBM")[0][0] == "bad_price"


def test_symbols_that_differ_only_in_punctuation_keep_their_own_market_files(tmp_path):
    """Finding 5: CL=F and CL.F, BRK-B and BRK.B were one file; now models/data's hex-escape rule names them."""
    cache = live.LastGood(tmp_path)
    names = ["BRK-B", "BRK.B", "CL=F", "CL.F", "CL-F"]
    assert len({cache.path(t) for t in names}) == len(names)
    cache.save("BRK-B", load_prices("AAPL", source="snapshot").iloc[-5:])
    assert cache.load("BRK.B") is None


class OffContract(ForecastClient):
    """The client as issue 31 makes it: it raises on a malformed answer; here the API answers NaN for IBM."""

    def predict_batch(self, instances, model_version=None):
        if any(i["ticker"] == "IBM" for i in instances):
            raise EndpointError("contract", "POST /predict answered prediction nan, not a finite number")
        return super().predict_batch(instances, model_version)


def test_an_off_contract_answer_skips_only_its_ticker(job, local_api):
    client = OffContract(local_api.url, local_api.key, timeout=60)
    out = job({"AAPL": bars("AAPL", DAY1), "IBM": bars("IBM", DAY1), "MSFT": bars("MSFT", DAY1)}, DAY1, client=client)
    assert out["forecasts"] == 2
    assert [r for r, _ in skipped(job.store, "IBM")] == ["api_contract"]
    assert [s["ticker"] for s in out["skips"]] == ["IBM"]


class Inverted(ForecastClient):
    """An answer the client lets through today (issue 31 tightens it): IBM's interval upside down."""

    def predict_batch(self, instances, model_version=None):
        got = super().predict_batch(instances, model_version)
        for a in got:
            if a["ticker"] == "IBM":
                a["interval"] = {**a["interval"], "low": a["interval"]["high"], "high": a["interval"]["low"]}
        return got


def test_an_answer_the_store_would_refuse_skips_only_its_ticker(job, local_api):
    client = Inverted(local_api.url, local_api.key, timeout=60)
    out = job({"AAPL": bars("AAPL", DAY1), "IBM": bars("IBM", DAY1)}, DAY1, client=client)
    assert out["forecasts"] == 1
    [(code, detail)] = skipped(job.store, "IBM")
    assert code == "refused_row" and "low_not_above_high" in detail


def garbled(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy().astype(object)
    df.iloc[-3, df.columns.get_loc("Close")] = "n/a"
    return df


@pytest.mark.parametrize(
    "hostile, code",
    [
        (garbled, "no_data"),  # a string among the prices: normalize_yf's astype(float) raised, and stopped the run
        (lambda df: with_bar(df, DAY1, Close=np.nan), "no_bar"),  # the session's bar missing its close
        (lambda df: with_bar(df, DAY1, Close=np.inf), "bad_price"),
        (lambda df: df.iloc[-80:], "short_history"),
        (lambda df: df.iloc[::-1], None),  # newest first: sorted, forecast as usual
    ],
    ids=["string", "nan-close", "inf-close", "short", "reversed"],
)
def test_more_hostile_frames_skip_only_their_ticker(job, hostile, code):
    out = job({"AAPL": bars("AAPL", DAY1), "IBM": hostile(bars("IBM", DAY1))}, DAY1)
    assert "recorded for 2013-02-27" in out["tickers"]["AAPL"]["forecast"]
    assert [r for r, _ in skipped(job.store, "IBM")] == ([code] if code else [])
    assert out["forecasts"] == (1 if code else 2)


def test_a_second_run_of_the_day_keeps_each_skip_once(job):
    bad = with_bar(bars("IBM", DAY1), "2013-02-20", Close=0.0)
    job({"AAPL": bars("AAPL", DAY1), "IBM": bad}, DAY1)
    job({"AAPL": bars("AAPL", DAY1), "IBM": bad}, DAY1)
    assert job.store.counts()["skips"] == 1


def test_the_split_factor_rule():
    assert guards.split_factor(1.0) == 1.0 and guards.split_factor(0.996) == 1.0  # a dividend adjustment
    assert guards.split_factor(10.02) == 10.0 and guards.split_factor(1.5) == 1.5 and guards.split_factor(0.1) == 0.1
    assert guards.split_factor(1.37) is None and guards.split_factor(float("nan")) is None
    assert guards.split_factor(-2.0) is None


def test_skips_are_readable_with_sqlite3(job):
    job({"AAPL": bars("AAPL", DAY1), "IBM": with_bar(bars("IBM", DAY1), "2013-02-20", Close=0.0)}, DAY1)
    with sqlite3.connect(job.store.path) as conn:
        assert conn.execute("SELECT ticker, reason_code FROM skips").fetchall() == [("IBM", "bad_price")]
    assert np.isfinite(job.store.conn.execute("SELECT prediction FROM forecasts").fetchone()[0])
