"""The daily job: today's forecasts for a watchlist, and the closes of every forecast whose session has ended.

    python -m ledger.live [--watchlist AAPL,MSFT] [--url URL --key KEY] [--db PATH] [--json]

Market data comes from yfinance. Its failures (rate limiting, empty or all-NaN frames, unknown symbols, the network)
are never cached: the last good frame of each ticker is kept (LOCAL_DIR/ledger_market/) and used, marked stale, to
add closes; a stale frame never makes a forecast (it would be issued after the fact). Run twice, it adds nothing.
Where a watchlist outgrows one call it fans out: batches of 64, --concurrency calls at once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ledger import baselines, sessions
from ledger.replay import contract_problem, forecast_row, input_hash, now_iso
from ledger.store import DEFAULT_DB, LOCAL_DIR, LedgerError, Outcome, SqliteStore
from models.client import MAX_BATCH, EndpointError, ForecastClient
from models.data import COLUMNS, TICKER_RE, LiveDataError, normalize_yf
from models.features import feature_frame, window

NEW_YORK = ZoneInfo("America/New_York")
CLOSED_AFTER = dt.time(16, 15)  # a session's close is final a quarter of an hour after the 16:00 bell
HISTORY = "2y"  # enough for the 60-day window, its 49-day warm-up and GARCH's fit
SOURCE = "yfinance"
CACHE = LOCAL_DIR / "ledger_market"
DEFAULT_WATCHLIST = ("^GSPC", "^IXIC", "AAPL", "MSFT", "IBM", "GOOG")


def yf_history(ticker: str) -> pd.DataFrame:
    """The one call to yfinance (the boundary tests fake): daily bars, adjusted, or LiveDataError saying why not."""
    import logging

    import yfinance as yf
    from yfinance.exceptions import YFRateLimitError, YFTickerMissingError

    logging.getLogger("yfinance").setLevel(logging.CRITICAL)  # it logs each DNS failure; the report names it once

    try:
        raw = yf.Ticker(ticker).history(period=HISTORY, interval="1d", auto_adjust=True, raise_errors=True)
    except YFRateLimitError:
        raise LiveDataError(f"{ticker}: yfinance is rate limiting us; try again later") from None
    except YFTickerMissingError:
        raise LiveDataError(f"{ticker}: yfinance knows no such symbol (delisted or misspelt?)") from None
    except Exception as exc:  # the network, JSON, yfinance's own KeyErrors...
        raise LiveDataError(f"{ticker}: yfinance failed: {type(exc).__name__}: {exc}") from None
    if raw is None or raw.empty:
        raise LiveDataError(f"{ticker}: yfinance returned no rows (unknown symbol, or no data yet)")
    return normalize_yf(raw, ticker)  # all-NaN rows dropped; none left is a LiveDataError too


@dataclass
class Market:
    """One ticker's bars and whether they are fresh (fetched now) or the last good ones, kept from an earlier run."""

    ticker: str
    ohlcv: pd.DataFrame | None
    stale: bool
    note: str


class LastGood:
    """The last good frame per ticker, written only after a successful fetch (a failure is never cached)."""

    def __init__(self, folder: Path = CACHE):
        self.folder = Path(folder)

    def path(self, ticker: str) -> Path:
        return self.folder / f"{''.join(c if c.isalnum() else '_' for c in ticker)}.csv"

    def save(self, ticker: str, df: pd.DataFrame) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path(ticker).with_suffix(".tmp")
        df.to_csv(tmp)
        os.replace(tmp, self.path(ticker))  # atomic: a reader never sees half a file

    def load(self, ticker: str) -> pd.DataFrame | None:
        """The kept bars, or None when there are none or the file is not daily bars (empty, no Date, no Close...)."""
        try:
            df = pd.read_csv(self.path(ticker), index_col="Date", parse_dates=["Date"])
        except (OSError, ValueError):
            return None
        return df if isinstance(df.index, pd.DatetimeIndex) and set(COLUMNS) <= set(df.columns) else None


def fetch(ticker: str, cache: LastGood, history: Callable[[str], pd.DataFrame] = yf_history) -> Market:
    try:
        df = history(ticker)
    except LiveDataError as exc:
        kept = cache.load(ticker)
        if kept is None or kept.empty:
            lost = "no earlier data kept"
            if cache.path(ticker).exists():  # one bad file skips its ticker, never the run; the next good fetch replaces it
                lost = f"the last good file {cache.path(ticker)} is unreadable (not daily bars with a Date column)"
            return Market(ticker, None, True, f"{exc}; {lost}")
        return Market(ticker, kept, True, f"{exc}; using the last good data, to {kept.index[-1]:%Y-%m-%d} (stale)")
    cache.save(ticker, df)
    return Market(ticker, df, False, f"fresh, to {df.index[-1]:%Y-%m-%d}")


def last_closed_session(now: dt.datetime) -> dt.date:
    """The latest NYSE session whose close is final at `now`."""
    local = now.astimezone(NEW_YORK)
    today = local.date()
    if sessions.is_session(today) and local.time() >= CLOSED_AFTER:
        return today
    return max(sessions.sessions(today - dt.timedelta(days=10), today - dt.timedelta(days=1)))


