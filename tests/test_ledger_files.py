"""The ledger file and its readers: the live view starts at the first live forecast's as-of day; an empty, damaged
or missing file is one clear line for the page, the reader and the replay; the reader stays read-only whatever the
path holds (LEDGER_DB with "#" or "?")."""

from __future__ import annotations

import os
import sqlite3

import pytest

from ledger import read, replay
from ledger.store import LedgerError, Outcome, SqliteStore
from tests.test_ledger import fc


def test_the_live_view_starts_at_the_first_live_forecasts_as_of_day(tmp_path):
    """Finding 10: issued at 21:30 New York time on 2 November is 02:30 UTC on the 3rd; its as-of day is the 2nd."""
    db = tmp_path / "l.sqlite"
    with SqliteStore(db) as s:
        s.record([fc(target="2026-11-03", as_of="2026-11-02", source="yfinance", issued_at="2026-11-03T02:30:00Z"),
                  fc(target="2026-11-04", as_of="2026-11-03", source="yfinance", issued_at="2026-11-04T02:30:00Z")])  # fmt: skip
        s.add_outcomes([Outcome("AAPL", d, 101.0, "yfinance", "t") for d in ("2026-11-03", "2026-11-04")])
    shown = read.view(db, "AAPL", "v1", "live")
    assert shown["deployed"] == "2026-11-02"
    assert list(shown["series"]["target_date"]) == ["2026-11-03", "2026-11-04"]


def test_an_empty_ledger_file_says_what_it_is_and_what_to_do(tmp_path):
    """Finding 11: the README's own sqlite3 command, run before `make ledger`, leaves a 0-byte file."""
    db = tmp_path / "ledger.sqlite"
    db.touch()
    with pytest.raises(read.NoLedger, match="is empty .*run `make ledger`"):
        read.tickers(db)


def damaged(tmp_path):
    """A real ledger with one page in its middle zeroed, as a torn disk write leaves it."""
    db = tmp_path / "ledger.sqlite"
    with SqliteStore(db) as s:
        s.record([fc(target=f"20{y:02d}-0{m}-1{d}", as_of=f"20{y:02d}-0{m}-0{d}", input_hash=f"{y}{m}{d}" * 20)
                  for y in range(10, 30) for m in range(1, 10) for d in range(1, 10)])  # fmt: skip
    size = db.stat().st_size
    assert size > 40 * 4096
    with open(db, "r+b") as f:
        f.seek((size // 4096 // 2) * 4096)
        f.write(b"\0" * 4096)
    return db


def test_a_damaged_ledger_is_one_line_for_the_store_the_reader_and_the_replay(tmp_path, capsys):
    db = damaged(tmp_path)
    with pytest.raises(LedgerError, match="is not a usable ledger .*damaged"):
        SqliteStore(db)
    with pytest.raises(read.NoLedger, match="cannot be read .*damaged"):
        read.scored(db)
    with pytest.raises(SystemExit, match="not a usable ledger"):
        replay.main(["--db", str(db), "--url", "http://127.0.0.1:9/prod", "--key", "k" * 20])
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("name", ["led#ger.sqlite", "led?ger.sqlite", "a#b?mode=rwc.sqlite"])
def test_the_reader_is_read_only_for_any_path(tmp_path, name):
    """Finding 12: an unescaped "#" or "?" cut the URI, so the reader opened (and created) another file, read-write."""
    folder = tmp_path / "d"
    folder.mkdir()
    db = folder / name
    with SqliteStore(db) as s:
        s.record([fc()])
    before = sorted(os.listdir(folder))
    assert read.tickers(db) == ["AAPL"]
    with read._connect(db) as conn, pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("CREATE TABLE t (x)")
    assert sorted(os.listdir(folder)) == before, "the reader created no other file"
