"""What a hostile client can send, and what it must get back: a 4xx naming the field, or finite numbers.
Never a 5xx, never an exception out of the handler, never megabytes of its own input echoed back."""

from __future__ import annotations

import io
import json
import math
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import load_event, rest, with_

FUZZ = settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
VOL_LAST_DAY = 59 * 10 + 8  # features[598]: the last day's volatility20


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.setattr(sys, "stderr", io.StringIO())


def outcome(handler, event):
    """(status, body) of any answer; asserts it is strict JSON (no NaN, no Infinity, no lone surrogates)."""
    out = handler.lambda_handler(event, None)
    if "statusCode" in out:
        text = out["body"]
        body = json.loads(text) if text else None
        status = out["statusCode"]
    else:
        text = json.dumps(out, allow_nan=False)
        body, status = out, out.get("status", 200)
    json.dumps(body, allow_nan=False).encode("utf-8")  # raises on NaN, Infinity or a lone surrogate
    return status, body


def assert_sound(status, body):
    assert status < 500, body
    if status >= 400:
        assert body["error"] and body["code"], body
        assert len(body["error"]) < 400, "an error must not echo the client's input back at length"
    elif body and "prediction" in body:
        numbers = [body["prediction"], body["confidence"], body["interval"]["low"], body["interval"]["high"]]
        assert all(isinstance(v, float) and math.isfinite(v) for v in numbers), body
        assert 0 < body["interval"]["low"] <= body["prediction"] <= body["interval"]["high"]


@pytest.mark.parametrize(
    "index, value, code",
    [
        (VOL_LAST_DAY, 1e5, "out_of_range"),  # was a 500 (OverflowError in the interval's exp)
        (VOL_LAST_DAY, -1e5, "out_of_range"),
        (17, 1e39, "out_of_range"),  # beyond float32: was a 200 with null numbers
        (17, -3.4e38, "out_of_range"),
        (590, 1e300, "out_of_range"),
    ],
)
def test_extreme_but_finite_features_are_400_naming_the_field(handler, keyed, features, quiet, index, value, code):
    for event in (
        rest({"ticker": "AAPL", "features": with_(features, **{f"i{index}": value})}),
        {"ticker": "AAPL", "features": with_(features, **{f"i{index}": value})},
    ):
        status, body = outcome(handler, event)
        assert (status, body["code"]) == (400, code), body
        assert f"features[{index}]" in body["error"]


@pytest.mark.slow
@FUZZ
@given(
    index=st.integers(0, 599),
    value=st.floats(-1.2e3, 1.2e3, allow_nan=False) | st.sampled_from([-1000.0, 1000.0, 1000.0001, -1000.0001, 999.9999]),
    batch=st.booleans(),
)
def test_the_range_boundary(handler, keyed, features, quiet, index, value, batch):
    f = with_(features, **{f"i{index}": value})
    body = (
        {"instances": [{"ticker": "AAPL", "features": features}, {"ticker": "IBM", "features": f}]}
        if batch
        else {"ticker": "AAPL", "features": f}
    )
    status, answer = outcome(handler, rest(body))
    assert_sound(status, answer)
    if abs(value) > 1000:
        assert status == 400 and answer["code"] == "out_of_range" and f"features[{index}]" in answer["error"]
    for item in (answer.get("predictions") or [answer]) if status == 200 else []:
        assert_sound(200, item)


surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
hostile_text = st.text(st.characters(codec=None) | surrogates, max_size=30)


@pytest.mark.slow
@FUZZ
@given(path=hostile_text, method=hostile_text, rid=hostile_text, key=hostile_text, body=hostile_text, v2=st.booleans())
def test_lone_surrogates_anywhere_never_escape(handler, keyed, quiet, path, method, rid, key, body, v2):
    if v2:
        event = load_event("http_v2_predict.json")
        event["rawPath"], event["requestContext"]["http"]["method"], event["requestContext"]["requestId"] = path, method, rid
    else:
        event = rest(raw=body, method=method, path=path, headers={"X-API-Key": key})
        event["requestContext"]["requestId"] = rid
    event["body"] = body
    assert_sound(*outcome(handler, event))


@pytest.mark.parametrize(
    "event",
    [
        {"httpMethod": "\ud800", "path": "/predict", "headers": {}, "requestContext": {"requestId": "\udfff"}},
        {"version": "2.0", "rawPath": "/\ud83d", "requestContext": {"http": {"method": "GET"}, "requestId": "x\udc00"}},
        {"ticker": "\ud800", "features": [0.0] * 600},
        {"ticker": "AAPL", "features": [0.0] * 600, "\udc80": 1},
        "\ud800",
        None,
        42,
        [1, 2],
        {"httpMethod": 5, "path": ["x"], "headers": "nope", "requestContext": 3},
    ],
)
def test_named_hostile_events(handler, keyed, quiet, event):
    assert_sound(*outcome(handler, event))


@pytest.mark.parametrize("ticker", ["AAPL\n", "AAPL\r\n", "\nAAPL", "AA PL", "AAPL\x00"])
def test_tickers_are_anchored_at_both_ends(handler, keyed, features, quiet, ticker):
    status, body = outcome(handler, rest({"ticker": ticker, "features": features}))
    assert (status, body["code"]) == (400, "invalid_ticker")


def test_the_body_limit_counts_bytes(handler, keyed, quiet):
    chars = 600_000  # 1.8 MB of UTF-8: under a million characters, over a million bytes
    status, body = outcome(handler, rest(raw='{"ticker": "' + "€" * chars + '"}'))
    assert (status, body["code"]) == (413, "payload_too_large")
    status, body = outcome(handler, rest(raw='{"ticker": "AAPL", "features": [' + " " * 900_000 + "]}"))
    assert status == 400, "a body just under 1 MB is read and judged on its content"


@pytest.mark.parametrize(
    "payload, code",
    [
        ({"ticker": "AAPL", "features": [0.0] * 600, "x" * 500_000: 1}, "unknown_field"),
        ({"ticker": "AAPL", "features": [0.0] * 600, "model_version": "v" * 500_000}, "model_version_mismatch"),
        ({"ticker": "T" * 500_000, "features": [0.0] * 600}, "invalid_ticker"),
        ({"instances": [{"ticker": "AAPL", "features": [0.0] * 600, "y" * 300_000: 0}]}, "unknown_field"),
    ],
)
def test_errors_quote_at_most_a_little_of_the_input(handler, keyed, quiet, payload, code):
    status, body = outcome(handler, rest(payload))
    assert body["code"] == code and len(body["error"]) < 400, len(body["error"])


def test_model_card_states_the_input_limit(handler, keyed):
    status, body = outcome(handler, load_event("rest_v1_model.json"))
    assert status == 200 and body["input_limit"] == {"standardized_abs_max": 1000.0}
