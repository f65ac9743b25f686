"""The daily job with yfinance faked at its boundary (yfinance.Ticker): rate limiting, empty and all-NaN frames and
unknown symbols are never cached, the last good data is kept and marked stale, closes are scored when their session
has ended, and a second run adds nothing."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from yfinance.exceptions import YFRateLimitError, YFTickerMissingError

from ledger import live
from ledger.store import SqliteStore
from models.client import ForecastClient
from models.data import load_prices

NY = live.NEW_YORK


class FakeTicker:
    """yfinance.Ticker as the job calls it: .history(...) answers from `FakeTicker.answers[symbol]`."""

    answers: dict = {}
    calls: list = []

    def __init__(self, symbol: str):
        self.symbol = symbol

    def history(self, **kwargs):
        FakeTicker.calls.append(self.symbol)
        got = FakeTicker.answers[self.symbol]
        if isinstance(got, Exception):
            raise got
        return got.copy()


@pytest.fixture
def yf(monkeypatch):
    import yfinance

    FakeTicker.answers, FakeTicker.calls = {}, []
    monkeypatch.setattr(yfinance, "Ticker", FakeTicker)
    return FakeTicker


def bars(ticker: str, until: str) -> pd.DataFrame:
    """The snapshot's bars up to `until`, shaped as yfinance answers (tz-aware index, extra columns)."""
    df = load_prices(ticker, source="snapshot")
    df = df[df.index <= pd.Timestamp(until)].iloc[-400:].copy()
    df.index = df.index.tz_localize("America/New_York")
    df["Dividends"], df["Stock Splits"] = 0.0, 0.0
    return df


def all_nan(ticker: str) -> pd.DataFrame:
    df = bars(ticker, "2013-02-27")
    df[["Open", "High", "Low", "Close"]] = np.nan
    return df


@pytest.mark.parametrize(
    "answer, says",
    [
        (YFRateLimitError(), "rate limiting"),
        (YFTickerMissingError("ZZZQ", "no data"), "no such symbol"),
        (pd.DataFrame(), "no rows"),
        ("all-nan", "only empty rows"),
        (OSError("Could not resolve host"), "OSError"),
    ],
)
def test_a_failure_is_never_cached_and_the_last_good_data_is_kept_stale(yf, tmp_path, answer, says):
    cache = live.LastGood(tmp_path)
    yf.answers["AAPL"] = all_nan("AAPL") if isinstance(answer, str) else answer
    m = live.fetch("AAPL", cache)
    assert m.ohlcv is None and m.stale and says in m.note and "no earlier data" in m.note
    assert not cache.path("AAPL").exists(), "a failure must not be cached"
    yf.answers["AAPL"] = bars("AAPL", "2013-02-26")
    good = live.fetch("AAPL", cache)
    assert not good.stale and good.ohlcv.index[-1] == pd.Timestamp("2013-02-26")
    kept = cache.path("AAPL").read_bytes()
    yf.answers["AAPL"] = all_nan("AAPL") if isinstance(answer, str) else answer
    m = live.fetch("AAPL", cache)
    assert m.stale and m.ohlcv.index[-1] == pd.Timestamp("2013-02-26") and "stale" in m.note
    assert cache.path("AAPL").read_bytes() == kept, "the last good data is kept as it was"


@pytest.mark.parametrize(
    "now_ny, closed",
    [
        ("2013-02-27 17:00", "2013-02-27"),  # after the close
        ("2013-02-27 15:59", "2013-02-26"),  # still trading
        ("2013-03-02 12:00", "2013-03-01"),  # Saturday
        ("2012-10-30 18:00", "2012-10-26"),  # Hurricane Sandy: no session on the 29th or 30th
    ],
)
def test_the_last_closed_session(now_ny, closed):
    now = pd.Timestamp(now_ny, tz=NY).to_pydatetime()
    assert live.last_closed_session(now) == dt.date.fromisoformat(closed)


def test_a_watchlist_is_checked():
    assert live.parse_watchlist("aapl, msft,AAPL") == ["AAPL", "MSFT"]
    with pytest.raises(live.WatchlistError, match="--watchlist has no usable symbols: A;B"):
        live.parse_watchlist("A;B")
    with pytest.raises(SystemExit, match="--watchlist has no usable symbols: A;B"):
        live.main(["--watchlist", "A;B"])


def at(day: str) -> dt.datetime:
    return pd.Timestamp(f"{day} 17:30", tz=NY).to_pydatetime()


