"""The ledger's one schema definition: the rows (dataclasses), their columns, and the rules every store enforces.

SQLite gets the rules as CHECK constraints generated from RULES; DynamoDB (which has none) gets the same RULES as
Python predicates, checked before any put (`problems`). A test walks RULES and proves both stores refuse each one.

Schema v2 (shared by the live job and the per-ticker calibration):
- forecasts.plain_low / plain_high: the model's own interval before any calibration; low / high keep what was
  served. calibration: NULL when the plain interval was served, else the API's interval.calibration as JSON
  ({"method", "factor", "as_of", "n"}).
- outcomes.adjustment: close = the fetched close x adjustment, i.e. the close in the units the forecasts for that
  day were made in (a split between the forecast and the fetch changes yfinance's adjusted history; see ledger.units).
- skips: a ticker the daily job left out for a day, and why (insert-only, as the rest).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, fields

SCHEMA_VERSION = 2
MAX_REAL = "1.7976931348623157e308"  # SQLite stores +-Infinity as a REAL beyond this; NaN binds as NULL
EARLIEST_CLOSE_UTC = "T17:00:00Z"  # the earliest an NYSE session can close, in UTC: a 13:00 early close in EDT


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
    plain_low: float
    plain_high: float
    calibration: str | None = None


@dataclass(frozen=True)
class Outcome:
    """One realised close, in the units of the forecasts that target it (fetched close x adjustment)."""

    ticker: str
    date: str
    close: float
    source: str
    fetched_at: str
    adjustment: float = 1.0


@dataclass(frozen=True)
class Skip:
    """A ticker the daily job did not forecast or score for a day, and why."""

    ticker: str
    as_of: str
    model_version: str
    reason_code: str
    detail: str
    recorded_at: str


# column -> its SQLite declaration; the order and the names must be the dataclass's (checked below)
_TYPES = {
    "forecasts": {
        "ticker": "TEXT NOT NULL",
        "target_date": "TEXT NOT NULL",
        "model_version": "TEXT NOT NULL",
        "issued_at": "TEXT NOT NULL",  # UTC, ISO 8601, when the API answered
        "as_of": "TEXT NOT NULL",  # the last day of data the forecast saw
        "prediction": "REAL NOT NULL",  # the target day's close, price units
        "low": "REAL NOT NULL",  # the interval served (calibrated or plain)
        "high": "REAL NOT NULL",
        "level": "REAL NOT NULL",
        "last_close": "REAL NOT NULL",  # the close of as_of, in the data's units then
        "volatility": "REAL",  # the served risk model's volatility (log return, one day)
        "confidence": "REAL NOT NULL",
        "source": "TEXT NOT NULL",  # where the input data came from: snapshot | yfinance
        "input_hash": "TEXT NOT NULL",  # sha256 of the 600 numbers sent
        "vol20": "REAL NOT NULL",  # rolling 20-day volatility at as_of (the baselines' scale, the terciles)
        "rolling_low": "REAL NOT NULL",  # baseline: naive point, rolling-volatility interval, same level, same data
        "rolling_high": "REAL NOT NULL",
        "garch_low": "REAL NOT NULL",  # baseline: naive point, GARCH(1,1) interval
        "garch_high": "REAL NOT NULL",
        "plain_low": "REAL NOT NULL",  # the model's own interval, before any calibration
        "plain_high": "REAL NOT NULL",
        "calibration": "TEXT",  # NULL: the plain interval was served; else the API's interval.calibration, JSON
    },
    "outcomes": {
        "ticker": "TEXT NOT NULL",
        "date": "TEXT NOT NULL",
        "close": "REAL NOT NULL",
        "source": "TEXT NOT NULL",
        "fetched_at": "TEXT NOT NULL",
        "adjustment": "REAL NOT NULL DEFAULT 1",
    },
    "skips": {
        "ticker": "TEXT NOT NULL",
        "as_of": "TEXT NOT NULL",
        "model_version": "TEXT NOT NULL",
        "reason_code": "TEXT NOT NULL",
        "detail": "TEXT NOT NULL",
        "recorded_at": "TEXT NOT NULL",
    },
}
ROWS = {"forecasts": Forecast, "outcomes": Outcome, "skips": Skip}
KEYS = {
    "forecasts": ("ticker", "target_date", "model_version"),
    "outcomes": ("ticker", "date"),
    "skips": ("ticker", "as_of", "model_version", "reason_code"),
}
COLUMNS = {table: tuple(f.name for f in fields(cls)) for table, cls in ROWS.items()}
for _table, _cls in ROWS.items():
    assert tuple(_TYPES[_table]) == COLUMNS[_table], f"schema: {_table} columns differ from {_cls.__name__}"


# --- the rules: one SQL CHECK and one Python predicate each ---------------------------------------------------------


def _num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _date(v) -> bool:
    return isinstance(v, str) and len(v) == 10 and v[4] == v[7] == "-" and (v[:4] + v[5:7] + v[8:]).isdigit()


def _json_or_null(v) -> bool:
    if v is None:
        return True
    try:
        return isinstance(v, str) and isinstance(json.loads(v), dict)
    except ValueError:
        return False


@dataclass(frozen=True)
class Rule:
    table: str
    name: str  # the constraint's name: what an error names
    sql: str
    ok: Callable[[dict], bool]


def _finite(table: str, col: str, nullable: bool = False) -> Rule:
    sql = f"{col} BETWEEN -{MAX_REAL} AND {MAX_REAL}"
    return Rule(table, f"{col}_finite", f"{col} IS NULL OR ({sql})" if nullable else sql,
                lambda r: (nullable and r[col] is None) or _num(r[col]))  # fmt: skip


_DATE_GLOB = "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'"
_FORECAST_REALS = ("prediction", "low", "high", "level", "last_close", "confidence", "vol20", "rolling_low",
                   "rolling_high", "garch_low", "garch_high", "plain_low", "plain_high")  # fmt: skip

RULES: tuple[Rule, ...] = (
    Rule("forecasts", "target_date_is_a_date", f"target_date GLOB {_DATE_GLOB}", lambda r: _date(r["target_date"])),
    Rule("forecasts", "as_of_is_a_date", f"as_of GLOB {_DATE_GLOB}", lambda r: _date(r["as_of"])),
    Rule("forecasts", "as_of_before_target", "as_of < target_date", lambda r: r["as_of"] < r["target_date"]),
    *(_finite("forecasts", c) for c in _FORECAST_REALS),
    _finite("forecasts", "volatility", nullable=True),
    Rule("forecasts", "low_not_above_high", "low <= high", lambda r: r["low"] <= r["high"]),
    Rule(
        "forecasts", "plain_low_not_above_plain_high", "plain_low <= plain_high", lambda r: r["plain_low"] <= r["plain_high"]
    ),  # fmt: skip
    Rule("forecasts", "level_between_0_and_1", "level > 0 AND level < 1", lambda r: 0 < r["level"] < 1),
    Rule("forecasts", "last_close_positive", "last_close > 0", lambda r: r["last_close"] > 0),
    Rule(
        "forecasts",
        "calibration_is_json_or_null",
        "calibration IS NULL OR (json_valid(calibration) AND json_type(calibration) = 'object')",
        lambda r: _json_or_null(r["calibration"]),
    ),  # fmt: skip
    # a live forecast is issued before its target session can close (replayed ones are made after the fact)
    Rule(
        "forecasts",
        "live_issued_before_target_close",
        f"source != 'yfinance' OR issued_at < target_date || '{EARLIEST_CLOSE_UTC}'",
        lambda r: r["source"] != "yfinance" or r["issued_at"] < r["target_date"] + EARLIEST_CLOSE_UTC,
    ),  # fmt: skip
    Rule("outcomes", "date_is_a_date", f"date GLOB {_DATE_GLOB}", lambda r: _date(r["date"])),
    _finite("outcomes", "close"),
    Rule("outcomes", "close_positive", "close > 0", lambda r: r["close"] > 0),
    _finite("outcomes", "adjustment"),
    Rule("outcomes", "adjustment_positive", "adjustment > 0", lambda r: r["adjustment"] > 0),
    Rule("skips", "as_of_is_a_date", f"as_of GLOB {_DATE_GLOB}", lambda r: _date(r["as_of"])),
)


def problems(table: str, row: dict) -> list[str]:
    """The names of the rules this row breaks (none: the row may be written). NOT NULL is a rule too."""
    notnull = [c for c, decl in _TYPES[table].items() if "NOT NULL" in decl and row.get(c) is None]
    if notnull:
        return [f"{c}_not_null" for c in notnull]
    out = []
    for rule in RULES:
        if rule.table == table:
            try:
                good = rule.ok(row)
            except TypeError:  # a string where a number belongs, or the reverse
                good = False
            if not good:
                out.append(rule.name)
    return out


# --- the SQLite schema, generated --------------------------------------------------------------------------------


def _table_ddl(table: str) -> str:
    cols = [f"    {c} {decl}" for c, decl in _TYPES[table].items()]
    checks = [f"    CONSTRAINT {r.name} CHECK ({r.sql})" for r in RULES if r.table == table]
    key = f"    PRIMARY KEY ({', '.join(KEYS[table])})"
    return f"CREATE TABLE {table} (\n" + ",\n".join([*cols, *checks, key]) + "\n)"


def _insert_once(table: str) -> str:
    match = " AND ".join(f"x.{k} = NEW.{k}" for k in KEYS[table])
    return (
        f"CREATE TRIGGER {table}_insert_once BEFORE INSERT ON {table}\n"
        f"WHEN EXISTS (SELECT 1 FROM {table} x WHERE {match})\n"
        f"BEGIN SELECT RAISE(ABORT, 'ledger: this {table[:-1]} is already recorded; the ledger never overwrites'); END"
    )


def _no(table: str, verb: str) -> str:
    return (
        f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}\n"
        f"BEGIN SELECT RAISE(ABORT, 'ledger: {table} are insert-only; a recorded row is never changed'); END"
    )


# name -> CREATE statement, in creation order; `sqlite_master.sql` must hold exactly these (ledger.store checks)
OBJECTS: dict[str, str] = {}
for _table in ROWS:
    OBJECTS[_table] = _table_ddl(_table)
for _table in ROWS:
    OBJECTS[f"{_table}_insert_once"] = _insert_once(_table)
    OBJECTS[f"{_table}_no_update"] = _no(_table, "UPDATE")
    OBJECTS[f"{_table}_no_delete"] = _no(_table, "DELETE")
OBJECTS["scored"] = (
    "CREATE VIEW scored AS\n"
    "SELECT f.*, o.close AS close, o.adjustment AS adjustment, o.source AS outcome_source, o.fetched_at\n"
    "FROM forecasts f JOIN outcomes o ON o.ticker = f.ticker AND o.date = f.target_date"
)

# v1 -> v2: the v1 service served the plain interval, so plain = served and no calibration; closes had no adjustment
MIGRATE_V1 = {
    "forecasts": "INSERT INTO forecasts SELECT *, low, high, NULL FROM forecasts_v1",
    "outcomes": "INSERT INTO outcomes SELECT *, 1.0 FROM outcomes_v1",
}
V1_COLUMNS = {"forecasts": COLUMNS["forecasts"][:-3], "outcomes": COLUMNS["outcomes"][:-1]}


def normalized(sql: str | None) -> str:
    return " ".join((sql or "").split())
