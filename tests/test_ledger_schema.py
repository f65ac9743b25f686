"""Schema v2: one definition (ledger.schema) for the rows, the columns and the rules; a v1 file migrated once with
its triggers still holding; a file altered behind the ledger's back refused on open, naming what changed."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3

import pytest

from ledger import schema
from ledger.store import DuplicateError, LedgerError, Outcome, Skip, SqliteStore
from tests.test_ledger import fc

# the v1 schema as ledger/store.py shipped it (commit 7385017), to build a v1 file
V1_SCHEMA = """
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

V1_ROW = ("AAPL", "2016-01-05", "v1", "2026-11-30T12:00:00Z", "2016-01-04", 101.0, 98.0, 104.0, 0.8, 100.0, 0.01, 0.6,
          "snapshot", "ab" * 32, 0.012, 97.0, 103.0, 96.0, 104.0)  # fmt: skip


def v1_file(path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(f"INSERT INTO forecasts VALUES ({', '.join('?' * len(V1_ROW))})", V1_ROW)
        conn.execute("INSERT INTO outcomes VALUES ('AAPL', '2016-01-05', 102.0, 'snapshot', 't')")
    conn.close()


def test_a_v1_file_migrates_once_keeping_every_row_and_its_triggers(tmp_path, capsys):
    db = tmp_path / "v1.sqlite"
    v1_file(db)
    with SqliteStore(db) as s:
        assert s.counts() == {"forecasts": 1, "outcomes": 1, "skips": 0}
        row = s.conn.execute("SELECT low, high, plain_low, plain_high, calibration FROM forecasts").fetchone()
        assert row == (98.0, 104.0, 98.0, 104.0, None)  # the v1 service served the plain interval
        assert s.conn.execute("SELECT close, adjustment FROM outcomes").fetchone() == (102.0, 1.0)
        assert s.conn.execute("PRAGMA user_version").fetchone() == (schema.SCHEMA_VERSION,)
        with pytest.raises(sqlite3.DatabaseError, match="insert-only"):
            s.conn.execute("UPDATE forecasts SET prediction = 1")
        with pytest.raises(DuplicateError):
            s.record([fc(version="v1")])
    assert "migrating" in capsys.readouterr().err
    with SqliteStore(db) as s:  # a second open changes nothing and says nothing
        assert s.counts()["forecasts"] == 1
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "sql, names",
    [
        ("DROP TABLE outcomes", "outcomes is missing"),
        ("ALTER TABLE forecasts DROP COLUMN input_hash", "forecasts was changed"),
        ("DROP TRIGGER forecasts_no_update", "forecasts_no_update is missing"),
        ("CREATE TRIGGER sneaky AFTER INSERT ON skips BEGIN SELECT 1; END", "trigger sneaky is not the ledger's"),
        ("DROP VIEW scored", "scored is missing"),
    ],
)
def test_a_file_altered_behind_the_ledgers_back_is_refused_on_open(tmp_path, sql, names):
    db = tmp_path / "l.sqlite"
    with SqliteStore(db) as s:
        s.record([fc()])
    conn = sqlite3.connect(db)
    conn.execute("DROP VIEW scored") if "DROP COLUMN" in sql else None  # the view names every column
    conn.execute(sql)
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match=f"altered outside the ledger .*{names}"):
        SqliteStore(db)
    with sqlite3.connect(db) as conn:  # and nothing was recreated behind the user's back
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sneaky' OR sql IS NULL").fetchone()
    from ledger import read

    with pytest.raises(read.NoLedger, match=f"schema was changed .*{names}"):  # the page's reader refuses it too
        read.scorecard(db)


def test_the_reader_refuses_a_view_redefined_to_flatter_the_record(tmp_path):
    """The hostile pass: `scored` redefined so close reads the prediction made the reader show MAE 0."""
    from ledger import read

    db = tmp_path / "l.sqlite"
    with SqliteStore(db) as s:
        s.record([fc()])
    with sqlite3.connect(db) as conn:
        conn.execute("DROP VIEW scored")
        conn.execute(
            "CREATE VIEW scored AS SELECT f.*, f.prediction AS close, o.adjustment AS adjustment, "
            "o.source AS outcome_source, o.fetched_at FROM forecasts f JOIN outcomes o "
            "ON o.ticker = f.ticker AND o.date = f.target_date"
        )
    with pytest.raises(read.NoLedger, match="scored was changed"):
        read.scorecard(db)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 0")
    with pytest.raises(read.NoLedger, match="schema"):
        read.tickers(db)


def test_a_newer_schema_is_refused(tmp_path):
    db = tmp_path / "l.sqlite"
    SqliteStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 9")
    with pytest.raises(LedgerError, match="schema v9, newer"):
        SqliteStore(db)


def test_a_database_that_is_not_a_ledger_is_refused(tmp_path):
    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(LedgerError, match="is it a ledger"):
        SqliteStore(db)