def test_the_daily_job_forecasts_scores_keeps_stale_data_and_is_idempotent(local_api, yf, tmp_path):
    client = ForecastClient(local_api.url, local_api.key, timeout=60)
    cache = live.LastGood(tmp_path / "market")
    with SqliteStore(tmp_path / "ledger.sqlite") as store:
        yf.answers = {
            "AAPL": bars("AAPL", "2013-02-26"),
            "IBM": bars("IBM", "2013-02-26"),
            "ZZZQ": YFTickerMissingError("ZZZQ", "x"),
        }
        day1 = live.run(client, store, ["AAPL", "IBM", "ZZZQ"], at("2013-02-26"), cache)
        assert day1["forecasts"] == 2 and day1["outcomes"] == 0
        assert "recorded for 2013-02-27" in day1["tickers"]["AAPL"]["forecast"]
        assert day1["tickers"]["ZZZQ"]["forecast"] == "not made: no data" and "no such symbol" in day1["tickers"]["ZZZQ"]["data"]
        snapshot = store.conn.execute("SELECT * FROM forecasts ORDER BY ticker").fetchall()
        again = live.run(client, store, ["AAPL", "IBM", "ZZZQ"], at("2013-02-26"), cache)
        assert again["forecasts"] == 0 and again["outcomes"] == 0
        assert store.conn.execute("SELECT * FROM forecasts ORDER BY ticker").fetchall() == snapshot
        # the next day IBM is rate limited: AAPL's close is scored and it forecasts on; IBM keeps its stale bars
        yf.answers = {"AAPL": bars("AAPL", "2013-02-27"), "IBM": YFRateLimitError()}
        day2 = live.run(client, store, ["AAPL", "IBM"], at("2013-02-27"), cache)
        assert day2["outcomes"] == 1 and day2["forecasts"] == 1
        assert day2["tickers"]["IBM"]["stale"] and "not made: data ends 2013-02-26" in day2["tickers"]["IBM"]["forecast"]
        close = store.conn.execute("SELECT close, source FROM outcomes WHERE ticker = 'AAPL'").fetchone()
        assert close == (pytest.approx(float(load_prices("AAPL", source="snapshot").loc["2013-02-27", "Close"])), "yfinance")
        assert store.awaiting_outcomes() == [("IBM", "2013-02-27"), ("AAPL", "2013-02-28")]
        # IBM recovers: its close arrives, and a forecast issued after the fact is never made for a past session
        yf.answers = {"AAPL": bars("AAPL", "2013-02-27"), "IBM": bars("IBM", "2013-02-27")}
        day2b = live.run(client, store, ["AAPL", "IBM"], at("2013-02-27"), cache)
        assert day2b["outcomes"] == 1 and day2b["forecasts"] == 1  # IBM's for 2013-02-28, AAPL's already there
        assert store.counts() == {"forecasts": 4, "outcomes": 2, "skips": 2}  # ZZZQ: no data; IBM: stale


@pytest.mark.parametrize(
    "kept",
    [
        "",  # empty (a disk that filled up mid-write before os.replace existed, a hand edit)
        "Open,High,Low,Close,Volume\n1,2,0.5,1.5,100\n",  # no Date column
        "Date,Open,High,Low,Close,Volume\nyesterday,1,2,0.5,1.5,100\n",  # a Date that is not a date
        "Date,Open\n2013-02-25,1\n",  # no Close
    ],
    ids=["empty", "no-date-column", "not-a-date", "no-close"],
)
def test_an_unreadable_last_good_file_skips_that_ticker_with_a_reason_and_the_others_run(local_api, tmp_path, kept):
    """yfinance fails for AAPL and its last good file cannot be read: AAPL is skipped, saying which file and why, and
    IBM and MSFT are forecast as on any other day (the job is driven at its boundary, ledger.live.yf_history)."""
    from models.data import LiveDataError, normalize_yf

    def history(ticker: str) -> pd.DataFrame:
        if ticker == "AAPL":
            raise LiveDataError("AAPL: yfinance failed: OSError: Could not resolve host")
        return normalize_yf(bars(ticker, "2013-02-26"), ticker)

    cache = live.LastGood(tmp_path / "market")
    cache.folder.mkdir()
    cache.path("AAPL").write_text(kept)
    client = ForecastClient(local_api.url, local_api.key, timeout=60)
    with SqliteStore(tmp_path / "ledger.sqlite") as store:
        out = live.run(client, store, ["AAPL", "IBM", "MSFT"], at("2013-02-26"), cache, history=history)
        aapl = out["tickers"]["AAPL"]
        assert aapl["forecast"] == "not made: no data"
        assert "resolve host" in aapl["data"] and f"{cache.path('AAPL')} is unreadable" in aapl["data"]
        assert out["forecasts"] == 2
        assert [t for (t,) in store.conn.execute("SELECT ticker FROM forecasts ORDER BY ticker")] == ["IBM", "MSFT"]


def test_a_bar_of_a_session_still_trading_is_not_data_yet(local_api, yf, tmp_path):
    """At 15:00 New York the day's bar is partial: the forecast is made from yesterday's close, and today's close is
    not recorded as an outcome until the session has ended."""
    client = ForecastClient(local_api.url, local_api.key, timeout=60)
    with SqliteStore(tmp_path / "ledger.sqlite") as store:
        yf.answers = {"AAPL": bars("AAPL", "2013-02-26")}
        live.run(client, store, ["AAPL"], at("2013-02-26"), live.LastGood(tmp_path / "m"))
        yf.answers = {"AAPL": bars("AAPL", "2013-02-27")}
        midday = pd.Timestamp("2013-02-27 15:00", tz=NY).to_pydatetime()
        out = live.run(client, store, ["AAPL"], midday, live.LastGood(tmp_path / "m"))
        assert out["outcomes"] == 0 and out["forecasts"] == 0
        assert out["tickers"]["AAPL"]["forecast"] == "already recorded for 2013-02-27"  # made from the 26th's close
        assert store.awaiting_outcomes() == [("AAPL", "2013-02-27")]


def test_the_clients_batch_limit_is_the_apis(root):
    """The dashboard, the replay and the live job split calls at models.client.MAX_BATCH: openapi.yaml's
    instances.maxItems, which the function's own MAX_BATCH is held to (tests/function/test_routes.py)."""
    import yaml

    from dashboard import costs
    from models.client import MAX_BATCH

    spec = yaml.safe_load((root / "lambda" / "openapi.yaml").read_text())
    found = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("instances"), dict) and "maxItems" in node["instances"]:
                found.append(node["instances"]["maxItems"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(spec)
    assert found == [MAX_BATCH], found
    bench = {"single_ms": 0.3, "per_window_ms": 0.1}
    assert costs.handler_ms(MAX_BATCH, bench) > costs.handler_ms(1, bench)  # the cost model prices a full batch
    with pytest.raises(ValueError, match=f"1..{MAX_BATCH}"):
        costs.handler_ms(MAX_BATCH + 1, bench)
