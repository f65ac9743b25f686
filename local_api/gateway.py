"""API Gateway's side of the local stand-in (a REST API, one stage): the usage plan's key check and throttle,
the routes template.yaml defines, the exact REST v1 proxy event, the integration timeout, and one line a call in
.local/invocations.jsonl (what the cost monitor reads). Sockets and framing are gatekeeper.py's and http_framing.py's;
the Lambda side is runtime.py's."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import settings

from . import gatekeeper
from .http_framing import Answer, Request
from .runtime import Pool
from .runtime_api import Invocation, _json

INTEGRATION_TIMEOUT_S = 29.0  # API Gateway's default integration timeout
DRAIN_S = 3.0  # on SIGTERM: how long in-flight requests get to finish before the workers stop


class TokenBucket:
    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.t = float(burst), time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
            self.t = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


def predictions_in(resource: str, status: int, body: bytes) -> int:
    """How many predictions an answer carries (the cost monitor's count): 1 for a single /predict, N for a batch of
    N, 0 for anything else or an error."""
    if resource != "/predict" or status != 200:
        return 0
    try:
        answer = json.loads(body)
    except ValueError:
        return 0
    if isinstance(answer, dict) and isinstance(answer.get("predictions"), list):
        return len(answer["predictions"])
    return 1 if isinstance(answer, dict) and "prediction" in answer else 0


class Gateway:
    """API Gateway's side of a request: stage, route, throttle, usage-plan key, the proxy event, the invocation and
    the answer. Sockets are the gatekeeper's; this runs in its handler threads and never touches one."""

    def __init__(
        self,
        addr: tuple[str, int],
        pool: Pool,
        api_key: str,
        stage: str,
        bucket: TokenBucket,
        integration_timeout: float,
        log: InvocationLog,
        read_timeout: float = gatekeeper.READ_TIMEOUT_S,
        write_timeout: float = gatekeeper.WRITE_TIMEOUT_S,
        max_connections: int = gatekeeper.MAX_CONNECTIONS,
        max_pending: int = gatekeeper.MAX_PENDING,
        buffer_budget: int = gatekeeper.BUFFER_BUDGET,
    ):
        self.pool, self.api_key, self.stage, self.bucket = pool, api_key, stage, bucket
        self.integration_timeout, self.log = integration_timeout, log
        self.routes = {(r["path"], r["method"]): r for r in settings.api_routes(pool.template)}
        self.api_id = "local" + secrets.token_hex(3)
        self.listener = socket.create_server(addr, backlog=1024)
        self.server_address = self.listener.getsockname()
        self.gatekeeper = gatekeeper.Gatekeeper(
            self.listener, self.handle, read_timeout, write_timeout, max_connections, max_pending, buffer_budget
        )

    def serve(self) -> None:
        self.gatekeeper.start()

    @staticmethod
    def _error(status: int, message: str, error_type: str, rid: str = "") -> Answer:
        headers = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*", "x-amzn-ErrorType": error_type}
        headers["x-amzn-RequestId"] = rid or str(uuid.uuid4())
        return status, headers, _json({"message": message}), False

    def handle(self, req: Request, addr) -> Answer:
        target = req.target
        if target[:7].lower() == "http://" or target[:8].lower() == "https://":
            # absolute-form (RFC 9112 3.2.2): a server must accept it; the path is what follows the authority
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        path, _, query = target.partition("?")
        prefix = f"/{self.stage}"
        if not (path == prefix or path.startswith(prefix + "/")):
            return self._error(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        resource = (path[len(prefix) :] or "/").rstrip("/") or "/"
        route = self.routes.get((resource, req.method))
        if route is None:
            return self._error(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        if not self.bucket.take():
            return self._error(429, "Too Many Requests", "ThrottlingException")
        # a repeated X-API-Key: API Gateway documents no rule (docs.aws.amazon.com/apigateway/latest/developerguide/
        # api-gateway-api-key-source.html says only "the X-API-Key header"). The REST proxy event carries one value per
        # name in `headers` and every value in `multiValueHeaders` (set-up-lambda-proxy-integrations.html); `headers` gets
        # the last, and the function checks that one, so the usage-plan check reads the same: the two never disagree
        key = req.header("x-api-key")
        if route["api_key_required"] and (not key or not secrets.compare_digest(key.encode(), self.api_key.encode())):
            return self._error(403, "Forbidden", "ForbiddenException")
        event = self._event(req, addr, resource, query, key if route["api_key_required"] else None)
        rid = event["requestContext"]["requestId"]
        outcome, inv = self.pool.invoke(event, self.integration_timeout)
        answer = self._respond(outcome, inv, rid)
        # invoked means billed: logged whatever happens to the answer on its way out
        self.log.write(inv, req.method, resource, answer[0], outcome, predictions_in(resource, answer[0], answer[2]))
        return answer

    def _event(self, req: Request, addr, resource: str, query: str, key: str | None) -> dict:
        from urllib.parse import parse_qs

        headers: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        spelled: dict[str, str] = {}  # header names are case-insensitive: x-api-key and X-API-Key are one header
        for k, v in req.headers:
            k = spelled.setdefault(k.lower(), k)
            headers[k] = v  # the last value, as req.header() gives the usage-plan check: the two never disagree
            multi.setdefault(k, []).append(v)
        qs = parse_qs(query, keep_blank_values=True) if query else {}
        body = req.body
        try:
            text, b64 = (body.decode("utf-8"), False) if body else (None, False)
        except UnicodeDecodeError:
            text, b64 = base64.b64encode(body).decode(), True
        now = datetime.now(UTC)
        rid = str(uuid.uuid4())
        return {
            "resource": resource,
            "path": resource,
            "httpMethod": req.method,
            "headers": headers or None,
            "multiValueHeaders": multi or None,
            "queryStringParameters": {k: v[-1] for k, v in qs.items()} or None,
            "multiValueQueryStringParameters": qs or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": "local",
                "resourcePath": resource,
                "httpMethod": req.method,
                "extendedRequestId": rid[:18],
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{self.stage}{resource}",
                "accountId": "000000000000",
                "protocol": f"HTTP/{req.version[0]}.{req.version[1]}",
                "stage": self.stage,
                "domainPrefix": "127",
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": rid,
                "domainName": req.header("Host") or "127.0.0.1",
                "apiId": self.api_id,
                "identity": {
                    "sourceIp": addr[0],
                    "userAgent": req.header("User-Agent"),
                    "apiKey": key,
                    "apiKeyId": "local-key" if key else None,
                    "accessKey": None,
                    "accountId": None,
                    "caller": None,
                    "user": None,
                    "userArn": None,
                },
            },
            "body": text,
            "isBase64Encoded": b64,
        }

    def _respond(self, outcome: str, inv: Invocation, rid: str) -> Answer:
        if outcome == "integration_timeout":
            return self._error(504, "Endpoint request timed out", "EndpointTimeoutException", rid)
        if outcome != "ok":
            return self._error(502, "Internal server error", "InternalServerErrorException", rid)
        try:
            res = json.loads(inv.result)
            status = int(res["statusCode"])
            headers = {str(k): str(v) for k, v in (res.get("headers") or {}).items()}
            for k, vs in (res.get("multiValueHeaders") or {}).items():
                headers[str(k)] = ", ".join(map(str, vs))
            body = res.get("body") or ""
            data = base64.b64decode(body) if res.get("isBase64Encoded") else body.encode()
        except (ValueError, KeyError, TypeError, AttributeError):  # "Malformed Lambda proxy response", as API Gateway logs it
            return self._error(502, "Internal server error", "InternalServerErrorException", rid)
        lower = {k.lower() for k in headers}
        if "content-type" not in lower:
            headers["Content-Type"] = "application/json"
        if "access-control-allow-origin" not in lower:  # gateway responses carry CORS too (deploy sets them alike)
            headers["Access-Control-Allow-Origin"] = "*"
        headers["x-amzn-RequestId"] = rid
        return status, headers, data, False


class InvocationLog:
    def __init__(self, path: Path, memory_mb: int):
        self.path, self.memory_mb = path, memory_mb
        self.lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, inv: Invocation, method: str, resource: str, status: int, outcome: str, predictions: int = 0) -> None:
        from models.billing import billed_ms  # the one billing rule; local_api has put the repository on sys.path

        duration = max(0.0, (inv.ended - inv.started) * 1000) if inv.started else 0.0
        rec = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request_id": inv.id,
            "method": method,
            "path": resource,
            "status": status,
            "outcome": outcome,
            "duration_ms": round(duration, 3),
            "billed_ms": billed_ms(duration) if inv.started else 0,
            "cold_start": inv.cold,
            "init_ms": round(inv.init_ms, 1) if inv.init_ms else None,
            "memory_mb": self.memory_mb,
            "max_memory_used_mb": inv.max_rss_mb,
            "worker": inv.worker,
            "predictions": predictions,  # 1 a single /predict, N a batch of N, 0 otherwise: what the cost monitor counts
        }
        with self.lock, open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