def test_an_empty_file_becomes_a_ledger(tmp_path):
    db = tmp_path / "empty.sqlite"
    db.touch()  # what `sqlite3 ledger.sqlite "SELECT ..."` leaves behind before any ledger exists
    with SqliteStore(db) as s:
        assert s.counts() == {"forecasts": 0, "outcomes": 0, "skips": 0}


# --- the rules: each one refused, with its name, by the Python check and by the file's own CHECK ---------------------

BREAK = {  # rule -> a change to a valid row that breaks only that rule
    "target_date_is_a_date": {"target_date": "2016-1-5"},
    "as_of_is_a_date": {"as_of": "2016 01 04"},
    "as_of_before_target": {"as_of": "2016-01-06"},
    "volatility_finite": {"volatility": math.inf},
    "low_not_above_high": {"low": 105.0},
    "plain_low_not_above_plain_high": {"plain_low": 105.0},
    "level_between_0_and_1": {"level": 80.0},
    "last_close_positive": {"last_close": -5.0},
    "calibration_is_json_or_null": {"calibration": "[1, 2]"},
    "live_issued_before_target_close": {"source": "yfinance", "issued_at": "2016-01-05T21:00:00Z"},
    **{f"{c}_finite": {c: math.inf} for c in schema._FORECAST_REALS if c not in ("low", "high", "plain_low", "plain_high")},
    "low_finite": {"low": -math.inf},
    "high_finite": {"high": math.inf},
    "plain_low_finite": {"plain_low": -math.inf},
    "plain_high_finite": {"plain_high": math.inf},
    "date_is_a_date": {"date": "05/01/2016"},
    "close_finite": {"close": math.inf},
    "close_positive": {"close": 0.0},
    "adjustment_finite": {"adjustment": math.inf},
    "adjustment_positive": {"adjustment": -1.0},
    "skips:as_of_is_a_date": {"as_of": "today"},
}


def good(table: str):
    if table == "forecasts":
        return fc()
    if table == "outcomes":
        return Outcome("AAPL", "2016-01-05", 102.0, "yfinance", "t")
    return Skip("AAPL", "2016-01-04", "v1", "bad_price", "close 0 on 2016-01-04", "t")


def broken(rule: schema.Rule):
    change = BREAK.get(f"{rule.table}:{rule.name}") or BREAK[rule.name]
    return dataclasses.replace(good(rule.table), **change)


def test_every_rule_has_a_breaking_row():
    assert {f"{r.table}:{r.name}" for r in schema.RULES} == {
        f"{r.table}:{r.name}" for r in schema.RULES if f"{r.table}:{r.name}" in BREAK or r.name in BREAK
    }


@pytest.mark.parametrize("rule", schema.RULES, ids=lambda r: f"{r.table}:{r.name}")
def test_sqlite_refuses_each_rule_in_python_and_in_the_file(tmp_path, rule):
    row = broken(rule)
    assert rule.name in schema.problems(rule.table, dataclasses.asdict(row))
    with SqliteStore(tmp_path / "l.sqlite") as s:
        adder = {"forecasts": s.record, "outcomes": s.add_outcomes, "skips": s.add_skips}[rule.table]
        with pytest.raises(LedgerError, match=f"breaks {rule.name}"):
            adder([row])
        cols = schema.COLUMNS[rule.table]  # the same row straight into the file, as a sqlite3 user would
        with pytest.raises(sqlite3.IntegrityError, match=rule.name):
            s.conn.execute(
                f"INSERT INTO {rule.table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                tuple(dataclasses.asdict(row)[c] for c in cols),
            )
        assert s.counts()[rule.table] == 0


def test_a_live_forecast_issued_the_evening_before_is_accepted(tmp_path):
    with SqliteStore(tmp_path / "l.sqlite") as s:
        s.record([fc(source="yfinance", issued_at="2016-01-04T21:30:00Z")])
        assert s.counts()["forecasts"] == 1


def test_calibration_is_recorded_as_json(tmp_path):
    cal = json.dumps({"method": "aci", "factor": 1.2, "as_of": "2016-01-04", "n": 60})
    with SqliteStore(tmp_path / "l.sqlite") as s:
        s.record([fc(calibration=cal, plain_low=99.0, plain_high=103.0)])
        assert json.loads(s.conn.execute("SELECT calibration FROM forecasts").fetchone()[0])["method"] == "aci"


def test_skips_are_kept_once_and_never_changed(tmp_path):
    with SqliteStore(tmp_path / "l.sqlite") as s:
        assert s.add_skips([good("skips"), good("skips")]) == 1
        assert s.add_skips([good("skips")]) == 0  # a second run of the day finds the same skip
        with pytest.raises(sqlite3.DatabaseError, match="insert-only"):
            s.conn.execute("DELETE FROM skips")
        with pytest.raises(sqlite3.DatabaseError, match="already recorded"):
            s.conn.execute("INSERT OR REPLACE INTO skips SELECT * FROM skips")
