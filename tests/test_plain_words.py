"""Plain words on every page: no snake_case identifiers, module names or file paths in what a visitor reads, apart from
the "For developers" expanders (issue 29). AppTest reads each page's elements, as the browser would show them."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.support import ROOT, SAMPLE_KEY

APP = str(ROOT / "dashboard" / "app.py")
SNAKE = re.compile(r"(?<![\w/.\-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
MODULE = re.compile(r"\b(?:models|dashboard|ledger|deployer|local_api|benchmarks|scripts|lambda_handler)\.[a-z_]+\b")
PATH = re.compile(r"\b[\w.\-]+\.(?:py|json|jsonl|yaml|yml|sqlite|toml|gz|pth|pkl|onnx|zip)\b|(?:\.?[\w\-]+/)+[\w.\-]+\.[a-z]+\b")
URL = re.compile(r"https?://\S+")
ALLOWED = {"x86_64"}  # AWS's own name for the architecture, as the console and the CLI spell it
TEXT_KINDS = ("markdown", "caption", "text", "code", "info", "warning", "error", "success", "title", "subheader", "header")
WIDGETS = ("multiselect", "selectbox", "radio", "slider", "select_slider", "number_input", "text_input", "toggle")
WIDGETS += ("checkbox", "button", "date_input", "button_group", "metric")


def developers_only(at: AppTest) -> set[int]:
    """The elements inside an expander labelled "For developers...": the one place developer words may appear."""
    inside = set()
    for box in at.expander:
        if str(box.label).lower().startswith("for developers"):
            for kind in (*TEXT_KINDS, *WIDGETS, "dataframe"):
                inside |= {id(e) for e in getattr(box, kind)}
    return inside


def visible_text(at: AppTest) -> list[tuple[str, str]]:
    """(where, text) for every string a visitor can read outside the developers' expanders, unescaped."""
    hidden, out = developers_only(at), []
    for kind in TEXT_KINDS:
        out += [(kind, str(e.value)) for e in getattr(at, kind) if id(e) not in hidden]
    for kind in WIDGETS:
        for w in getattr(at, kind):
            if id(w) not in hidden:
                out += [(f"{kind} {a}", str(getattr(w, a))) for a in ("label", "help", "value") if getattr(w, a, None)]
                out += [(f"{kind} option", str(o)) for o in getattr(w, "options", []) or []]
    for d in at.dataframe:
        if id(d) in hidden or not isinstance(d.value, pd.DataFrame):
            continue
        out += [("table header", str(c)) for c in d.value.columns]
        out += [("table cell", str(v)) for c in d.value.columns if d.value[c].dtype == object for v in d.value[c]]
    return [(where, re.sub(r"\\(.)", r"\1", text)) for where, text in out]


def developer_words(at: AppTest) -> list[tuple[str, str, str]]:
    found = []
    for where, text in visible_text(at):
        bare = URL.sub("", text)
        for rx in (SNAKE, MODULE, PATH):
            found += [(where, m.group(), text[:100]) for m in rx.finditer(bare) if m.group() not in ALLOWED]
    return found


def open_page(url: str, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["endpoint_url"], at.session_state["endpoint_key"] = url, SAMPLE_KEY
    at.session_state["data_source"] = "bundled snapshot"
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.integration
@pytest.mark.parametrize("page", ["views/forecast.py", "views/cost_monitor.py", "views/deploy.py", "views/model.py"])
def test_no_page_shows_developer_words_outside_the_developers_expander(local_api, page):
    at = open_page(local_api.url, page)
    assert len(visible_text(at)) > 10, "the scan read nothing: the page did not draw"
    assert developer_words(at) == []


def test_the_track_record_page_speaks_plainly_without_a_ledger(tmp_path, monkeypatch):
    import ledger.store

    monkeypatch.setattr(ledger.store, "DEFAULT_DB", tmp_path / "ledger.sqlite")
    at = open_page("http://127.0.0.1:9/prod", "views/track_record.py")
    assert any("make ledger" in i.value for i in at.info)
    assert developer_words(at) == []


def test_the_track_record_page_speaks_plainly_over_a_ledger(tmp_path, monkeypatch):
    """With a ledger: its charts, alarms and scorecard, and no file path or module name (the scorecard's columns are
    the words `make ledger` prints)."""
    import ledger.store
    from tests.test_track_record import make_ledger

    db = tmp_path / "ledger.sqlite"
    monkeypatch.setattr(ledger.store, "DEFAULT_DB", db)
    make_ledger(db)
    at = open_page("http://127.0.0.1:9/prod", "views/track_record.py")
    assert len(at.metric) >= 4
    assert developer_words(at) == []


def test_the_scan_finds_what_it_is_for():
    """The patterns catch each kind of developer word the issue found, and pass plain prose."""
    words = [
        "snake_case feature names (log_return, range_hl, volume_ratio20)",
        "only the evaluation (models.evaluate) has",
        "a ledger at /work/x/.local/ledger.sqlite",
        "benchmarks/results.json and template.yaml",
    ]
    hits = [m.group() for w in words for rx in (SNAKE, MODULE, PATH) for m in rx.finditer(URL.sub("", w))]
    assert {"snake_case", "log_return", "range_hl", "volume_ratio20", "models.evaluate", "template.yaml"} <= set(hits)
    assert any("ledger.sqlite" in h for h in hits) and any("results.json" in h for h in hits)
    plain = "The forecast for 2013-03-01 (target day), 80% range 56.23 to 58.97: see https://docs.aws.amazon.com/a_b.html"
    assert [m.group() for rx in (SNAKE, MODULE, PATH) for m in rx.finditer(URL.sub("", plain))] == []
