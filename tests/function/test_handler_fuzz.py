"""Property-based fuzzing of events and bodies: no exception escapes, nothing answers 5xx, and every
error carries "error" and "code". 500 cases a strategy by default (2,000 a run, fresh each run: the example
database is a throwaway); FUZZ_EXAMPLES=5000 for a deeper search, and `make reliability` sends 20,000 crafted events."""

from __future__ import annotations

import io
import json
import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import SAMPLE_KEY, load_event

pytestmark = pytest.mark.slow  # thousands of generated events

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "500")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
    max_leaves=30,
)
paths = st.sampled_from(["/predict", "/model", "/health", "/", "/prod/predict", "/predict/", "/x", "//predict", ""]) | st.text(
    max_size=30
)
methods = st.sampled_from(["GET", "POST", "OPTIONS", "PUT", "DELETE", "HEAD", "PATCH", "post", ""]) | st.text(max_size=8)
headers = st.dictionaries(
    st.sampled_from(["X-API-Key", "x-api-key", "Content-Type", "Origin"]) | st.text(max_size=12),
    st.sampled_from([SAMPLE_KEY, "", "wrong"]) | st.text(max_size=20),
    max_size=4,
)


def check(out):
    if "statusCode" in out:
        status = out["statusCode"]
        body = json.loads(out["body"]) if out["body"] else None
        assert "Access-Control-Allow-Origin" in out["headers"]
    else:
        status = out.get("status", 200)
        body = out
    assert status < 500, out
    if status >= 400:
        assert body["error"] and body["code"], out


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())


def _text_features(features, data):
    """Mutations of a valid body: drop, repeat, replace or retype some numbers."""
    f = list(features)
    op = data.draw(st.sampled_from(["replace", "truncate", "extend", "as_string", "keep"]))
    if op == "replace":
        for _ in range(data.draw(st.integers(1, 5))):
            f[data.draw(st.integers(0, len(f) - 1))] = data.draw(json_values)
    elif op == "truncate":
        f = f[: data.draw(st.integers(0, len(f)))]
    elif op == "extend":
        f += data.draw(st.lists(json_scalars, max_size=5))
    elif op == "as_string":
        return json.dumps(f)
    return f


@FUZZ
@given(body=json_values, method=methods, path=paths, hdrs=headers, b64=st.booleans())
def test_fuzz_rest_events(handler, keyed, quiet, body, method, path, hdrs, b64):
    ev = load_event("rest_v1_predict.json")
    ev.update(
        httpMethod=method,
        path=path,
        headers=hdrs,
        multiValueHeaders=None,
        body=json.dumps(body) if not isinstance(body, str) else body,
        isBase64Encoded=b64,
    )
    check(handler.lambda_handler(ev, None))


@FUZZ
@given(data=st.data(), ticker=st.sampled_from(["AAPL", "^GSPC"]) | st.text(max_size=20) | json_scalars)
def test_fuzz_predict_bodies(handler, keyed, quiet, features, data, ticker):
    body = {"ticker": ticker, "features": _text_features(features, data)}
    if data.draw(st.booleans()):
        body = {"instances": [body] * data.draw(st.integers(0, 3))}
    for extra in data.draw(st.lists(st.text(max_size=8), max_size=2)):
        body[extra] = data.draw(json_values)
    ev = load_event("http_v2_predict.json")
    ev["body"] = json.dumps(body)  # Python's json writes NaN/Infinity: they must be rejected too
    check(handler.lambda_handler(ev, None))


@FUZZ
@given(event=json_values)
def test_fuzz_arbitrary_events(handler, quiet, event):
    check(handler.lambda_handler(event, None))


@FUZZ
@given(raw=st.binary(max_size=300) | st.text(max_size=300))
def test_fuzz_raw_bodies(handler, keyed, quiet, raw):
    ev = load_event("http_v2_predict.json")
    ev["body"] = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    check(handler.lambda_handler(ev, None))
