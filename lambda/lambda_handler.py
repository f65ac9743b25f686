"""AWS Lambda entry point `lambda_handler.lambda_handler`: one function for every event source.

    API Gateway REST proxy (v1), HTTP API and Function URL (v2.0): POST /predict, GET /model,
    GET /health, OPTIONS preflight.  Direct invoke: the payload is a predict body; the answer is bare JSON.

The model loads once, here at import. Parsing, validation and inference live in forecast/; this file
only routes, authenticates and shapes answers, and maps every ApiError to its status in one place.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import hmac
import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass

from forecast.calibration import State
from forecast.errors import ApiError, clean, quote
from forecast.events import Request, parse_event
from forecast.inference import Model, ModelUnavailable, default_dir
from forecast.jsonio import dumps
from forecast.telemetry import emit
from forecast.validation import MAX_STANDARDIZED, check_version, decode, parse_predict

_T0 = time.perf_counter()
try:
    MODEL: Model | None = Model(default_dir())
    MODEL_ERROR = ""
except ModelUnavailable as exc:
    MODEL, MODEL_ERROR = None, str(exc)
# the ledger's per-ticker calibration: a path locally; nothing is read until the first prediction, and then only a stat
CALIBRATION = State(os.environ.get("CALIBRATION_STATE"), MODEL.version if MODEL else "")
INIT_MS = (time.perf_counter() - _T0) * 1000
# everything loaded so far lives as long as the environment: out of the collector's sight, so a full collection
# in a warm request no longer walks numpy's and onnxruntime's objects (the p99 of BENCHMARKS.md's warm path)
gc.freeze()
_cold = True


def _before_snapshot() -> None:
    """SnapStart: one prediction before the snapshot, so restored environments start with a warm ONNX session."""
    if MODEL is not None:
        import numpy as np

        MODEL.predict(np.zeros((1, MODEL.size)))  # standardized zeros: every feature at its training mean


def _after_restore() -> None:
    """SnapStart: many environments resume from one snapshot; the first request of each is still its cold start."""
    global _cold
    _cold = True


try:  # Lambda bundles snapshot_restore_py in its Python 3.12+ runtimes; elsewhere the hooks are simply not registered
    from snapshot_restore_py import register_after_restore, register_before_snapshot
except ImportError:
    pass
else:
    register_before_snapshot(_before_snapshot)
    register_after_restore(_after_restore)

ROUTES = {"/predict": ("POST",), "/model": ("GET",), "/health": ("GET",)}
CORS = {
    "Access-Control-Allow-Origin": os.environ.get("CORS_ALLOW_ORIGIN", "*"),
    "Access-Control-Allow-Headers": "Content-Type,X-API-Key",
    "Access-Control-Allow-Methods": "GET,POST,OPTIONS",
    "Access-Control-Max-Age": "600",
}
JSON_HEADERS = {"Content-Type": "application/json", **CORS}
# only an explicit yes turns auth off: "0", "false", "" or a typo keep the key check on
AUTH_OFF_VALUES = frozenset({"1", "true", "yes", "on"})


def _authorize(req: Request) -> None:
    """X-API-Key against API_KEY_SHA256, digest to digest in constant time. Direct invoke is IAM's business."""
    if req.source == "direct" or os.environ.get("AUTH_DISABLED", "").strip().lower() in AUTH_OFF_VALUES:
        return
    expected = os.environ.get("API_KEY_SHA256", "").strip().lower()
    if not expected:
        raise ApiError(
            401,
            "auth_not_configured",
            "this function has no API key configured (set API_KEY_SHA256; AUTH_DISABLED=1 is for local development only)",
        )
    key = req.headers.get("x-api-key")
    if not key:
        raise ApiError(401, "missing_api_key", "the X-API-Key header is missing")
    given = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    if not hmac.compare_digest(given, expected):
        raise ApiError(401, "invalid_api_key", "the X-API-Key header does not match this endpoint's key")


def _model() -> Model:
    if MODEL is None:
        raise ApiError(503, "model_unavailable", f"the model is not loaded: {MODEL_ERROR}")
    return MODEL


@dataclass(slots=True)
class Answer:
    """What a route answers, and what the request's log line records about it."""

    status: int
    body: dict | None
    ticker: str | None = None  # for the log line only
    predictions: int = 0  # for the log line only


