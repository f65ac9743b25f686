"""The daily job: today's forecasts for a watchlist, and the closes of every forecast whose session has ended.

    python -m ledger.live [--watchlist AAPL,MSFT] [--url URL --key KEY] [--db PATH] [--json]

Market data comes from yfinance. Its failures (rate limiting, empty or all-NaN frames, unknown symbols, the network)
are never cached: the last good frame of each ticker is kept (LOCAL_DIR/ledger_market/) and used, marked stale, to
add closes; a stale frame never makes a forecast (it would be issued after the fact). Run twice, it adds nothing.
Where a watchlist outgrows one call it fans out: batches of 64, --concurrency calls at once.
One ticker's bad data or answer never stops the others: it is skipped for the day with its reason (ledger.guards;
the `skips` table, the report's "skips", --json), and the closes are recorded in the units the forecasts were made in.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ledger import baselines, guards, sessions
from ledger.replay import contract_problem, forecast_row, input_hash
from ledger.store import DEFAULT_DB, LOCAL_DIR, LedgerError, Outcome, Skip, SqliteStore, refused
from models.client import MAX_BATCH, EndpointError, ForecastClient
from models.data import COLUMNS, TICKER_RE, LiveDataError, cache_name, normalize_yf
from models.features import window

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
        return self.folder / f"{cache_name(ticker)}.csv"  # models.data's one naming rule: BRK-B and BRK.B differ

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
        if not isinstance(df, pd.DataFrame) or df.empty:
            raise LiveDataError(f"{ticker}: the market data came back empty")
    except Exception as exc:  # noqa: BLE001 - LiveDataError, or a frame yfinance garbled: this ticker only, never the run
        if not isinstance(exc, LiveDataError):
            exc = LiveDataError(f"{ticker}: unusable market data: {type(exc).__name__}: {exc}")
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
    """One daily run: fetch, add closes that arrived, forecast the next session from fresh data; report per ticker.
    A ticker whose data or answer fails a check is skipped for the day with its reason (`skips`, and the report's
    "skips"); the others go on. Only what no ticker can work around (the model card, the store) stops the run."""
    started = time.monotonic()

    def clock() -> str:  # `now` moved on by the time this run has taken: when the API answered, on the run's clock
        return (now + dt.timedelta(seconds=time.monotonic() - started)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    card = client.model()
    problem = contract_problem(card) or limit_problem(card)
    if problem:
        raise LedgerError(f"ledger: {problem}")
    version, limit = card["version"], float(card["input_limit"]["standardized_abs_max"])
    closed = last_closed_session(now)
    report: dict[str, dict] = {}
    skips: list[Skip] = []

    def skip(t: str, code: str, detail: str, day=closed) -> None:
        skips.append(Skip(t, str(day), version, code, detail, clock()))
        report.setdefault(t, {}).setdefault("skips", []).append(f"{code}: {detail}")

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:  # downloads wait on the network, not the CPU
        markets = dict(zip(watchlist, pool.map(lambda t: fetch(t, cache, history), watchlist), strict=True))
    for t, m in markets.items():
        report[t] = {"data": m.note, "stale": m.stale, "forecast": None, "skips": []}
    outcomes = closes(store, markets, closed, clock(), skip)
    store.add_outcomes(outcomes)
    done = store.forecast_keys(version, watchlist)
    refs = store.latest_refs(watchlist)
    requests = []
    for t, m in markets.items():
        if m.ohlcv is None:
            report[t]["forecast"] = "not made: no data"
            skip(t, "no_data", m.note)
            continue
        ohlcv = m.ohlcv[m.ohlcv.index <= pd.Timestamp(closed)]  # a bar of a session still trading is not data yet
        as_of = ohlcv.index[-1].date() if len(ohlcv) else None
        if m.stale or as_of != closed:
            report[t]["forecast"] = f"not made: data ends {as_of}, the last closed session is {closed}"
            skip(t, "stale_data" if m.stale else "no_bar", f"{report[t]['forecast'][10:]} ({m.note})")
            continue
        target = sessions.next_session(as_of)
        if (t, str(target)) in done:
            report[t]["forecast"] = f"already recorded for {target}"
            continue
        try:
            req = guards.same_symbol(ohlcv, refs.get(t)) or request_for(t, ohlcv, card, limit, target)
        except Exception as exc:  # noqa: BLE001 - one ticker's odd data never stops the others: it is named instead
            req = ("bad_data", f"{type(exc).__name__}: {exc}")
        if isinstance(req, tuple):
            skip(t, *req)
            report[t]["forecast"] = f"not made: {req[0]}"
            continue
        requests.append(req)
    try:
        rows = forecasts(client, version, requests, concurrency, clock, skip)
    except FailedRun as failed:  # what was answered is kept, then the run fails (and alarms on AWS)
        store.record(failed.rows)
        store.add_skips(skips)
        raise failed.error from None
    store.record(rows)
    store.add_skips(skips)
    for r in rows:
        report[r.ticker]["forecast"] = f"recorded for {r.target_date}: {r.prediction:.4f} [{r.low:.4f}, {r.high:.4f}]"
    for t in report:
        if report[t]["forecast"] is None:
            report[t]["forecast"] = "not made: " + "; ".join(report[t]["skips"])
    return {"model_version": version, "last_closed_session": str(closed), "forecasts": len(rows),
            "outcomes": len(outcomes), "skipped": len(skips), "tickers": report,
            "skips": [asdict(s) for s in skips]}  # fmt: skip


def limit_problem(card: dict) -> str | None:
    got = (card.get("input_limit") or {}).get("standardized_abs_max")
    if isinstance(got, int | float) and not isinstance(got, bool) and math.isfinite(got) and got > 0:
        return None
    return "GET /model publishes no input_limit.standardized_abs_max (the range it accepts): is the API current?"


def closes(store, markets: dict[str, Market], closed: dt.date, fetched: str, skip) -> list[Outcome]:
    """The close of each recorded forecast's target whose session has closed, in the units the forecasts were made
    in (ledger.guards.outcome_units); one that cannot be trusted is quarantined as a skip, the others kept."""
    out = []
    for (t, d), refs in store.awaiting_refs(list(markets)).items():
        m = markets.get(t)
        if m is None or m.ohlcv is None or dt.date.fromisoformat(d) > closed or pd.Timestamp(d) not in m.ohlcv.index:
            continue
        adjustment, why = guards.outcome_units(m.ohlcv, d, refs)
        if why:
            skip(t, why[0], f"close of {d} not scored: {why[1]}")
            continue
        row = Outcome(t, d, float(m.ohlcv.loc[pd.Timestamp(d), "Close"]) * adjustment, SOURCE, fetched, adjustment)
        if err := refused("outcomes", row):
            skip(t, "refused_row", str(err))
            continue
        out.append(row)
    return out


def request_for(t: str, ohlcv: pd.DataFrame, card: dict, limit: float, target: dt.date) -> dict | tuple[str, str]:
    """The request for one ticker's window, or (reason_code, detail) why none is sent."""
    if why := guards.forecast_input(ohlcv, ohlcv.index[-1]):
        return why
    features = window(ohlcv, card["scaler"])
    if why := guards.out_of_bounds(features, limit):
        return why
    base = baselines.intervals(ohlcv, card["test_metrics"]["calibration_q"], fit_until=ohlcv.index[-1])
    row = base.iloc[-1].copy()
    row["last_close"] = float(ohlcv["Close"].iloc[-1])
    bad = [k for k in ("vol20", "rolling_low", "rolling_high", "garch_low", "garch_high") if not math.isfinite(row[k])]
    if bad:
        return "bad_data", f"the baselines came out non-finite ({', '.join(bad)})"
    return {"ticker": t, "as_of": ohlcv.index[-1], "target": target, "features": features,
            "hash": input_hash(features), "base": row}  # fmt: skip


