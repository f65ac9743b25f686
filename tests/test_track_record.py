"""The Track record page in AppTest over a small ledger: it reads the ledger only, its view lives in the URL, and a
missing ledger says what to run."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import ledger.store
from dashboard import track_record
from ledger.store import Forecast, Outcome, Skip, SqliteStore
from tests.support import ROOT, SAMPLE_KEY

APP = str(ROOT / "dashboard" / "app.py")
PAGE = "views/track_record.py"


def make_ledger(path, days: int = 90) -> None:
    """AAPL and IBM replayed under v1 (every fifth close outside the band); AAPL under v2 replayed on its first 10
    days and live from 2026-11-02."""
    rng = np.random.default_rng(0)
    start = dt.date(2012, 1, 3)
    rows, outs = [], []
    for ticker, scale in (("AAPL", 100.0), ("IBM", 180.0)):
        for i in range(days):
            as_of, target = start + dt.timedelta(days=i), start + dt.timedelta(days=i + 1)
            last = scale * (1 + 0.001 * i)
            close = last * (1.05 if i % 5 == 0 else 1 + rng.normal(0, 0.005))
            rows.append(row(ticker, target, "v1", "2026-11-01T21:00:00Z", as_of, last, "snapshot"))
            if ticker == "AAPL" and i < 10:
                rows.append(row(ticker, target, "v2", "2026-11-02T20:00:00Z", as_of, last, "snapshot"))
            if (ticker, str(target)) not in {(o.ticker, o.date) for o in outs}:
                outs.append(Outcome(ticker, str(target), close, "snapshot", "2026-11-01T21:00:00Z"))
    for i in range(30):
        as_of, target = dt.date(2026, 11, 2) + dt.timedelta(days=i), dt.date(2026, 11, 2) + dt.timedelta(days=i + 1)
        rows.append(row("AAPL", target, "v2", f"{as_of}T21:00:00Z", as_of, 100.0, "yfinance"))
        outs.append(Outcome("AAPL", str(target), 100.5, "yfinance", f"{target}T21:00:00Z"))
    with SqliteStore(path) as s:
        s.record(rows)
        s.add_outcomes(outs)


def row(ticker, target, version, issued, as_of, last, source) -> Forecast:
    return Forecast(
        ticker, str(target), version, issued, str(as_of), last * 1.001, last * 0.98, last * 1.02, 0.8, last, 0.01, 0.55,
        source, "00" * 32, 0.012, last * 0.979, last * 1.021, last * 0.978, last * 1.022, last * 0.98, last * 1.02,
    )  # fmt: skip


@pytest.fixture
def ledger_db(tmp_path, monkeypatch):
    db = tmp_path / "ledger.sqlite"
    monkeypatch.setattr(ledger.store, "DEFAULT_DB", db)
    return db


def page(params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["endpoint_url"] = "http://127.0.0.1:9/prod"  # the page never calls the endpoint
    at.session_state["endpoint_key"] = SAMPLE_KEY
    at.run()
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_without_a_ledger_it_says_what_to_run(ledger_db):
    at = page()
    assert any("make ledger" in i.value for i in at.info)
    assert not ledger_db.exists(), "the page must never create (write) the ledger"


def test_an_empty_ledger_file_says_what_it_is_not_a_redacted_error(ledger_db):
    """Finding 11: `sqlite3 .local/ledger.sqlite "SELECT ..."` before `make ledger` leaves a 0-byte file."""
    ledger_db.touch()
    at = page()
    assert any("is empty" in i.value and "make ledger" in i.value for i in at.info)


def test_a_skipped_day_is_shown_with_its_reason(ledger_db):
    make_ledger(ledger_db)
    with SqliteStore(ledger_db) as s:
        s.add_skips([Skip("AAPL", "2026-11-20", "v2", "unit_jump", "close of 2026-11-21 not scored: x10", "t")])
    at = page({"track_ticker": "AAPL", "track_version": "v2", "track_record": "live"})
    assert any("Days skipped (1)" in h.value for h in at.subheader)
    shown = at.dataframe[0].value
    assert list(shown["reason_code"]) == ["unit_jump"] and "not scored" in shown["detail"].iloc[0]


def test_the_page_shows_the_record_charts_and_alarms(ledger_db):
    make_ledger(ledger_db)
    before = ledger_db.read_bytes()
    at = page()
    assert at.title[0].value == "Track record"
    assert at.selectbox(key="track_ticker").value == "AAPL"
    assert len(at.get("plotly_chart")) == 3
    labels = {m.label: m.value for m in at.metric}
    assert labels["scored forecasts"] == "90"
    assert labels["coverage (80% interval)"] == "80.0%"  # every fifth close at +5% breaches the ±2% band
    alarms = [e.value for e in at.error] + [s.value for s in at.success]
    # the three alarms of the served interval, and Kupiec had the model's own interval been served
    assert len(alarms) == 4 and any("had the model's own interval been served" in a for a in alarms)
    assert any(t.value.startswith("Served interval: the model's own") for t in at.text)
    assert ledger_db.read_bytes() == before


def test_the_scorecard_reads_as_make_ledger_prints_it(ledger_db):
    """Same columns, same formatting (coverage as a percentage, ratios to 4 places) as `make ledger`'s table."""
    from ledger import read, report

    make_ledger(ledger_db)
    at = page()
    shown = at.dataframe[0].value
    assert list(shown.columns) == list(read.SCORECARD_COLUMNS)
    card = next(c for c in read.scorecard(ledger_db) if c["ticker"] == "AAPL" and c["model_version"] == "v1")
    printed = report.format_scorecard([card]).splitlines()[2]
    assert printed == "| " + " | ".join(str(v) for v in shown.iloc[0].tolist()) + " |"
    assert shown.iloc[0]["coverage"] == "80.0%" and shown.iloc[0]["n"] == "90"