@functools.lru_cache(maxsize=2)
def _stamp(second: int) -> str:
    """The answer's timestamp, formatted once a second rather than once a request (8 µs of a warm path)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


def _predict(req: Request) -> Answer:
    _authorize(req)
    model = _model()
    payload = req.payload if req.source == "direct" else decode(req.body)
    tickers, X, is_batch, version = parse_predict(payload, model.shape, model.ticker_re)
    check_version(version, model.version)
    labels = CALIBRATION.lookup(tickers)
    results = model.predict(X, [c["factor"] for c in labels])
    stamp = _stamp(int(time.time()))
    items = [
        {
            "ticker": t,
            "prediction": r["prediction"],
            "confidence": r["confidence"],
            "interval": {**r["interval"], "calibration": c},
            "last_close": r["last_close"],
            "volatility": r["volatility"],
            "model": model.name,
            "model_version": model.version,
            "timestamp": stamp,
            "request_id": req.request_id,
        }
        for t, r, c in zip(tickers, results, labels, strict=True)
    ]
    if is_batch:
        body = {
            "predictions": items,
            "model": model.name,
            "model_version": model.version,
            "timestamp": stamp,
            "request_id": req.request_id,
        }
        return Answer(200, body, ",".join(sorted(set(tickers)))[:200], len(items))
    return Answer(200, items[0], tickers[0], 1)


def _route(req: Request) -> Answer:
    allowed = ROUTES.get(req.path)
    if allowed is None:
        raise ApiError(404, "not_found", f"no route {quote(req.path)}; try POST /predict, GET /model or GET /health")
    if req.method == "OPTIONS":
        return Answer(204, None)
    if req.method not in allowed:
        raise ApiError(
            405, "method_not_allowed", f"{quote(req.method, 12)} is not allowed on {req.path}; use {' or '.join(allowed)}"
        )
    if req.path == "/predict":
        return _predict(req)
    if req.path == "/model":
        return Answer(200, {**_model().card, "input_limit": {"standardized_abs_max": MAX_STANDARDIZED}})
    if MODEL is None:
        return Answer(
            503, {"status": "unavailable", "error": f"the model is not loaded: {MODEL_ERROR}", "code": "model_unavailable"}
        )
    return Answer(200, {"status": "ok", "model": MODEL.name, "model_version": MODEL.version, "init_ms": round(INIT_MS, 1)})


def _shape(req: Request | None, answer: Answer, direct: bool) -> dict:
    status, body = answer.status, answer.body
    if direct:
        if status >= 400 and body is not None:
            return {**body, "status": status}
        return body or {}
    headers = dict(JSON_HEADERS)
    if status == 405 and req is not None:
        headers["Allow"] = ", ".join(ROUTES.get(req.path, ())) + ", OPTIONS"
    text = "" if body is None else dumps(body)
    return {"statusCode": status, "headers": headers, "body": text, "isBase64Encoded": False}


# the answer when even shaping an answer failed: built once, from constants that cannot fail to serialize
_LAST_RESORT = {
    "statusCode": 500,
    "headers": dict(JSON_HEADERS),
    "isBase64Encoded": False,
    "body": '{"error":"internal error; the request id is in the function\'s logs","code":"internal_error"}',
}


def _handle(event, context) -> dict:
    global _cold
    t0 = time.perf_counter()
    cold, _cold = _cold, False
    req, code = None, None
    try:
        req = parse_event(event, context)
        if not req.request_id:
            req.request_id = uuid.uuid4().hex
        answer = _route(req)
    except ApiError as err:
        answer, code = Answer(err.status, err.body()), err.code
    except Exception:  # a bug of ours, never a client's mistake: log it, answer without internals
        traceback.print_exc(file=sys.stderr)
        code = "internal_error"
        answer = Answer(500, {"error": "internal error; the request id is in the function's logs", "code": code})
    rid = req.request_id if req is not None else clean(str(getattr(context, "aws_request_id", "") or uuid.uuid4().hex))
    if answer.body is not None and answer.status >= 400:
        answer.body["request_id"] = rid
    # an event that is not even an object can only be a direct invoke: API Gateway always sends one
    direct = req.source == "direct" if req is not None else not isinstance(event, dict)
    shaped = _shape(req, answer, direct)
    emit(
        request_id=rid,
        # the Route dimension is the matched route or "other": a raw path would mint a billed metric per URL probed
        route=req.path if req is not None and req.path in ROUTES else "other",
        path=req.path if req else "?",
        method=req.method if req else "?",
        status=answer.status,
        latency_ms=(time.perf_counter() - t0) * 1000,
        model_version=MODEL.version if MODEL else "",
        ticker=answer.ticker,
        predictions=answer.predictions,
        cold_start=cold,
        code=code,
        source=req.source if req else "?",
    )
    return shaped


def lambda_handler(event, context=None):
    """No input of any kind makes this raise: through awslambdaric an exception would reach the caller as
    errorType and a stack trace."""
    try:
        return _handle(event, context)
    except Exception:
        traceback.print_exc(file=sys.stderr)
        if isinstance(event, dict) and ("httpMethod" in event or event.get("version") == "2.0"):
            return dict(_LAST_RESORT, headers=dict(JSON_HEADERS))
        return {"error": "internal error; the request id is in the function's logs", "code": "internal_error", "status": 500}
