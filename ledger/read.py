"""What the dashboard and the reports may see of the ledger: read-only queries (the file is opened read-only,
so nothing here can write it) turned into scored frames, scorecards, alarms and series."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pandas as pd

from ledger import scoring
from ledger.store import DEFAULT_DB


class NoLedger(Exception):
    """There is no ledger file yet: `make ledger` writes one."""


def _connect(db: Path) -> sqlite3.Connection:
    if not Path(db).exists():
        raise NoLedger(f"no ledger at {db}: run `make ledger` to record and score the test period")
    return sqlite3.connect(f"file:{Path(db).resolve()}?mode=ro", uri=True, timeout=30.0)


def joined(db: Path = DEFAULT_DB, tickers: list[str] | None = None, model_version: str | None = None) -> pd.DataFrame:
    """Forecasts whose close has arrived, joined with it (the `scored` view)."""
    sql, params = "SELECT * FROM scored WHERE 1 = 1", []
    if tickers:
        sql += f" AND ticker IN ({', '.join('?' * len(tickers))})"
        params += list(tickers)
    if model_version:
        sql += " AND model_version = ?"
        params.append(model_version)
    with _connect(db) as conn:
        return pd.read_sql_query(sql + " ORDER BY ticker, model_version, target_date", conn, params=params)


def scored(db: Path = DEFAULT_DB, tickers: list[str] | None = None, model_version: str | None = None) -> pd.DataFrame:
    df = joined(db, tickers, model_version)
    return scoring.score_rows(df) if len(df) else df


def scorecard(db: Path = DEFAULT_DB, tickers: list[str] | None = None) -> list[dict]:
    df = scored(db, tickers)
    return scoring.scorecard(df) if len(df) else []


def alarms(db: Path = DEFAULT_DB, tickers: list[str] | None = None) -> list[dict]:
    df = scored(db, tickers)
    return scoring.alarms(df) if len(df) else []


def calibration(db: Path = DEFAULT_DB, tickers: list[str] | None = None) -> list[dict]:
    """Served against the model's own interval per ticker and version, after the calibrator's warm-up."""
    from ledger.calibration import WARMUP

    df = scored(db, tickers)
    return scoring.calibration_rows(df, WARMUP) if len(df) else []


def series(db: Path, ticker: str, model_version: str) -> pd.DataFrame:
    """One ticker and model version, day by day: forecast, band, close, rolling coverage, cumulative scores."""
    df = scored(db, [ticker], model_version)
    return scoring.rolling_series(df) if len(df) else df


def versions(db: Path = DEFAULT_DB) -> pd.DataFrame:
    """Each model version with its deploy date (its first forecast's issue day) and what it has recorded."""
    with _connect(db) as conn:
        return pd.read_sql_query(
            "SELECT model_version, MIN(issued_at) AS first_issued, MIN(target_date) AS first_target, "
            "MAX(target_date) AS last_target, COUNT(*) AS forecasts, COUNT(DISTINCT ticker) AS tickers "
            "FROM forecasts GROUP BY model_version ORDER BY first_issued",
            conn,
        )


RECORDS = {"replay": "replay of the test period (bundled snapshot)", "live": "live, since the version's deploy date"}


def view(db: Path, ticker: str, model_version: str, which: str) -> dict:
    """What the Track record page shows for one ticker and version, scored once: the day-by-day series of the
    replay rows, or of the live rows from the version's deploy date (its first live forecast) on; the scorecard
    and the alarms of that series."""
    df = scored(db, [ticker], model_version)
    deployed = deploy_date(db, model_version)
    if len(df):
        replayed = df["source"] == "snapshot"
        if which == "replay":
            df = df[replayed]
        else:
            df = df[~replayed & (df["as_of"] >= deployed)] if deployed else df.iloc[0:0]
    if not len(df):
        return {"series": df, "card": None, "alarm": None, "deployed": deployed}
    return {
        "series": scoring.rolling_series(df),
        "card": scoring.scorecard(df)[0],
        "alarm": scoring.alarms(df)[0],
        "deployed": deployed,
    }


def deploy_date(db: Path, model_version: str) -> str | None:
    """The day a version's first live (not replayed) forecast was issued."""
    with _connect(db) as conn:
        (first,) = conn.execute(
            "SELECT MIN(issued_at) FROM forecasts WHERE model_version = ? AND source != 'snapshot'", (model_version,)
        ).fetchone()
    return first[:10] if first else None


def tickers(db: Path = DEFAULT_DB) -> list[str]:
    with _connect(db) as conn:
        return [t for (t,) in conn.execute("SELECT DISTINCT ticker FROM forecasts ORDER BY ticker")]


# the scorecard's columns as `make ledger` prints them and the dashboard shows them: (card key, a percentage?)
SCORECARD_COLUMNS = {
    "ticker": ("ticker", False),
    "model version": ("model_version", False),
    "n": ("n", False),
    "from": ("from", False),
    "to": ("to", False),
    "coverage": ("coverage", True),
    "MASE": ("mase", False),
    "Winkler": ("winkler", False),
    "vs rolling": ("winkler_vs_rolling", False),
    "vs GARCH": ("winkler_vs_garch", False),
    "direction": ("direction_hit", True),
}


def fmt(v, pct: bool = False) -> str:
    """A figure as the reports print it: 4 decimals, or a percentage with one; a missing or infinite one as a dash."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, float):
        return f"{v * 100:.1f}%" if pct else f"{v:.4f}"
    return str(v)


def scorecard_table(cards: list[dict]) -> list[dict[str, str]]:
    """Scorecards as rows of formatted text, one column per SCORECARD_COLUMNS entry."""
    return [{col: fmt(c.get(key), pct) for col, (key, pct) in SCORECARD_COLUMNS.items()} for c in cards]
