"""The ledger's SQLite store: one file, insert-only, a schema users may query with `sqlite3` or DuckDB.

    sqlite3 .local/ledger.sqlite "SELECT * FROM scored LIMIT 5"

The database itself refuses to change history: triggers raise on UPDATE or DELETE of `forecasts`, `outcomes` and
`skips`, and on an INSERT whose key is already there (which also stops INSERT OR REPLACE, whose hidden delete would
otherwise skip the delete trigger). The schema (ledger.schema) carries a version (PRAGMA user_version); each open
checks that every table, trigger and view is exactly the one defined there, and refuses a file where one was
dropped or changed, naming it, rather than quietly recreating it. A v1 file is migrated to v2 once, said on stderr.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

from ledger.schema import (
    COLUMNS,
    KEYS,
    MIGRATE_V1,
    OBJECTS,
    ROWS,
    SCHEMA_VERSION,
    V1_COLUMNS,
    Forecast,
    Outcome,
    Skip,
    normalized,
    problems,
)
from models.local import LOCAL_DIR  # the local state folder, defined once below dashboard/ and lambda/

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DB = Path(os.environ.get("LEDGER_DB") or LOCAL_DIR / "ledger.sqlite")  # LEDGER_DB moves it
FORECAST_COLUMNS = COLUMNS["forecasts"]
OUTCOME_COLUMNS = COLUMNS["outcomes"]
SKIP_COLUMNS = COLUMNS["skips"]
__all__ = ["Forecast", "Outcome", "Skip", "SCHEMA_VERSION", "SqliteStore", "LedgerError", "DuplicateError"]


class LedgerError(Exception):
    """A write the ledger refuses, or a file it cannot use; the message names the row or the file and says why."""


class DuplicateError(LedgerError):
    """A key that is already recorded: the ledger never overwrites."""


def refused(table: str, row) -> LedgerError | None:
    """The rules of ledger.schema a row breaks, as the error both stores raise (None: it may be written)."""
    bad = problems(table, asdict(row))
    if not bad:
        return None
    what = ", ".join(f"{k}={getattr(row, k)}" for k in KEYS[table])
    return LedgerError(f"ledger: refused {table} row ({what}): breaks {', '.join(bad)}")


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def schema_problems(conn: sqlite3.Connection) -> list[str]:
    """What differs from ledger.schema's objects: missing, changed, or a trigger of ours that is not ours."""
    have = {name: sql for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")}
    out = []
    for name, sql in OBJECTS.items():
        if name not in have:
            out.append(f"{name} is missing")
        elif normalized(have[name]) != normalized(sql):
            out.append(f"{name} was changed")
    marks = ", ".join("?" * len(ROWS))
    extra = conn.execute(f"SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({marks})", tuple(ROWS))
    out += [f"trigger {n} is not the ledger's" for (n,) in extra if n not in OBJECTS]
    return out


def _create(conn: sqlite3.Connection) -> None:
    for sql in OBJECTS.values():
        conn.execute(sql)


def _migrate_v1(conn: sqlite3.Connection, path: Path) -> None:
    """v1 -> v2 in one transaction: rebuild forecasts and outcomes with the new columns (triggers and view dropped
    first, so a rename does not rewrite them), copy every row, recreate everything from ledger.schema."""
    for table, cols in V1_COLUMNS.items():
        got = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))
        if got != cols:
            raise LedgerError(f"ledger: {path} says schema v1 but its {table} columns are {got}; restore it from a copy")
    counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in V1_COLUMNS}
    print(f"ledger: migrating {path} from schema v1 to v{SCHEMA_VERSION} ({counts['forecasts']} forecasts, "
          f"{counts['outcomes']} closes; served interval = plain interval, adjustment 1)", file=sys.stderr)  # fmt: skip
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('trigger', 'view')").fetchall():
        kind = conn.execute("SELECT type FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
        conn.execute(f"DROP {kind.upper()} {name}")
    for table in V1_COLUMNS:
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_v1")
    _create(conn)
    for table, sql in MIGRATE_V1.items():
        conn.execute(sql)
        conn.execute(f"DROP TABLE {table}_v1")
        moved = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        if moved != counts[table]:
            raise LedgerError(f"ledger: migrating {path} moved {moved} of {counts[table]} {table} rows; nothing changed")


def open_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create (a new or empty file), migrate (v1), or check (v2) the schema; refuse anything else, naming it."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
    if version == SCHEMA_VERSION:
        wrong = schema_problems(conn)
        if wrong:
            raise LedgerError(
                f"ledger: {path} was altered outside the ledger ({'; '.join(wrong)}); the ledger will not "
                "recreate what was dropped over rows it cannot vouch for: restore the file from a copy, or move it aside"
            )
        return
    if version > SCHEMA_VERSION:
        raise LedgerError(f"ledger: {path} is schema v{version}, newer than this code's v{SCHEMA_VERSION}: update the code")
    if version not in (0, 1) or (version == 0 and tables):
        raise LedgerError(f"ledger: {path} holds tables but no ledger schema version (v{version}): is it a ledger?")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if version == 0:
            _create(conn)
        else:
            _migrate_v1(conn, path)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


class SqliteStore:
    """The embedded store (no server): one file, created with its schema on first use."""

    def __init__(self, path: Path | str = DEFAULT_DB):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30.0)
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"ledger: cannot open {self.path} ({exc}); check the path or pass --db") from None
        try:
            (check,) = self.conn.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            open_schema(self.conn, self.path)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise LedgerError(
                f"ledger: {self.path} is not a usable ledger (damaged: {exc}); move it aside (a new one is made) "
                "or restore it from a copy"
            ) from None
        except LedgerError:
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _insert(self, table: str, rows: Sequence) -> int:
        """All rows or none: a refused row rolls the whole batch back and is named in the error. The rules are
        checked first as DynamoStore checks them (one message), and again by the file's own CHECKs."""
        for row in rows:
            if err := refused(table, row):
                raise err
        columns = COLUMNS[table]
        sql = _insert_sql(table, columns)
        try:
            with self.conn:
                for row in rows:
                    try:
                        self.conn.execute(sql, tuple(asdict(row)[c] for c in columns))
                    except sqlite3.DatabaseError as exc:
                        what = ", ".join(f"{k}={getattr(row, k)}" for k in KEYS[table])
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
        return self._insert("forecasts", forecasts)

    def add_outcomes(self, outcomes: Sequence[Outcome]) -> int:
        return self._insert("outcomes", outcomes)

    def add_skips(self, skips: Sequence[Skip]) -> int:
        """Record skips not recorded yet (a second run of the day re-finds the same ones: they are kept once)."""
        have = self.skip_keys()
        new = list({(s.ticker, s.as_of, s.model_version, s.reason_code): s for s in skips
                    if (s.ticker, s.as_of, s.model_version, s.reason_code) not in have}.values())  # fmt: skip
        return self._insert("skips", new)

    def skip_keys(self) -> set[tuple[str, str, str, str]]:
        return set(self.conn.execute("SELECT ticker, as_of, model_version, reason_code FROM skips"))

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
        return {t: self.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ROWS}
