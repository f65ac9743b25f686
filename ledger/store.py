"""The ledger's SQLite store: one file, insert-only, a schema users may query with `sqlite3` or DuckDB.

    sqlite3 .local/ledger.sqlite "SELECT * FROM scored LIMIT 5"

The database itself refuses to change history: triggers raise on UPDATE or DELETE of `forecasts` and `outcomes`,
and on an INSERT whose key is already there (which also stops INSERT OR REPLACE, whose hidden delete would
otherwise skip the delete trigger).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from models.local import LOCAL_DIR  # the local state folder, defined once below dashboard/ and lambda/

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DB = Path(os.environ.get("LEDGER_DB") or LOCAL_DIR / "ledger.sqlite")  # LEDGER_DB moves it
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS forecasts (
    ticker        TEXT NOT NULL,
    target_date   TEXT NOT NULL CHECK (target_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    model_version TEXT NOT NULL,
    issued_at     TEXT NOT NULL,  -- UTC, ISO 8601, when the API answered
    as_of         TEXT NOT NULL CHECK (as_of < target_date),  -- the last day of data the forecast saw
    prediction    REAL NOT NULL,  -- the target day's close, price units
    low           REAL NOT NULL CHECK (low <= high),
    high          REAL NOT NULL,
    level         REAL NOT NULL CHECK (level > 0 AND level < 1),
    last_close    REAL NOT NULL CHECK (last_close > 0),  -- the close of as_of
    volatility    REAL,           -- the served risk model's volatility (log return, one day)
    confidence    REAL NOT NULL,
    source        TEXT NOT NULL,  -- where the input data came from: snapshot | yfinance
    input_hash    TEXT NOT NULL,  -- sha256 of the 600 numbers sent
    vol20         REAL NOT NULL,  -- rolling 20-day volatility at as_of (the baselines' scale, the terciles)
    rolling_low   REAL NOT NULL,  -- baseline: naive point, rolling-volatility interval, same level, same data
    rolling_high  REAL NOT NULL,
    garch_low     REAL NOT NULL,  -- baseline: naive point, GARCH(1,1) interval
    garch_high    REAL NOT NULL,
    PRIMARY KEY (ticker, target_date, model_version)
);
CREATE TABLE IF NOT EXISTS outcomes (
    ticker     TEXT NOT NULL,
    date       TEXT NOT NULL CHECK (date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    close      REAL NOT NULL CHECK (close > 0),
    source     TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    PRIMARY KEY (ticker, date)
);
CREATE TRIGGER IF NOT EXISTS forecasts_insert_once BEFORE INSERT ON forecasts
WHEN EXISTS (SELECT 1 FROM forecasts f WHERE f.ticker = NEW.ticker AND f.target_date = NEW.target_date
             AND f.model_version = NEW.model_version)
BEGIN SELECT RAISE(ABORT, 'ledger: this forecast is already recorded; the ledger never overwrites'); END;
CREATE TRIGGER IF NOT EXISTS forecasts_no_update BEFORE UPDATE ON forecasts
BEGIN SELECT RAISE(ABORT, 'ledger: forecasts are insert-only; a recorded forecast is never changed'); END;
CREATE TRIGGER IF NOT EXISTS forecasts_no_delete BEFORE DELETE ON forecasts
BEGIN SELECT RAISE(ABORT, 'ledger: forecasts are insert-only; a recorded forecast is never deleted'); END;
CREATE TRIGGER IF NOT EXISTS outcomes_insert_once BEFORE INSERT ON outcomes
WHEN EXISTS (SELECT 1 FROM outcomes o WHERE o.ticker = NEW.ticker AND o.date = NEW.date)
BEGIN SELECT RAISE(ABORT, 'ledger: this outcome is already recorded; the ledger never overwrites'); END;
CREATE TRIGGER IF NOT EXISTS outcomes_no_update BEFORE UPDATE ON outcomes
BEGIN SELECT RAISE(ABORT, 'ledger: outcomes are insert-only'); END;
CREATE TRIGGER IF NOT EXISTS outcomes_no_delete BEFORE DELETE ON outcomes
BEGIN SELECT RAISE(ABORT, 'ledger: outcomes are insert-only'); END;
CREATE VIEW IF NOT EXISTS scored AS
SELECT f.*, o.close AS close, o.source AS outcome_source, o.fetched_at
FROM forecasts f JOIN outcomes o ON o.ticker = f.ticker AND o.date = f.target_date;
"""