def test_the_view_comes_from_the_url_and_goes_back_to_it(ledger_db):
    make_ledger(ledger_db)
    at = page({"track_ticker": "IBM"})
    assert at.selectbox(key="track_ticker").value == "IBM"
    assert at.query_params["track_ticker"] == ["IBM"] or at.query_params["track_ticker"] == "IBM"
    at.selectbox(key="track_ticker").set_value("AAPL").run()
    assert at.selectbox(key="track_ticker").value == "AAPL"
    assert "AAPL" in str(at.query_params["track_ticker"])


def test_a_live_version_shows_its_record_from_its_deploy_date(ledger_db):
    make_ledger(ledger_db)
    at = page({"track_version": "v2", "track_record": "live"})
    texts = [t.value for t in at.text]
    assert any("live from 2026-11-02" in t for t in texts)
    assert {m.label: m.value for m in at.metric}["scored forecasts"] == "30"


def test_a_replay_of_your_own_prices_is_never_the_live_record(ledger_db):
    """`ledger.replay --prices` into the same file: its rows (source "file") have their own record; the live record
    and its deploy date stay the market data's (found by the new-user pass: a user's file read as live)."""
    from ledger import live, read, replay

    make_ledger(ledger_db)
    start = dt.date(2011, 3, 17)  # earlier than v2's first live day
    rows = [
        row("FRUIT", start + dt.timedelta(days=i + 1), "v2", "2026-12-01T21:00:00Z", start + dt.timedelta(days=i), 50.0, "file")
        for i in range(20)
    ]
    outs = [Outcome("FRUIT", str(start + dt.timedelta(days=i + 1)), 50.2, "file", "2026-12-01T21:00:00Z") for i in range(20)]
    with SqliteStore(ledger_db) as s:
        s.record(rows)
        s.add_outcomes(outs)
    assert read.RECORD_SOURCE == {"replay": replay.SOURCE, "live": live.SOURCE, "file": replay.FILE_SOURCE}
    assert read.deploy_date(ledger_db, "v2") == "2026-11-02"
    assert read.view(ledger_db, "FRUIT", "v2", "live")["card"] is None
    assert read.view(ledger_db, "FRUIT", "v2", "file")["card"]["n"] == 20
    assert read.view(ledger_db, "AAPL", "v2", "live")["card"]["n"] == 30


def test_unknown_url_values_fall_back_to_what_the_ledger_holds():
    view = track_record.parse_view({"track_ticker": "<b>x</b>", "track_version": "v9"}, ["AAPL"], ["v1"], ["replay", "live"])
    assert view == {"ticker": "AAPL", "version": "v1", "record": "replay"}


def test_hostile_ledger_strings_are_shown_as_text_never_markdown(ledger_db):
    """A ticker or version in the ledger that looks like Markdown or HTML reaches the page only as text."""
    import dataclasses

    hostile_version = "[click](http://evil.example) <b>v</b>"
    with SqliteStore(ledger_db) as s:
        rows = [
            dataclasses.replace(
                row(
                    "AAPL", f"2012-01-{d:02d}", hostile_version, "2026-11-01T21:00:00Z", f"2012-01-{d - 1:02d}", 100.0, "snapshot"
                ),
                ticker="**AAPL**",
            )
            for d in range(4, 28)
        ]
        s.record(rows)
        s.add_outcomes([Outcome("**AAPL**", r.target_date, 100.5, "snapshot", "t") for r in rows])
    at = page()
    markdown = "\n".join(str(m.value) for m in at.markdown) + "\n".join(str(e.value) for e in [*at.error, *at.success, *at.info])
    assert "evil.example" not in markdown and "**AAPL**" not in markdown
    assert any(hostile_version in t.value for t in at.text)
    assert at.selectbox(key="track_ticker").value == "**AAPL**"
