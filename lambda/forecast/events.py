"""Turn any event source into one Request: API Gateway REST proxy (v1), HTTP API / Function URL (v2.0),
or a direct invoke whose payload is the predict body itself."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from .errors import ApiError, bad_request, clean
from .validation import MAX_BATCH

MAX_BODY_BYTES = 1024 * 1024  # the contract's 1 MB: a full batch (MAX_BATCH instances) is about 0.5 MB


@dataclass(slots=True)
class Request:
    source: str  # "rest", "http" or "direct"
    method: str
    path: str  # stage prefix removed: /predict, /model, /health
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: str | bytes | None = None
    payload: object = None  # direct invoke: the already-decoded payload
    request_id: str = ""


def _lower(headers) -> dict[str, str]:
    if not isinstance(headers, dict):
        return {}
    return {str(k).lower(): v for k, v in headers.items() if isinstance(v, str)}


def _text(value, default: str, limit: int = 2048) -> str:
    """A path, method or id from the event as safe text: any type, capped, lone surrogates replaced."""
    if value is None or value == "":
        return default
    return clean(str(value)[:limit])


def _too_large() -> ApiError:
    return ApiError(413, "payload_too_large", f"body is larger than {MAX_BODY_BYTES:,} bytes; send at most {MAX_BATCH} instances")


def _strip_stage(path: str, stage) -> str:
    """Remove a leading /{stage} once. Only for paths that carry the stage (a v2 rawPath, REST's
    requestContext.path): REST's own `path` never does, and a stage named like a route must not eat it."""
    if isinstance(stage, str) and stage and stage != "$default":
        prefix = "/" + stage
        if path == prefix or path.startswith(prefix + "/"):
            path = path[len(prefix) :] or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/")
    return path or "/"


def _body(event: dict) -> str | bytes | None:
    body = event.get("body")
    if body is None:
        return None
    if not isinstance(body, str):
        raise bad_request("invalid_body", "body must be a JSON string")
    if event.get("isBase64Encoded"):
        if len(body) > MAX_BODY_BYTES * 4 // 3 + 4:
            raise _too_large()
        try:
            body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("invalid_base64", "body is marked isBase64Encoded but is not valid base64") from None
        if len(body) > MAX_BODY_BYTES:
            raise _too_large()
        return body
    # the limit is in bytes: a character may take up to 4 of them in UTF-8 (surrogates count as the 3 they escape to)
    if len(body) > MAX_BODY_BYTES or (
        len(body) * 4 > MAX_BODY_BYTES and len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES
    ):
        raise _too_large()
    return body


def parse_event(event, context=None) -> Request:
    """The request id is API Gateway's when there is one (the client sees it as x-amzn-RequestId),
    else Lambda's own."""
    rid = _text(getattr(context, "aws_request_id", ""), "", 256)
    if not isinstance(event, dict):
        raise bad_request("invalid_event", "event must be a JSON object: a predict body or an API Gateway event")
    ctx = event.get("requestContext")
    ctx = ctx if isinstance(ctx, dict) else {}
    http = ctx.get("http")
    if event.get("version") == "2.0" and isinstance(http, dict):
        path = event.get("rawPath") or http.get("path") or "/"
        return Request(
            "http",
            _text(http.get("method"), "GET", 16).upper(),
            _strip_stage(_text(path, "/"), ctx.get("stage")),
            _lower(event.get("headers")),
            _body(event),
            None,
            _text(ctx.get("requestId") or rid, "", 256),
        )
    if "httpMethod" in event:
        # API Gateway's `path` already lacks the stage: stripping it again would turn stage "predict"'s
        # /predict into / (a 404). Only requestContext.path, the fallback, carries the stage.
        path, stage = event.get("path") or event.get("resource"), None
        if not path:
            path, stage = ctx.get("path") or "/", ctx.get("stage")
        headers = _lower(event.get("headers"))
        if not headers and isinstance(event.get("multiValueHeaders"), dict):
            headers = {
                str(k).lower(): v[-1]
                for k, v in event["multiValueHeaders"].items()
                if isinstance(v, list) and v and isinstance(v[-1], str)
            }
        return Request(
            "rest",
            _text(event.get("httpMethod"), "GET", 16).upper(),
            _strip_stage(_text(path, "/"), stage),
            headers,
            _body(event),
            None,
            _text(ctx.get("requestId") or rid, "", 256),
        )
    # direct invoke: `aws lambda invoke --payload '{"ticker": ..., "features": [...]}'`
    return Request("direct", "POST", "/predict", {}, None, event, rid)
