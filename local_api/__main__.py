"""A local stand-in for API Gateway (REST API, one stage) in front of the Lambda runtime (local_lambda.py).

    python lambda/local_api.py [--port 3000] [--workers 2] [--stage prod]

It serves dist/lambda_function.zip + dist/layer.zip (rebuilt when missing or stale) the way AWS would:
  * API Gateway: the exact REST v1 proxy event; 403 without the API key on POST /predict (usage plan);
    403 "Missing Authentication Token" for routes the template does not define; 413 above 10 MB;
    429 when the throttle's token bucket is empty; 504 after the 29 s integration timeout.
    Framing like a careful proxy (http_framing.py): chunked bodies read, repeated, folded or malformed lengths 400
    and closed. One gatekeeper thread (gatekeeper.py) does every read and write, so a client that sends or reads
    slowly costs a buffer, not a thread: --read-timeout to send a request, --write-timeout to take an answer,
    --max-connections requests handled at once, a buffer budget, and SIGTERM drains within a few seconds.
  * Lambda (local_lambda.py): each worker is a separate process running the real runtime client (awslambdaric)
    on the template Runtime's CPython, against a Lambda Runtime API served there, with the package extracted
    and nothing else on its path. A worker that crashes or hangs past the function's Timeout is replaced.
Every invocation is appended to .local/invocations.jsonl with its duration and billed duration (whole ms,
rounded up as Lambda bills); the cost monitor reads it. The function's own log lines go to .local/function.log.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

LAMBDA_DIR = Path(__file__).resolve().parent
ROOT = LAMBDA_DIR.parent
sys.path.insert(0, str(LAMBDA_DIR))

import gatekeeper  # noqa: E402
import package  # noqa: E402
import runtime_python  # noqa: E402
import settings  # noqa: E402
from http_framing import MAX_PAYLOAD, Request  # noqa: E402,F401  (MAX_PAYLOAD: API Gateway's 10 MB, for readers)
from local_lambda import Invocation, InvocationLog, Pool, _json  # noqa: E402

sys.path.insert(0, str(ROOT))
from models.local import LOCAL_DIR, saved_key  # noqa: E402  (the one place the .local folder is named; lambda/ tooling imports models only)

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
    def _error(status: int, message: str, error_type: str, rid: str = "") -> gatekeeper.Answer:
        headers = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*", "x-amzn-ErrorType": error_type}
        headers["x-amzn-RequestId"] = rid or str(uuid.uuid4())
        return status, headers, _json({"message": message}), False

    def handle(self, req: Request, addr) -> gatekeeper.Answer:
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

    def _respond(self, outcome: str, inv: Invocation, rid: str) -> gatekeeper.Answer:
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


def write_private(path: Path, text: str) -> None:
    """Create a file only its owner can read from the first byte (the key must never sit world-readable)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def function_runtime() -> tuple[Path, package.Target, str | None]:
    """(interpreter, build target, caveat): the template's Runtime when its CPython exists here; otherwise this
    interpreter with a layer built for it, and a caveat that says plainly it is not the deployed runtime."""
    target = package.Target.from_template(arch="x86_64")
    try:
        return runtime_python.ensure_venv(target.python, quiet=True), target, None
    except SystemExit as exc:
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        caveat = (
            f"serving the function on CPython {here}, NOT the deployed {settings.function_settings()['Runtime']}: "
            f"{str(exc).removeprefix('runtime_python: ')}"
        )
        import dataclasses

        return Path(sys.executable), dataclasses.replace(target, python=here), caveat


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_API_PORT", 3000)))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--workers", type=int, default=2, help="warm execution environments (default 2: one per core here)")
    p.add_argument("--stage", default="prod")
    p.add_argument("--rate-limit", type=float, default=1000.0, help="throttle: requests per second (API Gateway's token bucket)")
    p.add_argument("--burst-limit", type=int, default=2000, help="throttle: bucket size")
    p.add_argument("--integration-timeout", type=float, default=INTEGRATION_TIMEOUT_S)
    p.add_argument(
        "--log-dir", type=Path, default=LOCAL_DIR, help="where invocations.jsonl, function.log and the extracted package live"
    )
    p.add_argument("--no-build", action="store_true", help="serve dist/ as it is, even if stale")
    p.add_argument(
        "--function-zip", type=Path, default=None, help="serve this function zip instead of dist/'s (implies --no-build)"
    )
    p.add_argument(
        "--layer-zip", type=Path, default=None, help="with --function-zip: the layer to serve (default dist/layer.zip)"
    )
    p.add_argument("--timeout", type=float, default=None, help="override the function Timeout from template.yaml (seconds)")
    p.add_argument(
        "--read-timeout",
        type=float,
        default=gatekeeper.READ_TIMEOUT_S,
        help=f"seconds a client gets to send a request, or to idle between requests (default {gatekeeper.READ_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--write-timeout",
        type=float,
        default=gatekeeper.WRITE_TIMEOUT_S,
        help=f"seconds a client gets to take an answer before it is closed (default {gatekeeper.WRITE_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=gatekeeper.MAX_CONNECTIONS,
        help=f"requests handled at once, one thread each (default {gatekeeper.MAX_CONNECTIONS}); a connection still "
        "sending its request, or taking its answer, waits without a thread",
    )
    p.add_argument(
        "--max-pending",
        type=int,
        default=gatekeeper.MAX_PENDING,
        help=f"open connections; more get 503 at once (default {gatekeeper.MAX_PENDING}, lowered to fit the open-file limit)",
    )
    p.add_argument(
        "--buffer-budget-mb",
        type=float,
        default=gatekeeper.BUFFER_BUDGET / 2**20,
        help=f"bytes held across all connections (requests being read, answers unsent); past it a connection gets 503 "
        f"(default {gatekeeper.BUFFER_BUDGET // 2**20} MiB)",
    )
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error(f"--port must be 0..65535, not {args.port}")
    for name in ("workers", "max_connections", "max_pending", "burst_limit"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}: the API could answer nothing")
    units = {"integration_timeout": "s", "read_timeout": "s", "write_timeout": "s", "timeout": "s"}
    units |= {"buffer_budget_mb": "MiB", "rate_limit": "requests a second"}
    for name, unit in units.items():
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            p.error(f"--{name.replace('_', '-')} must be a positive number ({unit}), not {value}")

    args.log_dir.mkdir(parents=True, exist_ok=True)
    python, target, caveat = function_runtime()
    if args.function_zip:
        fn, layer = args.function_zip.resolve(), (args.layer_zip or package.LAYER_ZIP).resolve()
        if not fn.exists() or not layer.exists():
            raise SystemExit(f"local_api: {fn if not fn.exists() else layer} does not exist")
    elif args.no_build:
        fn, layer = package.paths(target)
        if not fn.exists() or not layer.exists():
            raise SystemExit("local_api: dist/ has no packages; run `python lambda/package.py` or drop --no-build")
    else:
        fn, layer = package.ensure_built(quiet=not package.is_stale(target), target=target)
    # the key the last run served (owner-only file), so a README's `$KEY` survives a restart
    api_key = os.environ.get("LOCAL_API_KEY") or saved_key(args.log_dir) or secrets.token_urlsafe(24)
    pool = Pool(fn, layer, args.workers, api_key, args.log_dir, timeout_s=args.timeout, python=python)
    log = InvocationLog(args.log_dir / "invocations.jsonl", pool.memory_mb)
    try:
        server = Gateway(
            (args.host, args.port),
            pool,
            api_key,
            args.stage,
            TokenBucket(args.rate_limit, args.burst_limit),
            args.integration_timeout,
            log,
            read_timeout=args.read_timeout,
            write_timeout=args.write_timeout,
            max_connections=args.max_connections,
            max_pending=args.max_pending,
            buffer_budget=int(args.buffer_budget_mb * 2**20),
        )
    except OSError as exc:
        pool.stop()
        raise SystemExit(
            f"local_api: cannot listen on {args.host}:{args.port} ({exc.strerror}); "
            "another local API running? choose another --port"
        ) from None
    url = f"http://{args.host}:{server.server_address[1]}/{args.stage}"
    info = args.log_dir / "local_api.json"  # for the dashboard's defaults; a local development key, owner-only
    write_private(
        info,
        json.dumps(
            {
                "url": url,
                "pid": os.getpid(),
                "api_key": api_key,
                "runtime": pool.settings["Runtime"],
                "python": f"{target.python}",
                "caveat": caveat,
            }
        )
        + "\n",
    )
    print(f"local API  {url}   POST /predict (X-API-Key), GET /model, GET /health", flush=True)
    print(
        f"API key    {api_key}{'' if os.environ.get('LOCAL_API_KEY') else '   (kept in local_api.json; LOCAL_API_KEY sets it)'}",
        flush=True,
    )
    print(
        f"function   {fn.relative_to(ROOT) if fn.is_relative_to(ROOT) else fn} on {args.workers} awslambdaric "
        f"worker(s), {pool.memory_mb} MB, "
        f"timeout {pool.timeout_s:g}s; invocations -> {log.path}",
        flush=True,
    )
    print(
        f"runtime    CPython {target.python} ({python}) for {pool.settings['Runtime']}"
        + (f"\nWARNING    {caveat}" if caveat else ", as on Lambda"),
        flush=True,
    )

    print(
        f"limits     {server.gatekeeper.max_pending} connections (open-file limit), {args.max_connections} handled at once, "
        f"{args.buffer_budget_mb:g} MiB buffered; read {args.read_timeout:g}s, write {args.write_timeout:g}s",
        flush=True,
    )
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGINT too: it may arrive inherited as ignored
        signal.signal(sig, lambda *_: stopping.set())
    server.serve()
    stopping.wait()
    # drain: stop accepting, queued requests 503 now, in-flight ones get DRAIN_S, then the workers stop
    t0 = time.monotonic()
    server.gatekeeper.drain(DRAIN_S)
    server.gatekeeper.stopped.wait(DRAIN_S + 1.0)
    pool.stop()
    print(f"local API stopped (drained in {time.monotonic() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
