"""What the daily job checks in one ticker's market data before it forecasts or scores with it. Each check answers
None (use it) or a (reason_code, detail) pair: the ticker is skipped for the day with that reason (the `skips`
table), and every other ticker goes on.

Units: yfinance's history is split-adjusted as of the day it is fetched, so the close of a forecast's target day can
arrive in other units than the forecast was made in. The recorded last close (the close of the forecast's as-of day,
in the units of that day's fetch) against the same day's close in today's fetch gives the factor between the two:
about 1 (dividend adjustments move it by a few tenths of a percent) means the same units; a ratio of small whole
numbers (2:1, 3:2, 1:10...; guards.SPLITS) is a split, and the target's close is scored multiplied by it; anything else (another
symbol's data, an unexplained jump) is quarantined: not scored, recorded as a skip, tried again the next day.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd

from models.features import WARMUP, WINDOW, feature_frame

PRICES = ("Open", "High", "Low", "Close")
SAME_UNITS = 0.05  # |ratio - 1| within this: the same units (dividend adjustments are well inside it)
SPLIT_TOLERANCE = 0.02  # a ratio within 2% of a split's is that split
# the splits there are: n-for-1 and 1-for-n up to 100, and the odd ones of small terms (3-for-2, 5-for-4, 2-for-5...).
# Kept this short on purpose: with every p/q of terms up to 50, any ratio at all lies within 2% of one.
SPLITS = sorted(
    {float(Fraction(n, 1)) for n in range(2, 101)}
    | {float(Fraction(1, n)) for n in range(2, 101)}
    | {float(Fraction(p, q)) for p in range(1, 6) for q in range(1, 6) if p != q}
)
MAX_SESSION_MOVE = 1.8  # a close more than 1.8x or less than 1/1.8 of the session before: a unit jump, not a price


def bad_prices(ohlcv: pd.DataFrame, rows: int) -> str | None:
    """The first of the last `rows` bars with an open, high, low or close that is not a positive finite number."""
    tail = ohlcv[list(PRICES)].iloc[-rows:].to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(tail) & (tail > 0))
    if not bad.any():
        return None
    r, c = map(int, np.argwhere(bad)[0])
    day = ohlcv.index[len(ohlcv) - len(tail) + r]
    return f"{PRICES[c]} is {tail[r, c]!r} on {day:%Y-%m-%d}"


def session_jump(closes: pd.Series) -> str | None:
    """The first session-to-session move of more than MAX_SESSION_MOVE times: unadjusted split or another unit."""
    ratio = (closes / closes.shift(1)).iloc[1:]
    jumps = ratio[(ratio > MAX_SESSION_MOVE) | (ratio < 1 / MAX_SESSION_MOVE)]
    if jumps.empty:
        return None
    day = jumps.index[0]
    return f"the close moved x{jumps.iloc[0]:.4g} on {day:%Y-%m-%d} (more than x{MAX_SESSION_MOVE:g} in one session)"


def forecast_input(ohlcv: pd.DataFrame, as_of: pd.Timestamp) -> tuple[str, str] | None:
    """Why the window ending `as_of` must not be sent: a bad price in the bars the features use (the feature builder
    would drop that day and the forecast be labelled with a day it did not see), or a unit jump inside the window."""
    rows = WINDOW + WARMUP
    if len(ohlcv) < rows:
        return "short_history", f"{len(ohlcv)} sessions of data; a forecast needs {rows}"
    if ohlcv.index[-1] != as_of:
        return "bad_price", f"the data ends {ohlcv.index[-1]:%Y-%m-%d}, not on the as-of day {as_of:%Y-%m-%d}"
    if bad := bad_prices(ohlcv, rows):
        return "bad_price", bad
    if jump := session_jump(ohlcv["Close"].iloc[-WINDOW - 1 :]):
        return "unit_jump", jump
    frame = feature_frame(ohlcv)
    if len(frame) < WINDOW or frame.index[-1] != as_of or not frame.index[-WINDOW:].equals(ohlcv.index[-WINDOW:]):
        return "bad_price", "the feature builder dropped a day of the window (an unusable bar)"
    return None


def same_symbol(ohlcv: pd.DataFrame, ref: tuple[str, float] | None) -> tuple[str, str] | None:
    """Today's data against the last close this ledger recorded for the ticker: the same units, or a split since;
    anything else is another symbol's data or a unit change, and no forecast is made from it."""
    if ref is None or pd.Timestamp(ref[0]) not in ohlcv.index:
        return None
    fetched = float(ohlcv.loc[pd.Timestamp(ref[0]), "Close"])
    if split_factor(ref[1] / fetched if fetched > 0 else math.nan) is None:
        return "unit_jump", (f"the close of {ref[0]} was recorded as {ref[1]:.6g} and now reads {fetched:.6g}: "
                             "neither the same units nor a split (another symbol's data?)")  # fmt: skip
    return None


def out_of_bounds(features: np.ndarray, limit: float) -> tuple[str, str] | None:
    """The model card's published input range (GET /model input_limit.standardized_abs_max), not a copy of it."""
    x = np.asarray(features, dtype=np.float64)
    bad = ~np.isfinite(x) | (np.abs(x) > limit)
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    return "out_of_bounds", f"standardized feature {i} is {x[i]:.6g}, outside the model's published ±{limit:g}"


def split_factor(ratio: float) -> float | None:
    """1.0 for the same units, p/q for a split of small whole numbers, None when the ratio is no such thing."""
    if not (math.isfinite(ratio) and ratio > 0):
        return None
    if abs(ratio - 1) <= SAME_UNITS:
        return 1.0
    nearest = min(SPLITS, key=lambda f: abs(math.log(ratio / f)))
    return nearest if abs(ratio / nearest - 1) <= SPLIT_TOLERANCE else None


def outcome_units(ohlcv: pd.DataFrame, target: str, refs: list[tuple[str, float]]) -> tuple[float, None] | tuple[None, tuple]:
    """(adjustment, None) to record target's close x adjustment, or (None, (reason_code, detail)) to quarantine it.
    refs: (as_of, recorded last close) of each forecast that targets this day."""
    day = pd.Timestamp(target)
    close = float(ohlcv.loc[day, "Close"])
    if not (math.isfinite(close) and close > 0):
        return None, ("bad_price", f"the close of {target} is {close!r}")
    factors = set()
    for as_of, last_close in refs:
        ref = pd.Timestamp(as_of)
        if ref not in ohlcv.index:
            return None, ("unit_unverified", f"the data no longer holds {as_of}, the forecast's as-of day")
        fetched = float(ohlcv.loc[ref, "Close"])
        factor = split_factor(last_close / fetched) if math.isfinite(fetched) and fetched > 0 else None
        if factor is None:
            return None, ("unit_jump", f"the close of {as_of} was recorded as {last_close:.6g} and now reads "
                                       f"{fetched:.6g}: neither the same units nor a split")  # fmt: skip
        moved = close / fetched
        if not (1 / MAX_SESSION_MOVE <= moved <= MAX_SESSION_MOVE):
            return None, ("unit_jump", f"the close of {target} is x{moved:.4g} the close of {as_of}: an unadjusted "
                                       "split or another unit, not a price")  # fmt: skip
        factors.add(factor)
    if len(factors) > 1:
        return None, ("unit_conflict", f"forecasts for {target} were made in different units ({sorted(factors)})")
    return (factors.pop() if factors else 1.0), None