def run(
    client: ForecastClient,
    store: SqliteStore,
    watchlist: list[str],
    now: dt.datetime,
    cache: LastGood,
    history: Callable[[str], pd.DataFrame] = yf_history,
    concurrency: int = 4,
) -> dict:
    """One daily run: fetch, add closes that arrived, forecast the next session from fresh data; report per ticker."""
    card = client.model()
    problem = contract_problem(card)
    if problem:
        raise SystemExit(f"ledger: {problem}")
    closed = last_closed_session(now)
    report: dict[str, dict] = {}
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:  # downloads wait on the network, not the CPU
        markets = dict(zip(watchlist, pool.map(lambda t: fetch(t, cache, history), watchlist), strict=True))
    # closes: any recorded forecast whose target session has closed and whose close the data now holds
    awaiting = [(t, d) for t, d in store.awaiting_outcomes(watchlist) if t in markets and dt.date.fromisoformat(d) <= closed]
    fetched = now_iso()
    outcomes = []
    for t, d in awaiting:
        m = markets[t]
        if m.ohlcv is not None and pd.Timestamp(d) in m.ohlcv.index:
            outcomes.append(Outcome(t, d, float(m.ohlcv.loc[pd.Timestamp(d), "Close"]), SOURCE, fetched))
    store.add_outcomes(outcomes)
    done = store.forecast_keys(card["version"], watchlist)
    requests = []
    for t, m in markets.items():
        report[t] = {"data": m.note, "stale": m.stale, "forecast": None}
        if m.ohlcv is None:
            report[t]["forecast"] = "not made: no data"
            continue
        ohlcv = m.ohlcv[m.ohlcv.index <= pd.Timestamp(closed)]  # a bar of a session still trading is not data yet
        as_of = ohlcv.index[-1].date() if len(ohlcv) else None
        if m.stale or as_of != closed:
            report[t]["forecast"] = f"not made: data ends {as_of}, the last closed session is {closed}"
            continue
        target = sessions.next_session(as_of)
        if (t, str(target)) in done:
            report[t]["forecast"] = f"already recorded for {target}"
            continue
        try:
            features = window(ohlcv, card["scaler"])
            base = baselines.intervals(ohlcv, card["test_metrics"]["calibration_q"], fit_until=ohlcv.index[-1])
        except ValueError as exc:  # too short a history
            report[t]["forecast"] = f"not made: {exc}"
            continue
        row = base.iloc[-1].copy()
        row["last_close"] = float(feature_frame(ohlcv)["close"].iloc[-1])
        requests.append({"ticker": t, "as_of": ohlcv.index[-1], "target": target, "features": features,
                         "hash": input_hash(features), "base": row})  # fmt: skip
    batches = [requests[i : i + MAX_BATCH] for i in range(0, len(requests), MAX_BATCH)]

    def call(batch: list[dict]) -> list[dict]:
        return client.predict_batch(
            [{"ticker": r["ticker"], "features": np.asarray(r["features"]).tolist()} for r in batch],
            model_version=card["version"],
        )

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:  # Lambda's concurrency, one batch a call
        answers = list(pool.map(call, batches))
    issued = now_iso()
    rows = [
        forecast_row(r["ticker"], r, a, r["base"], SOURCE, issued)
        for batch, got in zip(batches, answers, strict=True)
        for r, a in zip(batch, got, strict=True)
    ]
    store.record(rows)
    for r in rows:
        report[r.ticker]["forecast"] = f"recorded for {r.target_date}: {r.prediction:.4f} [{r.low:.4f}, {r.high:.4f}]"
    return {"model_version": card["version"], "last_closed_session": str(closed), "forecasts": len(rows),
            "outcomes": len(outcomes), "tickers": report}  # fmt: skip


def parse_watchlist(text: str | None) -> list[str]:
    names = [t.strip().upper() for t in (text or ",".join(DEFAULT_WATCHLIST)).split(",") if t.strip()]
    bad = [t for t in names if not TICKER_RE.fullmatch(t)]
    if bad or not names:
        raise SystemExit(f"ledger: --watchlist has no usable symbols: {', '.join(bad) or 'none given'} (e.g. AAPL,^GSPC)")
    return list(dict.fromkeys(names))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ledger.live", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--watchlist", help=f"comma-separated symbols (default {','.join(DEFAULT_WATCHLIST)})")
    p.add_argument("--url", default=os.environ.get("FORECAST_API_URL"), help="the API's stage URL (FORECAST_API_URL)")
    p.add_argument("--key", default=os.environ.get("FORECAST_API_KEY", ""), help="its API key (FORECAST_API_KEY)")
    p.add_argument("--db", type=Path, default=DEFAULT_DB)
    p.add_argument("--concurrency", type=int, default=4, help="batch calls at once (default 4)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    watchlist = parse_watchlist(args.watchlist)
    from ledger.replay import endpoint

    try:
        with SqliteStore(args.db) as store, endpoint(args.url, args.key) as (url, key):
            out = run(
                ForecastClient(url, key, timeout=60),
                store,
                watchlist,
                dt.datetime.now(dt.UTC),
                LastGood(),
                concurrency=args.concurrency,
            )
    except EndpointError as exc:
        raise SystemExit(f"ledger: {exc.message}") from None
    except LedgerError as exc:
        raise SystemExit(str(exc)) from None
    for t, r in out["tickers"].items():
        print(f"{t:>8}  data: {r['data']}; forecast: {r['forecast']}")
    print(f"ledger: {out['forecasts']} forecasts, {out['outcomes']} closes recorded ({out['model_version']})")
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
