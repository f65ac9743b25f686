"""Auth on every front door the function accepts: REST v1, HTTP API v2, Function URL and direct invoke.

On an HTTP API or a Function URL the function is the only key check (API Gateway's usage plan exists only on
REST), so every case runs on every source. Direct invoke carries no headers: IAM (lambda:InvokeFunction)
authorizes it, so the function answers it without a key, as lambda_handler._authorize documents.
"""

from __future__ import annotations

import hashlib

import pytest

from tests.support import HTTP_SOURCES, SAMPLE_KEY, assert_cors, call

SOURCES = sorted(HTTP_SOURCES)
KEY_CASES = [
    ({}, 401, "missing_api_key"),
    ({"X-API-Key": ""}, 401, "missing_api_key"),
    ({"X-API-Key": "wrong"}, 401, "invalid_api_key"),
    ({"X-API-Key": SAMPLE_KEY + " "}, 401, "invalid_api_key"),
    ({"X-API-Key": SAMPLE_KEY.upper()}, 401, "invalid_api_key"),
    ({"X-API-Key": SAMPLE_KEY[:-1]}, 401, "invalid_api_key"),
    ({"x-api-key": SAMPLE_KEY}, 200, None),
    ({"X-API-KEY": SAMPLE_KEY}, 200, None),
    ({"X-Api-Key": SAMPLE_KEY}, 200, None),
]
# only an explicit yes disables auth; anything else, a typo included, keeps the key check on
AUTH_OFF = ["1", "true", "TRUE", "True", "yes", "on", " 1 "]
AUTH_ON = ["0", "false", "False", "", " ", "no", "off", "2", "disabled", "ture"]


def predict(source: str, features, headers=None) -> dict:
    return HTTP_SOURCES[source]({"ticker": "AAPL", "features": features}, headers=headers)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("headers, status, code", KEY_CASES, ids=[f"{c[1]}-{c[2]}-{i}" for i, c in enumerate(KEY_CASES)])
def test_key_is_checked_on_every_front_door(handler, keyed, features, source, headers, status, code):
    got, hdrs, body = call(handler, predict(source, features, headers))
    assert got == status, (source, body)
    if code is None:
        assert body["ticker"] == "AAPL" and "prediction" in body
    else:
        assert body["code"] == code and set(body) == {"error", "code", "request_id"}
    assert_cors(hdrs)


@pytest.mark.parametrize("source", SOURCES)
def test_no_key_configured_answers_401(handler, monkeypatch, features, source):
    monkeypatch.delenv("API_KEY_SHA256", raising=False)
    monkeypatch.delenv("AUTH_DISABLED", raising=False)
    for headers in ({}, {"X-API-Key": SAMPLE_KEY}):
        status, _, body = call(handler, predict(source, features, headers))
        assert status == 401 and body["code"] == "auth_not_configured", (source, body)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("value", AUTH_ON, ids=repr)
def test_auth_disabled_other_than_an_explicit_yes_keeps_auth_on(handler, monkeypatch, features, source, value):
    monkeypatch.setenv("AUTH_DISABLED", value)
    monkeypatch.delenv("API_KEY_SHA256", raising=False)
    status, _, body = call(handler, predict(source, features, {}))
    assert status == 401 and body["code"] == "auth_not_configured", (source, value, body)
    monkeypatch.setenv("API_KEY_SHA256", hashlib.sha256(SAMPLE_KEY.encode()).hexdigest())
    for headers, code in (({}, "missing_api_key"), ({"X-API-Key": "wrong"}, "invalid_api_key")):
        status, _, body = call(handler, predict(source, features, headers))
        assert status == 401 and body["code"] == code, (source, value, body)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("value", AUTH_OFF, ids=repr)
def test_auth_disabled_with_an_explicit_yes_serves_without_a_key(handler, monkeypatch, features, source, value):
    monkeypatch.setenv("AUTH_DISABLED", value)
    monkeypatch.delenv("API_KEY_SHA256", raising=False)
    status, _, body = call(handler, predict(source, features, {}))
    assert status == 200 and body["ticker"] == "AAPL", (source, value, body)


@pytest.mark.parametrize("source", SOURCES)
def test_preflight_model_and_health_need_no_key(handler, keyed, source):
    build = HTTP_SOURCES[source]
    status, headers, body = call(handler, build(None, method="OPTIONS", headers={}))
    assert status == 204 and body is None
    assert_cors(headers)
    for path in ("/model", "/health"):
        status, _, body = call(handler, build(None, method="GET", path=path, headers={}))
        assert status == 200, (source, path, body)


# --- direct invoke: IAM's business ----------------------------------------------------------------


@pytest.mark.parametrize("env", ["keyed", "no key configured", "AUTH_DISABLED=0"])
def test_direct_invoke_needs_no_api_key(handler, monkeypatch, features, env):
    """`aws lambda invoke` is signed with SigV4 and checked against lambda:InvokeFunction before the function
    runs; the payload is the predict body and has nowhere to carry a key."""
    monkeypatch.delenv("AUTH_DISABLED", raising=False)
    monkeypatch.delenv("API_KEY_SHA256", raising=False)
    if env == "keyed":
        monkeypatch.setenv("API_KEY_SHA256", hashlib.sha256(SAMPLE_KEY.encode()).hexdigest())
    elif env == "AUTH_DISABLED=0":
        monkeypatch.setenv("AUTH_DISABLED", "0")
    out = handler.lambda_handler({"ticker": "AAPL", "features": features}, None)
    assert "statusCode" not in out and out["ticker"] == "AAPL" and "prediction" in out, out


def test_a_header_in_a_direct_payload_is_not_a_key(handler, keyed, features):
    """A direct payload that looks like it carries headers is still a predict body: an unknown field is a 400."""
    out = handler.lambda_handler({"ticker": "AAPL", "features": features, "headers": {"x-api-key": "wrong"}}, None)
    assert out["status"] == 400 and out["code"] == "unknown_field"