@dataclass(frozen=True)
class Forecast:
    """One row of `forecasts`, frozen when the API answered."""

    ticker: str
    target_date: str
    model_version: str
    issued_at: str
    as_of: str
    prediction: float
    low: float
    high: float
    level: float
    last_close: float
    volatility: float | None
    confidence: float
    source: str
    input_hash: str
    vol20: float
    rolling_low: float
    rolling_high: float
    garch_low: float
    garch_high: float


@dataclass(frozen=True)
class Outcome:
    """One realised close."""

    ticker: str
    date: str
    close: float
    source: str
    fetched_at: str


FORECAST_COLUMNS = tuple(f.name for f in fields(Forecast))
OUTCOME_COLUMNS = tuple(f.name for f in fields(Outcome))


class LedgerError(Exception):
    """A write the ledger refuses; the message names the row and says why."""


class DuplicateError(LedgerError):
    """A key that is already recorded: the ledger never overwrites."""


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


class SqliteStore:
    """The embedded store (no server): one file, created with its schema on first use."""

    def __init__(self, path: Path | str = DEFAULT_DB):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30.0)
            self.conn.executescript(SCHEMA)
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"ledger: cannot open {self.path} as a ledger ({exc}); move it aside or pass --db") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence, key) -> int:
        """All rows or none: a refused row rolls the whole batch back and is named in the error."""
        sql = _insert_sql(table, columns)
        try:
            with self.conn:
                for row in rows:
                    try:
                        self.conn.execute(sql, tuple(asdict(row)[c] for c in columns))
                    except sqlite3.DatabaseError as exc:
                        what = ", ".join(f"{k}={getattr(row, k)}" for k in key)
                        if "already recorded" in str(exc):
                            raise DuplicateError(
                                f"ledger: {table} ({what}) is already recorded; the ledger never overwrites"
                            ) from None
                        raise LedgerError(f"ledger: refused {table} row ({what}): {exc}") from None
        except sqlite3.OperationalError as exc:  # a locked or read-only file
            raise LedgerError(f"ledger: cannot write {self.path}: {exc}") from None
        return len(rows)

    def record(self, forecasts: Sequence[Forecast]) -> int:
        """Insert forecasts; any key already present refuses the whole batch (nothing changes)."""
        return self._insert("forecasts", FORECAST_COLUMNS, forecasts, ("ticker", "target_date", "model_version"))

    def add_outcomes(self, outcomes: Sequence[Outcome]) -> int:
        return self._insert("outcomes", OUTCOME_COLUMNS, outcomes, ("ticker", "date"))

    def forecast_keys(self, model_version: str, tickers: Iterable[str] | None = None) -> set[tuple[str, str]]:
        """(ticker, target_date) already recorded for this model version."""
        rows = self.conn.execute("SELECT ticker, target_date FROM forecasts WHERE model_version = ?", (model_version,))
        wanted = None if tickers is None else set(tickers)
        return {(t, d) for t, d in rows if wanted is None or t in wanted}

    def outcome_keys(self) -> set[tuple[str, str]]:
        return set(self.conn.execute("SELECT ticker, date FROM outcomes"))

    def awaiting_outcomes(self, tickers: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """(ticker, target_date) of forecasts whose close has not been recorded yet, oldest first."""
        rows = self.conn.execute(
            "SELECT DISTINCT f.ticker, f.target_date FROM forecasts f LEFT JOIN outcomes o "
            "ON o.ticker = f.ticker AND o.date = f.target_date WHERE o.ticker IS NULL ORDER BY 2, 1"
        )
        wanted = None if tickers is None else set(tickers)
        return [(t, d) for t, d in rows if wanted is None or t in wanted]

    def counts(self) -> dict[str, int]:
        return {t: self.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("forecasts", "outcomes")}
