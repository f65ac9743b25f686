"""The per-ticker calibration state the ledger learns from the track record, as the function reads it.

The state is one small JSON document (ledger/state.py writes it):
    {"version": 1, "model_version": "...", "written_at": "2026-12-07T23:00:00Z", "method": "aci",
     "tickers": {"AAPL": {"factor": 1.07, "as_of": "2013-02-28", "n": 474}, ...}}
The function serves the model's q times `factor` for a listed ticker, and the model's own interval, labelled
method "none", for anything else: a ticker not listed, a state that is missing, unreadable, for another model
version, older than CALIBRATION_MAX_AGE_DAYS, or a factor outside [FACTOR_MIN, FACTOR_MAX]. Reading it never fails a
prediction. Locally it is a file (CALIBRATION_STATE), re-read only when its stat changes: one os.stat a request.
"""

from __future__ import annotations

import json
import math
import os
import re
import time

FACTOR_MIN, FACTOR_MAX = 0.25, 4.0  # a factor outside is a broken state, not a calibration
MAX_AGE_DAYS = 7.0  # the daily job writes every trading day: a week without a write is a stopped job
MAX_AHEAD_S = 300.0  # written_at further in the future than this is a wrong clock: never "fresh" forever
MAX_N = 10**9  # forecasts a ticker can have: a larger count is a broken state (and would not serialise)
METHOD_RE = re.compile(r"[a-z][a-z0-9_+-]{0,31}")  # a calibrator's name, echoed in every answer: short and plain
NONE = {"method": "none", "factor": 1.0, "as_of": None, "n": 0}


def _parse_time(text) -> float | None:
    """Seconds since the epoch of "YYYY-MM-DDTHH:MM:SSZ", by hand: time.strptime would import _strptime, locale and
    a dozen regular expressions on the first prediction of every cold start (milliseconds)."""
    t = str(text)
    if len(t) != 20 or t[4] != "-" or t[7] != "-" or t[10] != "T" or t[13] != ":" or t[16] != ":" or t[19] != "Z":
        return None
    try:
        y, mo, d, h, mi, s = (int(t[a:b]) for a, b in ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19)))
    except ValueError:
        return None
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
        return None
    y -= mo <= 2  # days from 1970-01-01 to the civil date (Howard Hinnant's days_from_civil)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return float(days * 86400 + h * 3600 + mi * 60 + s)


def parse(raw: bytes | str, model_version: str) -> tuple[dict[str, dict], float, str]:
    """(ticker -> label, written_at epoch, why-not) from a state document; an empty map and the reason when it is
    unusable. Never raises: whatever the file holds, a prediction is still answered (with the plain interval)."""
    try:
        return _parse(raw, model_version)
    except Exception:  # noqa: BLE001 - a 50,000-deep list (RecursionError), an int of 400 digits (OverflowError), ...
        return {}, 0.0, "unreadable"


def _parse(raw: bytes | str, model_version: str) -> tuple[dict[str, dict], float, str]:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}, 0.0, "unreadable"
    if not isinstance(doc, dict) or not isinstance(doc.get("tickers"), dict):
        return {}, 0.0, "unreadable"
    if doc.get("model_version") != model_version:
        return {}, 0.0, "other model version"
    written = _parse_time(doc.get("written_at"))
    method = doc.get("method")
    if written is None or not isinstance(method, str) or not METHOD_RE.fullmatch(method) or method == "none":
        return {}, 0.0, "no method" if written is not None else "unreadable"
    if written > time.time() + MAX_AHEAD_S:
        return {}, 0.0, "written in the future"
    labels = {}
    for ticker, e in doc["tickers"].items():
        if not isinstance(e, dict):
            continue
        f, n = e.get("factor"), e.get("n")
        if not (isinstance(f, int | float) and not isinstance(f, bool) and math.isfinite(f)):
            continue
        if not FACTOR_MIN <= f <= FACTOR_MAX or not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_N:
            continue
        as_of = e.get("as_of")
        as_of = str(as_of)[:10] if isinstance(as_of, str) and as_of else None
        if e.get("method") == "none":  # too little record yet: the model's own interval, with how much there is
            labels[str(ticker)] = {"method": "none", "factor": 1.0, "as_of": as_of, "n": n}
        else:
            labels[str(ticker)] = {"method": method, "factor": float(f), "as_of": as_of, "n": n}
    return labels, written, ""


class State:
    """The state at CALIBRATION_STATE (a path), re-read when the file's stat changes."""

    def __init__(self, path: str | None, model_version: str, max_age_days: float | None = None):
        self.path, self.model_version = path or None, model_version
        age = max_age_days if max_age_days is not None else os.environ.get("CALIBRATION_MAX_AGE_DAYS", MAX_AGE_DAYS)
        try:
            self.max_age_s = float(age) * 86400.0
        except ValueError:
            self.max_age_s = MAX_AGE_DAYS * 86400.0
        self.stamp: tuple | None = None
        self.labels: dict[str, dict] = {}
        self.written = 0.0
        self.why = "no state configured"

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            self.stamp, self.labels, self.why = None, {}, "missing"
            return
        stamp = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)  # ctime: an in-place rewrite that kept mtime
        if stamp == self.stamp:
            return
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read(4 << 20)
        except OSError:
            raw = b""
        self.labels, self.written, self.why = parse(raw, self.model_version)
        self.stamp = stamp

    def lookup(self, tickers: list[str]) -> list[dict]:
        """One label per ticker: its calibration, or NONE."""
        if self.path is None:
            return [NONE] * len(tickers)
        self._refresh()
        if not self.labels or time.time() - self.written > self.max_age_s:
            return [NONE] * len(tickers)
        get = self.labels.get
        return [get(t, NONE) for t in tickers]
