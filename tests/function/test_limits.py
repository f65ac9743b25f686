"""The input bound (±MAX_STANDARDIZED training standard deviations) and the 1 MiB body limit, pinned at the boundary.

validation.MAX_STANDARDIZED (1000.0) bounds every standardized value, inclusive: exactly ±1000 is served and the
next double beyond is refused. events.MAX_BODY_BYTES (1,048,576 bytes: the contract's "1 MB") bounds the body in
UTF-8 bytes, inclusive; a base64 body counts by its decoded bytes, since that is what the function parses.
"""

from __future__ import annotations

import base64
import json
import math

import pytest

from tests.support import HTTP_SOURCES, call, with_

LIMIT = 1024 * 1024
BOUND = 1000.0
SOURCES = sorted(HTTP_SOURCES)


def test_the_constants_are_the_documented_ones(handler):
    """The numbers below are the contract's; a change of either is a contract change, not a refactor."""
    import forecast.events
    import forecast.validation

    assert forecast.validation.MAX_STANDARDIZED == BOUND
    assert forecast.events.MAX_BODY_BYTES == LIMIT


def test_openapi_and_get_model_state_the_same_inclusive_bound(handler, keyed):
    import yaml

    from tests.support import LAMBDA_DIR

    spec = yaml.safe_load((LAMBDA_DIR / "openapi.yaml").read_text())
    items = spec["components"]["schemas"]["Features"]["items"]
    assert (items["minimum"], items["maximum"]) == (-BOUND, BOUND)
    assert not items.get("exclusiveMinimum") and not items.get("exclusiveMaximum")  # ±1000 itself is valid
    status, _, body = call(handler, HTTP_SOURCES["rest"](None, method="GET", path="/model"))
    assert status == 200 and body["input_limit"] == {"standardized_abs_max": BOUND}


# --- ±1000 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [BOUND, -BOUND, 1000, -1000], ids=["+1000.0", "-1000.0", "+1000 int", "-1000 int"])
def test_exactly_the_bound_is_served(handler, keyed, features, value):
    # features[591] is the last day's log_return: any value there decodes to a valid window (the close is index 0)
    for source in SOURCES:
        status, _, body = call(handler, HTTP_SOURCES[source]({"ticker": "AAPL", "features": with_(features, i591=value)}))
        assert status == 200 and math.isfinite(body["prediction"]), (source, body)
    out = handler.lambda_handler({"ticker": "AAPL", "features": with_(features, i591=value)}, None)
    assert "prediction" in out, out


@pytest.mark.parametrize(
    "value",
    [math.nextafter(BOUND, math.inf), math.nextafter(-BOUND, -math.inf), 1000.001, -1000.001, 1001, -1001],
    ids=["next double above", "next double below", "+1000.001", "-1000.001", "+1001 int", "-1001 int"],
)
def test_just_beyond_the_bound_is_refused(handler, keyed, features, value):
    status, _, body = call(handler, HTTP_SOURCES["rest"]({"ticker": "AAPL", "features": with_(features, i591=value)}))
    assert status == 400 and body["code"] == "out_of_range" and "features[591]" in body["error"], body
    out = handler.lambda_handler({"ticker": "AAPL", "features": with_(features, i591=value)}, None)
    assert out["status"] == 400 and out["code"] == "out_of_range", out


def test_the_bound_applies_in_a_batch_too(handler, keyed, features):
    over = math.nextafter(BOUND, math.inf)
    ok = {"ticker": "AAPL", "features": with_(features, i591=BOUND)}
    status, _, body = call(handler, HTTP_SOURCES["rest"]({"instances": [ok, ok]}))
    assert status == 200 and len(body["predictions"]) == 2
    bad = {"ticker": "AAPL", "features": with_(features, i591=over)}
    status, _, body = call(handler, HTTP_SOURCES["rest"]({"instances": [ok, bad]}))
    assert status == 400 and body["code"] == "out_of_range" and "instances[1].features[591]" in body["error"], body


# --- 1 MiB ---------------------------------------------------------------------------------------


def padded(features, size: int) -> str:
    """A valid predict body padded with JSON whitespace to exactly `size` bytes."""
    text = json.dumps({"ticker": "AAPL", "features": features})
    assert len(text) < size
    return text + " " * (size - len(text))


@pytest.mark.parametrize("source", SOURCES)
def test_a_body_of_exactly_the_limit_is_served_and_one_byte_more_is_413(handler, keyed, features, source):
    build = HTTP_SOURCES[source]
    status, _, body = call(handler, build(raw=padded(features, LIMIT)))
    assert status == 200 and body["ticker"] == "AAPL", body
    status, _, body = call(handler, build(raw=padded(features, LIMIT + 1)))
    assert status == 413 and body["code"] == "payload_too_large", body


@pytest.mark.parametrize("source", SOURCES)
def test_base64_bodies_count_their_decoded_bytes(handler, keyed, features, source):
    """A base64 body of LIMIT decoded bytes is 1,398,104 characters on the wire: it is served, and LIMIT + 1 is not."""
    build = HTTP_SOURCES[source]
    ev = build(raw=padded(features, LIMIT), b64=True)
    assert len(ev["body"]) > LIMIT  # the encoded text is over the limit: only the decoded size may count
    status, _, body = call(handler, ev)
    assert status == 200 and body["ticker"] == "AAPL", body
    status, _, body = call(handler, build(raw=padded(features, LIMIT + 1), b64=True))
    assert status == 413 and body["code"] == "payload_too_large", body


def test_the_limit_counts_utf8_bytes_not_characters(handler, keyed):
    """'€' is 3 bytes in UTF-8: a body under the limit in characters but over it in bytes is still 413."""
    euros = (LIMIT + 1) // 3 - 10
    over = "€" * euros + " " * (LIMIT + 1 - 3 * euros)
    at = over[:-1]
    assert len(over.encode()) == LIMIT + 1 and len(at.encode()) == LIMIT and len(over) < LIMIT
    status, _, body = call(handler, HTTP_SOURCES["http_api"](raw=over))
    assert status == 413 and body["code"] == "payload_too_large", body
    status, _, body = call(handler, HTTP_SOURCES["http_api"](raw=at))
    assert status == 400 and body["code"] == "invalid_json", body  # not a size refusal: the parser saw it
    encoded = base64.b64encode(over.encode()).decode()
    status, _, body = call(handler, {**HTTP_SOURCES["rest"](raw=encoded), "isBase64Encoded": True})
    assert status == 413 and body["code"] == "payload_too_large", body
