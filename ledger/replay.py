"""`make ledger`: replay the bundled snapshot's test period (or any daily history) through the API and score the record.

    python -m ledger.replay [--url URL --key KEY] [--db PATH] [--tickers AAPL,^GSPC] [--json]
    python -m ledger.replay --prices FILE [--db PATH] [--json]          # your own daily history (CSV or .csv.gz)
    python -m ledger.replay --method aci ...                           # serve this calibrator, whatever the verdict

Day by day across tickers (ledger/walk.py): before each day's forecasts, every ticker's calibrator learns the closes up
to that day and the calibration state the API reads is written; then the windows of the 60 days ending that day (data
up to that day only) go to POST /predict, up to 64 a call; each answer is recorded once for its target day (the next
NYSE session, or a file's next row), the realised closes are added, and the scorecard, the alarms and the served
interval against the model's own are printed. With --json the last line is one JSON object. A second run adds
nothing: keys already recorded for the served model version are not asked for again. Without --url it uses the
local API that `make run` started (.local/local_api.json) when it reads this ledger's state, else starts one of its
own and stops it; with --url the endpoint's state is not ours to write, and nothing is learned.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ledger import aci, baselines, calibration, prices, read, sessions, walk
from ledger.endpoint import endpoint, state_file
from ledger.report import clean, format_alarms, format_calibration, format_scorecard
from ledger.store import DEFAULT_DB, Forecast, LedgerError, Outcome, SqliteStore
from models import dataset
from models.client import EndpointError, ForecastClient
from models.data import load_prices, snapshot_tickers
from models.features import FEATURES, WINDOW, feature_frame, standardize

SOURCE = "snapshot"
FILE_SOURCE = "file"  # a user's --prices file


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def input_hash(features: np.ndarray) -> str:
    """sha256 of the numbers sent, as little-endian float64: the same window always hashes the same."""
    return hashlib.sha256(np.ascontiguousarray(features, dtype="<f8").tobytes()).hexdigest()


def contract_problem(card: dict) -> str | None:
    """Why this ledger cannot build the endpoint model's inputs, or None."""
    if card.get("window") != WINDOW or list(card.get("features", [])) != list(FEATURES):
        return (
            f"the endpoint's model expects window {card.get('window')} and features {card.get('features')}; "
            f"this ledger builds {WINDOW} x {list(FEATURES)}"
        )
    q = card.get("test_metrics", {}).get("calibration_q", {})
    if not {"rolling20", "garch"} <= set(q):
        return "GET /model publishes no calibration_q for the rolling20 and garch baselines: re-run `make evaluate`"
    return None


def day_requests(ohlcv: pd.DataFrame, card: dict, as_of_days) -> list[dict]:
    """One request per as-of day: the standardized window ending that day. Each feature of day t uses data up to
    day t only (tests/test_features.py), so cutting one frame equals rebuilding it from data cut at t
    (tests/test_ledger.py checks it on sample days)."""
    frame = feature_frame(ohlcv)
    values = standardize(frame.to_numpy(dtype=np.float64), card["scaler"])
    pos = frame.index.get_indexer(pd.DatetimeIndex(as_of_days))
    out = []
    for day, i in zip(as_of_days, pos, strict=True):
        if i < WINDOW - 1:
            continue  # too early for a complete window
        out.append({"as_of": pd.Timestamp(day), "features": values[i - WINDOW + 1 : i + 1].reshape(-1)})
    return out


