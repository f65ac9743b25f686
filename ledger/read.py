"""What the dashboard and the reports may see of the ledger: read-only queries (the file is opened read-only,
so nothing here can write it) turned into scored frames, scorecards, alarms and series."""

from __future__ import annotations

import contextlib
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from ledger import scoring
from ledger.store import DEFAULT_DB, SCHEMA_VERSION, schema_problems


class NoLedger(Exception):
    """There is no usable ledger file: none yet (`make ledger` writes one), an empty one, or a damaged one. The
    message says which, and what to do; `plain` says it without the file's path (for a page a user reads)."""

    def __init__(self, plain: str, db: Path | str):
        super().__init__(f"{plain} (ledger file: {db})")
        self.plain = plain


_CHECKED: set[tuple[str, int, int]] = set()  # files (path, mtime, size) whose pages passed PRAGMA quick_check


@contextlib.contextmanager
def _connect(db: Path) -> Iterator[sqlite3.Connection]:
    """The file opened read-only, whatever its path holds: as a file: URI built by pathlib, which percent-escapes
    "#" and "?" (in a bare f"file:{path}" they would start the URI's fragment or query, and SQLite would open, and
    create, another file). Every way the file can be unusable is one NoLedger line."""
    path = Path(db)
    if not path.exists():
        raise NoLedger("there is no ledger yet: run `make ledger` to record and score the test period", db)
    if path.is_file() and path.stat().st_size == 0:
        raise NoLedger(
            "the ledger file is empty (0 bytes; a `sqlite3` command run before any ledger existed leaves one): "
            "delete it, then run `make ledger`",
            db,
        )
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error as exc:
        raise NoLedger(f"cannot open the ledger read-only ({exc})", db) from None
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise NoLedger(f"the ledger is schema v{version}, newer than this code's v{SCHEMA_VERSION}: update the code", db)
        stamp = (str(path.resolve()), path.stat().st_mtime_ns, path.stat().st_size)
        if stamp not in _CHECKED:  # once per version of the file: damage a query would only meet by chance
            (check,) = conn.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            # the store refuses a changed schema when it opens; the reader must not show figures from one either (a
            # view redefined to score the prediction against itself read as MAE 0 before the hostile pass)
            wrong = schema_problems(conn) if version == SCHEMA_VERSION else []
            if version < 1 or wrong:
                raise NoLedger(
                    f"the ledger's schema was changed ({'; '.join(wrong) or 'no schema version'}): its figures cannot "
                    "be trusted; restore it from a copy",
                    db,
                )
            _CHECKED.add(stamp)
        yield conn
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
        if "readonly" in str(exc):  # a write tried through the reader: refused, and said as SQLite says it
            raise
        raise NoLedger(
            f"the ledger cannot be read ({exc}): it is damaged or not a ledger; restore it from a copy, or move it "
            "aside and run `make ledger`",
            db,
        ) from None
    finally:
        conn.close()


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


RECORDS = {
    "replay": "replay of the test period (bundled snapshot)",
    "live": "live, since the version's deploy date",
    "file": "replay of your own prices (--prices)",
}
RECORD_SOURCE = {"replay": "snapshot", "live": "yfinance", "file": "file"}  # each record's rows: forecasts.source


def view(db: Path, ticker: str, model_version: str, which: str) -> dict:
    """What the Track record page shows for one ticker and version, scored once: the day-by-day series of the
    replay rows, or of the live rows from the version's deploy date (its first live forecast's as-of day) on; the scorecard
    and the alarms of that series."""
    df = scored(db, [ticker], model_version)
    deployed = deploy_date(db, model_version)
    if len(df):
        ours = df["source"] == RECORD_SOURCE[which]  # a replay of a user's file is never the live record
        if which == "live":
            df = df[ours & (df["as_of"] >= deployed)] if deployed else df.iloc[0:0]
        else:
            df = df[ours]
    if not len(df):
        return {"series": df, "card": None, "alarm": None, "deployed": deployed}
    return {
        "series": scoring.rolling_series(df),
        "card": scoring.scorecard(df)[0],
        "alarm": scoring.alarms(df)[0],
        "deployed": deployed,
    }


def deploy_date(db: Path, model_version: str) -> str | None:
    """The as-of day of a version's first live forecast (market data, not a replay of the snapshot or a file):
    where its live record starts. Not the UTC day it was issued, which for a run after 20:00 New York time is
    already the next day (finding 10)."""
    with _connect(db) as conn:
        (first,) = conn.execute(
            "SELECT MIN(as_of) FROM forecasts WHERE model_version = ? AND source = ?",
            (model_version, RECORD_SOURCE["live"]),
        ).fetchone()
    return first or None


def skips(db: Path, ticker: str, model_version: str) -> pd.DataFrame:
    """The days the daily job left this ticker out for this version, newest first, and why (ledger.guards)."""
    with _connect(db) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'skips'").fetchone():
            return pd.DataFrame(columns=["as_of", "reason_code", "detail", "recorded_at"])  # a v1 file: none recorded
        return pd.read_sql_query(
            "SELECT as_of, reason_code, detail, recorded_at FROM skips WHERE ticker = ? AND model_version = ? "
            "ORDER BY as_of DESC, reason_code",
            conn,
            params=[ticker, model_version],
        )


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
