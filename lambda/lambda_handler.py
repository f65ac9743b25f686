"""AWS Lambda entry point `lambda_handler.lambda_handler`: one function for every event source.

    API Gateway REST proxy (v1), HTTP API and Function URL (v2.0): POST /predict, GET /model,
    GET /health, OPTIONS preflight.  Direct invoke: the payload is a predict body; the answer is bare JSON.

The model loads once, here at import. Parsing, validation and inference live in forecast/; this file
only routes, authenticates and shapes answers, and maps every ApiError to its status in one place.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import sys
import time
import traceback
import uuid

from forecast.errors import ApiError
from forecast.events import Request, parse_event
from forecast.inference import Model, ModelUnavailable, default_dir
from forecast.jsonio import dumps
from forecast.telemetry import emit
from forecast.validation import check_version, decode, parse_predict

_T0 = time.perf_counter()
try:
    MODEL: Model | None = Model(default_dir())
    MODEL_ERROR = ""
except ModelUnavailable as exc:
    MODEL, MODEL_ERROR = None, str(exc)
INIT_MS = (time.perf_counter() - _T0) * 1000
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


def _authorize(req: Request) -> None:
    """X-API-Key against API_KEY_SHA256, digest to digest in constant time. Direct invoke is IAM's business."""
    if req.source == "direct" or os.environ.get("AUTH_DISABLED") == "1":
        return
    expected = os.environ.get("API_KEY_SHA256", "").strip().lower()
    if not expected:
        raise ApiError(401, "auth_not_configured", "this function has no API key configured (set API_KEY_SHA256; "
                       "AUTH_DISABLED=1 is for local development only)")
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


def _predict(req: Request) -> tuple[dict, str | None, int]:
    _authorize(req)
    model = _model()
    payload = req.payload if req.source == "direct" else decode(req.body)
    tickers, X, is_batch, version = parse_predict(payload, model.size)
    check_version(version, model.version)
    results = model.predict(X)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    items = [{"ticker": t, "prediction": r["prediction"], "confidence": r["confidence"], "interval": r["interval"],
              "last_close": r["last_close"], "model": model.name, "model_version": model.version,
              "timestamp": stamp, "request_id": req.request_id} for t, r in zip(tickers, results, strict=True)]
    if is_batch:
        body = {"predictions": items, "model": model.name, "model_version": model.version,
                "timestamp": stamp, "request_id": req.request_id}
        return body, ",".join(sorted(set(tickers)))[:200], len(items)
    return items[0], tickers[0], 1


def _route(req: Request) -> tuple[int, dict | None, str | None, int]:
    """-> (status, body, ticker for the log, predictions made)."""
    allowed = ROUTES.get(req.path)
    if allowed is None:
        raise ApiError(404, "not_found", f"no route {req.path!r}; try POST /predict, GET /model or GET /health")
    if req.method == "OPTIONS":
        return 204, None, None, 0
    if req.method not in allowed:
        raise ApiError(405, "method_not_allowed", f"{req.method} is not allowed on {req.path}; use {' or '.join(allowed)}")
    if req.path == "/predict":
        body, ticker, n = _predict(req)
        return 200, body, ticker, n
    if req.path == "/model":
        return 200, _model().public, None, 0
    if MODEL is None:
        return 503, {"status": "unavailable", "error": f"the model is not loaded: {MODEL_ERROR}",
                     "code": "model_unavailable"}, None, 0
    return 200, {"status": "ok", "model": MODEL.name, "model_version": MODEL.version,
                 "init_ms": round(INIT_MS, 1)}, None, 0


def _shape(req: Request | None, status: int, body: dict | None, direct: bool) -> dict:
    if direct:
        if status >= 400 and body is not None:
            return {**body, "status": status}
        return body or {}
    headers = dict(JSON_HEADERS)
    if status == 405 and req is not None:
        headers["Allow"] = ", ".join(ROUTES.get(req.path, ())) + ", OPTIONS"
    text = "" if body is None else dumps(body)
    return {"statusCode": status, "headers": headers, "body": text, "isBase64Encoded": False}


def lambda_handler(event, context=None):
    global _cold
    t0 = time.perf_counter()
    cold, _cold = _cold, False
    req, ticker, n, code = None, None, 0, None
    try:
        req = parse_event(event, context)
        if not req.request_id:
            req.request_id = uuid.uuid4().hex
        status, body, ticker, n = _route(req)
    except ApiError as err:
        status, body, code = err.status, err.body(), err.code
    except Exception:  # a bug of ours, never a client's mistake: log it, answer without internals
        traceback.print_exc(file=sys.stderr)
        status, code = 500, "internal_error"
        body = {"error": "internal error; the request id is in the function's logs", "code": code}
    rid = req.request_id if req is not None else (getattr(context, "aws_request_id", "") or uuid.uuid4().hex)
    if body is not None and status >= 400:
        body["request_id"] = rid
    # an event that is not even an object can only be a direct invoke: API Gateway always sends one
    direct = req.source == "direct" if req is not None else not isinstance(event, dict)
    answer = _shape(req, status, body, direct)
    emit(request_id=rid, route=req.path if req else "?", method=req.method if req else "?", status=status,
         latency_ms=(time.perf_counter() - t0) * 1000, model_version=MODEL.version if MODEL else "",
         ticker=ticker, predictions=n, cold_start=cold, code=code, source=req.source if req else "?")
    return answer