def forecast_row(ticker: str, req: dict, answer: dict, base: pd.Series, source: str, issued_at: str) -> Forecast:
    """One answer as a row. With interval.calibration method "none" (or none at all) the served interval is the model's
    own; otherwise the model's own is the served one with its half-width in log space divided by the factor."""
    iv = answer["interval"]
    cal = iv.get("calibration")
    if cal is None or cal.get("method") == "none":
        cal, plain = None, {"low": iv["low"], "high": iv["high"]}
    else:
        pred, f = float(answer["prediction"]), float(cal["factor"])
        plain = {k: pred * math.exp(math.log(float(iv[k]) / pred) / f) for k in ("low", "high")}
    return Forecast(
        ticker=ticker,
        target_date=str(req["target"]),
        model_version=str(answer["model_version"]),
        issued_at=issued_at,
        as_of=f"{req['as_of']:%Y-%m-%d}",
        prediction=float(answer["prediction"]),
        low=float(iv["low"]),
        high=float(iv["high"]),
        level=float(iv.get("level", 0.8)),
        last_close=float(base["last_close"]),  # the data's own close: the API echoes a reconstruction of it
        volatility=float(answer["volatility"]) if answer.get("volatility") is not None else None,
        confidence=float(answer["confidence"]),
        source=source,
        input_hash=req["hash"],
        vol20=float(base["vol20"]),
        rolling_low=float(base["rolling_low"]),
        rolling_high=float(base["rolling_high"]),
        garch_low=float(base["garch_low"]),
        garch_high=float(base["garch_high"]),
        plain_low=float(plain["low"]),
        plain_high=float(plain["high"]),
        calibration=None if cal is None else json.dumps(cal, sort_keys=True),
    )


