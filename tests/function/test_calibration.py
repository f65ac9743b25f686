"""The per-ticker calibration state: applied where it is sound, the model's own interval (labelled "none") wherever it
is not, picked up without a restart when the file changes, and never a failed prediction."""

from __future__ import annotations

import json
import math
import os
import time

import pytest

from tests.support import HTTP_SOURCES, call

NOW = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
NONE = {"method": "none", "factor": 1.0, "as_of": None, "n": 0}


def state(handler, **over) -> dict:
    doc = {
        "version": 1,
        "model_version": handler.MODEL.version,
        "written_at": NOW,
        "method": "aci",
        "tickers": {
            "AAPL": {"factor": 1.25, "as_of": "2013-02-28", "n": 474},
            "IBM": {"factor": 1.0, "as_of": "2013-02-28", "n": 12, "method": "none"},
        },
    }
    doc.update(over)
    return doc


@pytest.fixture
def calibrated(handler, tmp_path, monkeypatch):
    """The function reading a state file at tmp_path, as the local API configures it; restored afterwards."""
    path = tmp_path / "calibration.json"
    monkeypatch.setattr(handler, "CALIBRATION", handler.State(str(path), handler.MODEL.version))

    def write(doc) -> None:
        tmp = path.with_name("next.json")
        tmp.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        os.replace(tmp, path)  # as the ledger writes it: a reader sees the old state or the new, never half

    return write


def half_width(body: dict) -> float:
    return math.log(body["interval"]["high"] / body["interval"]["low"]) / 2


def test_a_calibrated_ticker_gets_its_factor_and_says_so(handler, calibrated, features):
    plain = handler.lambda_handler({"ticker": "AAPL", "features": features}, None)
    assert plain["interval"]["calibration"] == NONE  # no file yet: the model's own interval, labelled
    calibrated(state(handler))
    body = handler.lambda_handler({"ticker": "AAPL", "features": features}, None)
    assert body["interval"]["calibration"] == {"method": "aci", "factor": 1.25, "as_of": "2013-02-28", "n": 474}
    assert half_width(body) == pytest.approx(1.25 * half_width(plain), rel=1e-9)
    assert body["prediction"] == plain["prediction"] and body["confidence"] == plain["confidence"]


def test_a_change_is_picked_up_without_a_restart(handler, calibrated, features):
    calibrated(state(handler))
    first = handler.lambda_handler({"ticker": "AAPL", "features": features}, None)
    calibrated(state(handler, tickers={"AAPL": {"factor": 0.8, "as_of": "2013-03-01", "n": 475}}))
    second = handler.lambda_handler({"ticker": "AAPL", "features": features}, None)
    assert second["interval"]["calibration"]["factor"] == 0.8
    assert half_width(second) == pytest.approx(0.8 / 1.25 * half_width(first), rel=1e-9)


def test_a_ticker_with_too_little_record_or_none_gets_the_plain_interval_labelled(handler, keyed, calibrated, features):
    calibrated(state(handler))
    status, _, body = call(handler, HTTP_SOURCES["http_api"]({"instances": [
        {"ticker": t, "features": features} for t in ("AAPL", "IBM", "^GSPC")]}))  # fmt: skip
    assert status == 200
    labels = [p["interval"]["calibration"] for p in body["predictions"]]
    assert labels == [
        {"method": "aci", "factor": 1.25, "as_of": "2013-02-28", "n": 474},
        {"method": "none", "factor": 1.0, "as_of": "2013-02-28", "n": 12},
        NONE,
    ]
    plain = half_width(body["predictions"][2])
    assert half_width(body["predictions"][0]) == pytest.approx(1.25 * plain, rel=1e-9)
    assert half_width(body["predictions"][1]) == pytest.approx(plain, rel=1e-12)


@pytest.mark.parametrize(
    "doc",
    [
        "not json {",
        "[]",
        {"model_version": "someone-else"},
        {"written_at": "2020-01-01T00:00:00Z"},  # stale: the daily job stopped
        {"written_at": "yesterday"},
        {"method": "none"},
        {"tickers": {"AAPL": {"factor": 9.0, "as_of": "2013-02-28", "n": 474}}},
        {"tickers": {"AAPL": {"factor": float("nan"), "as_of": "2013-02-28", "n": 474}}},
        {"tickers": {"AAPL": {"factor": "1.2", "as_of": "2013-02-28", "n": 474}}},
        {"tickers": {"AAPL": {"factor": 1.2, "as_of": "2013-02-28", "n": -1}}},
        {"tickers": ["AAPL"]},
        '{"tickers": ' + "[" * 50000 + "]" * 50000 + "}",  # RecursionError in json.loads (the hostile pass)
        '{"model_version": "v", "tickers": {"AAPL": {"factor": 1' + "0" * 400 + ', "n": 5}}}',
        {"tickers": {"AAPL": {"factor": 10**400, "as_of": "2013-02-28", "n": 474}}},  # OverflowError in isfinite
        {"tickers": {"AAPL": {"factor": 1.2, "as_of": "2013-02-28", "n": 2**64}}},  # would not serialise
        {"method": "x" * (1 << 20)},  # echoed in every answer: 64 a batch passed Lambda's 6 MB
        {"method": "aci<script>"},
        {"written_at": "2099-01-01T00:00:00Z"},  # a wrong clock must not make a state fresh forever
    ],
    ids=[
        "bad-json",
        "not-an-object",
        "other-version",
        "stale",
        "bad-time",
        "method-none",
        "factor-huge",
        "factor-nan",
        "factor-string",
        "n-negative",
        "tickers-list",
        "deep-nesting",
        "factor-400-digits-raw",
        "factor-400-digits",
        "n-2**64",
        "method-1MiB",
        "method-markup",
        "written-in-the-future",
    ],  # fmt: skip
)
def test_a_missing_stale_or_unreadable_state_serves_the_plain_interval(handler, calibrated, features, doc):
    plain = handler.lambda_handler({"ticker": "AAPL", "features": features}, None)
    calibrated(doc if isinstance(doc, str) else (json.dumps(doc) if doc == [] else state(handler, **doc)))
    for _ in range(2):  # and the request after it: an unreadable state never sticks as a failure
        body = handler.lambda_handler({"ticker": "AAPL", "features": features}, None)
        assert body["interval"]["calibration"] == NONE, body
    assert body["interval"]["low"] == plain["interval"]["low"] and body["interval"]["high"] == plain["interval"]["high"]


def test_a_deleted_state_falls_back_at_once(handler, calibrated, features, tmp_path):
    calibrated(state(handler))
    assert handler.lambda_handler({"ticker": "AAPL", "features": features}, None)["interval"]["calibration"]["n"] == 474
    (tmp_path / "calibration.json").unlink()
    assert handler.lambda_handler({"ticker": "AAPL", "features": features}, None)["interval"]["calibration"] == NONE