def forecasts(client: ForecastClient, version: str, requests: list[dict], concurrency: int, clock, skip) -> list:
    """POST /predict 64 a call. A batch the API refuses (400) or answers off-contract is asked again one ticker at a
    time, so only the ticker at fault is skipped ("api_refused" / "api_contract"); the API down, the key or the
    version wrong fail the run, after the batches that were answered are recorded."""
    batches = [requests[i : i + MAX_BATCH] for i in range(0, len(requests), MAX_BATCH)]

    def ask(batch: list[dict]) -> list[dict]:
        return client.predict_batch(
            [{"ticker": r["ticker"], "features": np.asarray(r["features"]).tolist()} for r in batch], model_version=version
        )

    def call(batch: list[dict]) -> list[tuple[dict, dict | EndpointError]]:
        try:
            return list(zip(batch, ask(batch), strict=True))
        except EndpointError as exc:
            if exc.kind not in ("client", "contract") or exc.status == 429:
                return [(r, exc) for r in batch]
        out = []
        for r in batch:
            try:
                out.append((r, ask([r])[0]))
            except EndpointError as exc:
                out.append((r, exc))
        return out

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:  # Lambda's concurrency, one batch a call
        answered = [pair for got in pool.map(call, batches) for pair in got]
    issued, rows, fatal = clock(), [], None
    for r, a in answered:
        if isinstance(a, EndpointError):
            if a.kind == "contract" or (a.kind == "client" and a.status != 429):
                skip(r["ticker"], "api_contract" if a.kind == "contract" else "api_refused", a.message)
            else:
                fatal = fatal or a
            continue
        try:
            row = forecast_row(r["ticker"], r, a, r["base"], SOURCE, issued)
        except (KeyError, TypeError, ValueError) as exc:
            skip(r["ticker"], "api_contract", f"the answer cannot be recorded: {exc}")
            continue
        if err := refused("forecasts", row):
            skip(r["ticker"], "refused_row", str(err))
            continue
        rows.append(row)
    if fatal is not None:
        raise FailedRun(fatal, rows)
    return rows


class FailedRun(Exception):
    """The API failed for reasons no ticker caused; the rows it did answer come along, to be recorded first."""

    def __init__(self, error: EndpointError, rows: list):
        super().__init__(error.message)
        self.error, self.rows = error, rows


class WatchlistError(ValueError):
    """A watchlist with a symbol that is not one: the command line exits with it, the Lambda handler answers it."""


def parse_watchlist(text: str | None) -> list[str]:
    names = [t.strip().upper() for t in (text or ",".join(DEFAULT_WATCHLIST)).split(",") if t.strip()]
    bad = [t for t in names if not TICKER_RE.fullmatch(t)]
    if bad or not names:
        raise WatchlistError(f"ledger: --watchlist has no usable symbols: {', '.join(bad) or 'none given'} (e.g. AAPL,^GSPC)")
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
    try:
        watchlist = parse_watchlist(args.watchlist)
    except WatchlistError as exc:
        raise SystemExit(str(exc)) from None
    from ledger import aci, walk
    from ledger.endpoint import endpoint, state_file

    try:
        with SqliteStore(args.db) as store, endpoint(args.url, args.key, state_file(args.db)) as (url, key, state):
            client = ForecastClient(url, key, timeout=60)
            out = run(client, store, watchlist, dt.datetime.now(dt.UTC), LastGood(), concurrency=args.concurrency)
            if state is not None:  # a local API: what the record now teaches serves tomorrow's forecasts
                card = client.model()
                walk.write_state(state, walk.learned_state(store.conn, card, aci.served_method(card["version"])))
                out["calibration_state"] = str(state)
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