def test_period(card: dict, ticker: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    span = card.get("test_metrics", {}).get("spans", {}).get(ticker)
    return (pd.Timestamp(span["test_from"]), pd.Timestamp(span["test_to"])) if span else None


def garch_fit_until(ticker: str, ohlcv: pd.DataFrame) -> pd.Timestamp:
    """The last training day, as models.evaluate cuts it (a held-out series: its first 70%): GARCH gets the same
    parameters there and here, so the two reports judge the same baseline."""
    d = dataset.build(ticker, ohlcv=ohlcv)
    train, _, _ = dataset.split_slices(len(d))
    return d.dates[train][-1]


def snapshot_work(card: dict, ticker: str) -> tuple[pd.DataFrame, pd.DatetimeIndex, dict, pd.Timestamp] | None:
    """A bundled ticker: its prices, its test period's as-of days, their target days (the next NYSE session) and the
    last GARCH training day."""
    span = test_period(card, ticker)
    if span is None:
        print(f"ledger: GET /model publishes no test period for {ticker}; skipped", file=sys.stderr)
        return None
    ohlcv = load_prices(ticker, source="snapshot")
    days = ohlcv.index[(ohlcv.index >= span[0]) & (ohlcv.index <= span[1])]
    targets = {d: str(sessions.next_session(d)) for d in days}
    return ohlcv, days, targets, garch_fit_until(ticker, ohlcv)


def file_work(frames: dict[str, pd.DataFrame]):
    """A user's file: every row with a complete window and a next row; its target is that next row (its own calendar)."""

    def work(card: dict, ticker: str):
        ohlcv = frames[ticker]
        days = feature_frame(ohlcv).index[:-1]
        nxt = dict(zip(ohlcv.index[:-1], ohlcv.index[1:], strict=True))
        return ohlcv, days, {d: f"{nxt[d]:%Y-%m-%d}" for d in days}, garch_fit_until(ticker, ohlcv)

    return work


def pending(
    store: SqliteStore, card: dict, tickers: list[str], source=snapshot_work
) -> list[tuple[str, list[dict], pd.DataFrame, pd.DataFrame]]:
    """Per ticker: the requests not yet recorded for the served model version, its baselines and its prices."""
    done = store.forecast_keys(card["version"], tickers)
    q = card["test_metrics"]["calibration_q"]
    work = []
    for ticker in tickers:
        found = source(card, ticker)
        if found is None:
            continue
        ohlcv, days, targets, fit_until = found
        try:
            base = baselines.intervals(ohlcv, q, fit_until=fit_until)
        except ValueError as exc:  # too short a history for the GARCH baseline's fit
            print(f"ledger: {ticker}: {exc}; skipped", file=sys.stderr)
            continue
        base["last_close"] = feature_frame(ohlcv)["close"]
        reqs = []
        for r in day_requests(ohlcv, card, days):
            r["target"] = targets[r["as_of"]]
            r["last_close"] = float(base.at[r["as_of"], "last_close"])  # the data's own close: what scores use
            if (ticker, str(r["target"])) not in done:
                r["hash"] = input_hash(r["features"])
                reqs.append(r)
        work.append((ticker, reqs, base, ohlcv))
    return work


class Progress:
    """A one-line progress bar on stderr (stdout stays clean for --json)."""

    def __init__(self, total: int, what: str, stream=sys.stderr):
        self.total, self.what, self.stream, self.t0, self.done = total, what, stream, time.monotonic(), 0
        self.tty = stream.isatty()

    def add(self, n: int) -> None:
        self.done += n
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(frac * 30)
        line = f"{self.what} [{bar:<30}] {self.done}/{self.total} {time.monotonic() - self.t0:5.1f} s"
        # on a terminal the line redraws itself; in a log, one line per tenth of the work
        if self.tty:
            print("\r" + line, end="" if self.done < self.total else "\n", file=self.stream, flush=True)
        elif self.done == self.total or int(frac * 10) != int((self.done - n) / max(self.total, 1) * 10):
            print(line, file=self.stream, flush=True)


def replay(
    client: ForecastClient,
    store: SqliteStore,
    tickers: list[str],
    progress: Callable[[int], Progress] = Progress,
    state_path: Path | None = None,
    method: str | None = None,
    source=snapshot_work,
    source_name: str = SOURCE,
) -> dict:
    """Forecast every unrecorded day, day by day across tickers (ledger/walk.py): before each day's forecasts, each
    ticker's calibrator learns the closes up to that day and the state the API reads is written to `state_path`
    (None: an endpoint whose state this replay cannot write; nothing is learned). Then add the closes."""
    card = client.model()
    problem = contract_problem(card)
    if problem:
        raise SystemExit(f"ledger: {problem}")
    method = method or aci.served_method(card["version"])
    if state_path is None:
        method = "none"
    work = pending(store, card, tickers, source)
    total = sum(len(reqs) for _, reqs, _, _ in work)
    bar = progress(total, "forecasts")
    closes = {t: {f"{d:%Y-%m-%d}": float(c) for d, c in ohlcv["Close"].items()} for t, _, _, ohlcv in work}
    recorded_before = store.conn.execute(
        "SELECT ticker, target_date, prediction, last_close, volatility FROM forecasts WHERE model_version = ?",
        (card["version"],),
    ).fetchall()
    learners = walk.learners_for(method, card, [t for t, *_ in work], recorded_before, closes)

    def ask(pairs):
        return client.predict_batch(
            [{"ticker": t, "features": r["features"].tolist()} for t, r in pairs], model_version=card["version"]
        )

    def record(chunk, answers):
        issued = now_iso()
        rows = [
            forecast_row(t, r, a, base.loc[r["as_of"]], source_name, issued)
            for (t, r, base), a in zip(chunk, answers, strict=True)
        ]
        return store.record(rows)

    t0 = time.monotonic()
    recorded = walk.walk(
        ask,
        record,
        [(t, reqs, base) for t, reqs, base, _ in work],
        learners,
        closes,
        publish=(lambda doc: walk.write_state(state_path, doc)) if state_path else (lambda doc: None),
        document=lambda ls: walk.state_document(card["version"], method, ls),
        progress=bar.add,
        closed_loop=method != "none",
    )
    if total == 0:
        bar.add(0)
    seconds = time.monotonic() - t0
    fetched = now_iso()
    outcomes = [
        Outcome(t, d, closes[t][d], source_name, fetched) for t, d in store.awaiting_outcomes() if t in closes and d in closes[t]
    ]
    store.add_outcomes(outcomes)
    return {"model_version": card["version"], "recorded": recorded, "outcomes": len(outcomes), "forecast_seconds": seconds,
            "method": method, "state": str(state_path) if state_path else None}  # fmt: skip


def parse_tickers(text: str | None) -> list[str]:
    known = snapshot_tickers()
    if not text:
        return known
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise SystemExit(f"ledger: --tickers {','.join(unknown)} not in the bundled snapshot; it has {','.join(known)}")
    return wanted


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ledger", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="the API's stage URL (default: the running local API, else one started here)")
    p.add_argument("--key", help="its API key (default: FORECAST_API_KEY, or the local API's own)")
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"the ledger file (default {DEFAULT_DB})")
    p.add_argument("--tickers", help="comma-separated subset of the bundled tickers (default: all)")
    p.add_argument("--json", action="store_true", help="end with one JSON line: the database path and the scorecard")
    p.add_argument("--prices", type=Path, help="replay this daily history (CSV or .csv.gz: Date, Ticker, Open, High, Low, "
                   "Close, Volume in any order) instead of the bundled test period")  # fmt: skip
    p.add_argument("--method", choices=["none", *calibration.METHODS], help="serve this calibrator instead of the "
                   "recorded verdict's (ledger/serving.json): a demonstration, labelled in every answer")  # fmt: skip
    args = p.parse_args(argv)

    source, name, state = snapshot_work, SOURCE, state_file(args.db)
    if args.prices:
        try:
            frames, problems = prices.load(args.prices)
        except prices.BadFile as exc:
            raise SystemExit(f"ledger: {exc}") from None
        for line in problems:
            print(f"ledger: {line}", file=sys.stderr)
        if not frames:
            raise SystemExit(f"ledger: {args.prices}: no ticker left to replay")
        tickers, source, name = sorted(frames), file_work(frames), FILE_SOURCE
        state = args.db.with_name(args.db.name + ".prices.calibration.json")  # never the state `make run` serves
    else:
        tickers = parse_tickers(args.tickers)
    try:
        with SqliteStore(args.db) as store, endpoint(args.url, args.key, state) as (url, key, state_path):
            t0 = time.monotonic()
            done = replay(ForecastClient(url, key, timeout=60), store, tickers, state_path=state_path, method=args.method,
                          source=source, source_name=name)  # fmt: skip
            print(
                f"ledger: calibration served: {done['method']} (state {done['state'] or 'not ours to write: --url'})",
                file=sys.stderr,
            )
            print(
                f"ledger: {done['recorded']} forecasts recorded for {done['model_version']} "
                f"({done['recorded'] / max(done['forecast_seconds'], 1e-9) * 60:.0f} a minute), "
                f"{done['outcomes']} closes added, {time.monotonic() - t0:.1f} s; {store.counts()} in {args.db}",
                file=sys.stderr,
            )
        cards = read.scorecard(args.db, tickers)
        alarms = read.alarms(args.db, tickers)
        served = read.calibration(args.db, tickers)
    except EndpointError as exc:
        raise SystemExit(f"ledger: {exc.message}") from None
    except (LedgerError, read.NoLedger) as exc:
        raise SystemExit(str(exc)) from None
    except sqlite3.DatabaseError as exc:  # damage the open's check did not reach: one line, not a traceback
        raise SystemExit(f"ledger: {args.db} cannot be used ({exc}); restore it from a copy or move it aside") from None
    except KeyboardInterrupt:  # each batch is committed as it answers: a rerun carries on where this one stopped
        print("\nledger: interrupted; what was recorded stays, and a rerun carries on", file=sys.stderr)
        return 130
    print(format_scorecard(cards))
    print()
    print(format_alarms(alarms))
    print()
    print(format_calibration(served, done["method"], override=args.method is not None))
    if args.json:
        out = {"database": str(args.db), "scorecard": cards, "alarms": alarms, "calibration": served, "method": done["method"]}
        print(json.dumps(clean(out), allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
