"""A user's daily prices for `python -m ledger.replay --prices FILE`: read, checked ticker by ticker, one clear line
per problem. A ticker with a problem is left out; the others replay. Each ticker's own rows are its calendar: the
target of a forecast made as of row t is that ticker's row t + 1 (DESIGN.md, Calendars)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models.data import TICKER_RE
from models.features import WARMUP, WINDOW

COLUMNS = ("Date", "Ticker", "Open", "High", "Low", "Close", "Volume")
PRICES = ("Open", "High", "Low", "Close")
MIN_ROWS = WARMUP - 1 + WINDOW + 1  # the features' warm-up, one full window, and a next row to score it against


class BadFile(Exception):
    """The file as a whole cannot be read: nothing replays."""


def _dates(values: pd.Series) -> list[str]:
    return [f"{d:%Y-%m-%d}" for d in values[:3]]


def check(ticker: str, g: pd.DataFrame) -> str | None:
    """What is wrong with one ticker's rows (in file order), or None."""
    if not TICKER_RE.fullmatch(ticker):
        return f"ticker {ticker!r} is not a ticker symbol (letters, digits, . - = ^; at most 15): rename it"
    if g["Date"].isna().any():
        return f"{int(g['Date'].isna().sum())} row(s) whose Date is not a date (YYYY-MM-DD): fix or remove them"
    dup = g["Date"][g["Date"].duplicated()]
    if len(dup):
        return f"{len(dup)} duplicate date(s), first {', '.join(_dates(dup))}: keep one row a day"
    back = g["Date"].diff().dt.days.fillna(1) <= 0
    if back.any():
        i = int(np.argmax(back.to_numpy()))
        return (
            f"dates are not in order: {g['Date'].iloc[i]:%Y-%m-%d} comes after {g['Date'].iloc[i - 1]:%Y-%m-%d}; "
            "sort the rows by date"
        )
    for col in (*PRICES, "Volume"):
        v = pd.to_numeric(g[col], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(v) | ((v <= 0) if col != "Volume" else (v < 0))
        if bad.any():
            what = "positive finite prices" if col != "Volume" else "finite, non-negative volumes"
            return f"{col} has {int(bad.sum())} value(s) that are not {what}, first on {_dates(g['Date'][bad])[0]}"
    if len(g) < MIN_ROWS:
        return (
            f"{len(g)} rows, fewer than the {MIN_ROWS} a forecast needs (a 50-day feature warm-up, a 60-day window, a next day)"
        )
    return None


def load(path: Path) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """(ticker -> OHLCV frame indexed by date, the problems found). Raises BadFile when nothing can be read."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, compression="infer")
    except (OSError, ValueError, UnicodeDecodeError, EOFError) as exc:
        raise BadFile(f"{path}: cannot read it as a CSV (or .csv.gz): {exc}") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise BadFile(f"{path}: missing column(s) {', '.join(missing)}; the header must name {', '.join(COLUMNS)} (any order)")
    raw["Date"] = pd.to_datetime(raw["Date"].str.strip(), errors="coerce", format="%Y-%m-%d")
    frames, problems = {}, []
    for ticker, g in raw.groupby(raw["Ticker"].str.strip(), sort=True):
        problem = check(ticker, g)
        if problem:
            problems.append(f"{path}: {ticker}: {problem}; skipped")
            continue
        ohlcv = g.set_index("Date")[[*PRICES, "Volume"]].apply(pd.to_numeric)
        ohlcv.index.name = "Date"
        frames[ticker] = ohlcv
    return frames, problems
