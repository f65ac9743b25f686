"""What the dashboard and the reports may see of the ledger: read-only queries (the file is opened read-only,
so nothing here can write it) turned into scored frames, scorecards, alarms and series."""

from __future__ import annotations

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


def tickers(db: Path = DEFAULT_DB) -> list[str]:
    with _connect(db) as conn:
        return [t for (t,) in conn.execute("SELECT DISTINCT ticker FROM forecasts ORDER BY ticker")]
