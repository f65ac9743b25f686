"""The replay's day-by-day walk with the calibration loop closed: before each day's forecasts are asked for, every
ticker's calibrator learns the closes up to that day (never later), the state the function reads is written, and
only then does the API answer. Used by `make ledger` and `python -m ledger.replay --prices FILE`.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import math
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ledger import calibration
from models.client import MAX_BATCH

STATE_VERSION = 1


def score(prediction: float, last_close: float, volatility: float, close: float) -> float:
    """|realised log return - predicted| / predicted volatility: what every calibrator learns (ledger/calibration.py)."""
    return abs(math.log(close / last_close) - math.log(prediction / last_close)) / max(volatility, 1e-4)


@dataclass
class Learner:
    """One ticker's calibrator and the scores it may not learn yet: a score is learnable once its close is in."""

    cal: calibration.Calibrator
    pending: list = field(default_factory=list)  # heap of (target_date, score)
    as_of: str | None = None  # the last close learned

    def add(self, target_date: str, s: float) -> None:
        heapq.heappush(self.pending, (str(target_date), float(s)))

    def learn_until(self, day: str) -> None:
        """Learn every score whose close came on or before `day`, oldest first: the forecasts made as of `day` saw
        that day's close, and nothing after it."""
        while self.pending and self.pending[0][0] <= day:
            target, s = heapq.heappop(self.pending)
            self.cal.update(s)
            self.as_of = target

    def entry(self) -> dict:
        n = self.cal.n
        if n < calibration.WARMUP:
            return {"method": "none", "factor": 1.0, "as_of": self.as_of, "n": n}
        return {"factor": self.cal.factor(), "as_of": self.as_of, "n": n}


def state_document(model_version: str, method: str, learners: dict[str, Learner]) -> dict:
    """What the function reads (lambda/forecast/calibration.py). Method "none": no ticker is listed."""
    tickers = {} if method == "none" else {t: lr.entry() for t, lr in sorted(learners.items())}
    return {"version": STATE_VERSION, "model_version": model_version, "method": method, "tickers": tickers}


def write_state(path: Path, doc: dict) -> None:
    """Atomically (a reader sees the old state or the new one), stamped with the time it was written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = {**doc, "written_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(stamped, allow_nan=False))
    os.replace(tmp, path)


def learners_for(method: str, card: dict, tickers, recorded, closes) -> dict[str, Learner]:
    """One learner per ticker, holding the scores of forecasts already in the record (a resumed replay) as pending:
    they are learned in date order as the walk passes their closes, like the new ones."""
    q0, level = float(card["calibration"]["q"]), float(card["calibration"]["level"])
    out = {t: Learner(calibration.make(method, q0, level)) for t in tickers}
    for ticker, target, prediction, last_close, volatility in recorded:
        close = closes.get(ticker, {}).get(str(target))
        if ticker in out and close is not None and volatility is not None:
            out[ticker].add(target, score(prediction, last_close, volatility, close))
    return out


def walk(
    ask: Callable[[list[tuple[str, dict]]], list[dict]],
    record: Callable[[list[tuple[str, dict, object]], list[dict]], int],
    work: list[tuple[str, list[dict], object]],
    learners: dict[str, Learner],
    closes: dict[str, dict[str, float]],
    publish: Callable[[dict], None],
    document: Callable[[dict[str, Learner]], dict],
    progress: Callable[[int], None] = lambda n: None,
    closed_loop: bool = True,
) -> int:
    """Every request of `work` (ticker, requests with as_of/target, baselines), day by day across tickers.
    `ask` answers (ticker, request) pairs, `record` writes them, `publish` writes the state the API reads.
    closed_loop False (method "none": nothing learned reaches the API) lets days share a batch of 64."""
    by_day: dict[str, list] = defaultdict(list)
    for ticker, reqs, base in work:
        for r in reqs:
            by_day[f"{r['as_of']:%Y-%m-%d}"].append((ticker, r, base))
    queue: list = []
    recorded = 0
    published = None

    def flush(k: int | None = None) -> None:
        nonlocal recorded, queue
        chunk, queue = (queue, []) if k is None else (queue[:k], queue[k:])
        if not chunk:
            return
        answers = ask([(t, r) for t, r, _ in chunk])
        recorded += record(chunk, answers)
        for (t, r, _), a in zip(chunk, answers, strict=True):
            close = closes[t].get(str(r["target"]))
            if close is not None and a.get("volatility") is not None:
                learners[t].add(str(r["target"]), score(a["prediction"], r["last_close"], a["volatility"], close))
        progress(len(chunk))

    for day in sorted(by_day):
        if closed_loop and any(str(r["target"]) <= day for _, r, _ in queue):
            flush()  # a queued forecast's close is in by today: it must be answered and learned first
        for lr in learners.values():
            lr.learn_until(day)
        doc = document(learners)
        if doc != published:
            flush()  # what is queued was asked for under the state before this day's
            publish(doc)
            published = doc
        queue += by_day[day]
        while len(queue) >= MAX_BATCH:
            flush(MAX_BATCH)
    flush()
    return recorded


def learned_state(conn, card: dict, method: str) -> dict:
    """The state the whole scored record teaches (the daily job's, after its closes are in): every ticker's
    calibrator fed its scores in date order."""
    rows = conn.execute(
        "SELECT ticker, target_date, prediction, last_close, volatility, close FROM scored "
        "WHERE model_version = ? AND volatility IS NOT NULL ORDER BY target_date",
        (card["version"],),
    ).fetchall()
    q0, level = float(card["calibration"]["q"]), float(card["calibration"]["level"])
    learners: dict[str, Learner] = {}
    for ticker, target, prediction, last_close, volatility, close in rows:
        lr = learners.setdefault(ticker, Learner(calibration.make(method, q0, level)))
        lr.add(target, score(prediction, last_close, volatility, close))
    for lr in learners.values():
        lr.learn_until("9999-12-31")
    return state_document(card["version"], method, learners)
