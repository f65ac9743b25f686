"""A local stand-in for API Gateway (REST API, one stage) in front of the Lambda runtime (local_lambda.py).

    python lambda/local_api.py [--port 3000] [--workers 2] [--stage prod]

It serves dist/lambda_function.zip + dist/layer.zip (rebuilt when missing or stale) the way AWS would:
  * API Gateway: the exact REST v1 proxy event; 403 without the API key on POST /predict (usage plan);
    403 "Missing Authentication Token" for routes the template does not define; 413 above 10 MB;
    429 when the throttle's token bucket is empty; 504 after the 29 s integration timeout.
    Framing like a careful proxy: chunked bodies read, conflicting or malformed lengths 400 and closed; a
    client gets --read-timeout seconds to send its request; at most --max-connections at once.
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
import os
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LAMBDA_DIR = Path(__file__).resolve().parent
ROOT = LAMBDA_DIR.parent
sys.path.insert(0, str(LAMBDA_DIR))

import package  # noqa: E402
import runtime_python  # noqa: E402
import settings  # noqa: E402
from local_lambda import Invocation, InvocationLog, Pool  # noqa: E402

sys.path.insert(0, str(ROOT))
from dashboard.config import LOCAL_DIR  # noqa: E402  (the one place the .local folder is named)

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway's hard limit
INTEGRATION_TIMEOUT_S = 29.0  # API Gateway's default integration timeout
READ_TIMEOUT_S = 10.0  # a client gets this long to send a request's headers and body (and to idle)
MAX_CONNECTIONS = 256  # connections served at once; beyond it a quick 503 and close, no thread


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


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


class BadRequest(Exception):
    """The request cannot be read safely (framing): answer 400 and close the connection."""


class ClientGone(Exception):
    """The client closed the connection before its request was complete: nothing is invoked."""


class Deadlines:
    """One reaper thread for every connection's read deadline (a thread per timer would cost more than a request)."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.lock = threading.Lock()
        self.pending: dict[int, tuple[float, socket.socket]] = {}
        threading.Thread(target=self._reap, daemon=True, name="read-deadlines").start()

    def start(self, conn: socket.socket) -> None:
        with self.lock:
            self.pending[id(conn)] = (time.monotonic() + self.timeout_s, conn)

    def stop(self, conn: socket.socket) -> None:
        with self.lock:
            self.pending.pop(id(conn), None)

    def _reap(self) -> None:
        while True:
            time.sleep(min(0.5, self.timeout_s / 4))
            now = time.monotonic()
            with self.lock:
                expired = [k for k, (t, _) in self.pending.items() if t <= now]
                conns = [self.pending.pop(k)[1] for k in expired]
            for conn in conns:  # a slow or idle client: unblock its reader; the handler thread then ends
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _EofReader:
    """rfile that remembers whether a read met the end of the stream (a client gone mid-request)."""

    def __init__(self, raw):
        self.raw, self.eof = raw, False

    def readline(self, *args):
        line = self.raw.readline(*args)
        if not line or not line.endswith(b"\n"):
            self.eof = True
        return line

    def read(self, n=-1):
        data = self.raw.read(n)
        if n and n > 0 and len(data) < n:
            self.eof = True
        return data

    def __getattr__(self, name):
        return getattr(self.raw, name)


class Gateway(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(
        self,
        addr,
        pool: Pool,
        api_key: str,
        stage: str,
        bucket: TokenBucket,
        integration_timeout: float,
        log: InvocationLog,
        read_timeout: float = READ_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
    ):
        self.pool, self.api_key, self.stage, self.bucket = pool, api_key, stage, bucket
        self.integration_timeout, self.log = integration_timeout, log
        self.routes = {(r["path"], r["method"]): r for r in settings.api_routes(pool.template)}
        self.api_id = "local" + secrets.token_hex(3)
        self.deadlines = Deadlines(read_timeout)
        self.slots = threading.BoundedSemaphore(max_connections)
        super().__init__(addr, GatewayHandler)

    def process_request(self, request, client_address):
        """At most `max_connections` handler threads: beyond that the connection gets 503 at once and is closed."""
        if not self.slots.acquire(blocking=False):
            try:
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b'Connection: close\r\nContent-Length: 36\r\n\r\n{"message": "Service Unavailable"}\n\n'
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Gateway

    def log_message(self, *args):
        pass

    def handle_one_request(self):
        # the deadline covers waiting for a request line, the headers and the body; cleared once the body is in
        self.server.deadlines.start(self.connection)
        self.rfile = _EofReader(self.rfile if not isinstance(self.rfile, _EofReader) else self.rfile.raw)
        try:
            super().handle_one_request()
        finally:
            self.server.deadlines.stop(self.connection)

    def _send(self, status: int, body: bytes, headers: dict | None = None, request_id: str = "") -> None:
        self.send_response(status)
        sent = set()
        for k, v in (headers or {}).items():
            self.send_header(k, v)
            sent.add(k.lower())
        if "content-type" not in sent:
            self.send_header("Content-Type", "application/json")
        if "access-control-allow-origin" not in sent:  # gateway responses carry CORS too (deploy sets them alike)
            self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("x-amzn-RequestId", request_id or str(uuid.uuid4()))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _gateway_error(self, status: int, message: str, error_type: str) -> None:
        self._send(status, _json({"message": message}), {"x-amzn-ErrorType": error_type})

    def _read_chunked(self) -> bytes:
        """A Transfer-Encoding: chunked body, bounded by MAX_PAYLOAD; malformed framing is a BadRequest."""
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            if self.rfile.eof:
                raise ClientGone
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest("malformed chunk size") from None
            if size < 0:
                raise BadRequest("negative chunk size")
            if size == 0:
                while True:  # trailers, up to the blank line
                    trailer = self.rfile.readline(8192)
                    if self.rfile.eof:
                        raise ClientGone
                    if trailer in (b"\r\n", b"\n"):
                        return b"".join(parts)
            total += size
            if total > MAX_PAYLOAD:
                raise OverflowError
            data = self.rfile.read(size)
            if self.rfile.eof:
                raise ClientGone
            parts.append(data)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("chunk not followed by CRLF")

    def _read_body(self) -> bytes:
        """The request body under the same framing rules a careful proxy applies (no smuggling, no guessing)."""
        te = [v.strip().lower() for v in self.headers.get_all("Transfer-Encoding") or []]
        lengths = self.headers.get_all("Content-Length") or []
        if te:
            if lengths:
                raise BadRequest("both Content-Length and Transfer-Encoding")
            if te != ["chunked"]:
                raise BadRequest(f"unsupported Transfer-Encoding {', '.join(te)}")
            return self._read_chunked()
        if not lengths:
            return b""
        if len(set(v.strip() for v in lengths)) != 1 or not lengths[0].strip().isdigit():
            raise BadRequest("Content-Length must be one non-negative integer")
        length = int(lengths[0].strip())
        if length > MAX_PAYLOAD:
            raise OverflowError
        body = self.rfile.read(length) if length else b""
        if self.rfile.eof:
            raise ClientGone
        return body

    def _handle(self) -> None:
        srv = self.server
        if self.rfile.eof:  # the headers never finished: the client left mid-request
            raise ClientGone
        path, _, query = self.path.partition("?")
        prefix = f"/{srv.stage}"
        try:
            body = self._read_body()
        except OverflowError:
            self.close_connection = True
            return self._gateway_error(413, "Request Too Long", "RequestTooLongException")
        srv.deadlines.stop(self.connection)  # the request is in: from here the integration timeout rules
        if not (path == prefix or path.startswith(prefix + "/")):
            return self._gateway_error(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        resource = path[len(prefix) :] or "/"
        route = srv.routes.get((resource.rstrip("/") or "/", self.command))
        if route is None:
            return self._gateway_error(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        if not srv.bucket.take():
            return self._gateway_error(429, "Too Many Requests", "ThrottlingException")
        key = self.headers.get("x-api-key")
        if route["api_key_required"] and (not key or not secrets.compare_digest(key.encode(), srv.api_key.encode())):
            return self._gateway_error(403, "Forbidden", "ForbiddenException")
        event = self._event(resource.rstrip("/") or "/", query, body, key if route["api_key_required"] else None)
        outcome, inv = srv.pool.invoke(event, srv.integration_timeout)
        status = 502
        try:
            status = self._respond(outcome, inv, event["requestContext"]["requestId"])
        finally:  # invoked means billed: logged even when the client is gone before it reads the answer
            srv.log.write(inv, self.command, resource, status, outcome)

    def _event(self, resource: str, query: str, body: bytes, key: str | None) -> dict:
        from urllib.parse import parse_qs

        headers: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for k, v in self.headers.items():
            headers[k] = v
            multi.setdefault(k, []).append(v)
        qs = parse_qs(query, keep_blank_values=True) if query else {}
        try:
            text, b64 = (body.decode("utf-8"), False) if body else (None, False)
        except UnicodeDecodeError:
            text, b64 = base64.b64encode(body).decode(), True
        now = datetime.now(UTC)
        rid = str(uuid.uuid4())
        return {
            "resource": resource,
            "path": resource,
            "httpMethod": self.command,
            "headers": headers or None,
            "multiValueHeaders": multi or None,
            "queryStringParameters": {k: v[-1] for k, v in qs.items()} or None,
            "multiValueQueryStringParameters": qs or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": "local",
                "resourcePath": resource,
                "httpMethod": self.command,
                "extendedRequestId": rid[:18],
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{self.server.stage}{resource}",
                "accountId": "000000000000",
                "protocol": "HTTP/1.1",
                "stage": self.server.stage,
                "domainPrefix": "127",
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": rid,
                "domainName": self.headers.get("Host", "127.0.0.1"),
                "apiId": self.server.api_id,
                "identity": {
                    "sourceIp": self.client_address[0],
                    "userAgent": self.headers.get("User-Agent"),
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

    def _respond(self, outcome: str, inv: Invocation, rid: str) -> int:
        if outcome == "integration_timeout":
            self._send(
                504, _json({"message": "Endpoint request timed out"}), {"x-amzn-ErrorType": "EndpointTimeoutException"}, rid
            )
            return 504
        if outcome != "ok":
            self._send(
                502, _json({"message": "Internal server error"}), {"x-amzn-ErrorType": "InternalServerErrorException"}, rid
            )
            return 502
        try:
            res = json.loads(inv.result)
            status = int(res["statusCode"])
            headers = {str(k): str(v) for k, v in (res.get("headers") or {}).items()}
            for k, vs in (res.get("multiValueHeaders") or {}).items():
                headers[str(k)] = ", ".join(map(str, vs))
            body = res.get("body") or ""
            data = base64.b64decode(body) if res.get("isBase64Encoded") else body.encode()
        except (ValueError, KeyError, TypeError, AttributeError):
            self._send(
                502, _json({"message": "Internal server error"}), {"x-amzn-ErrorType": "InternalServerErrorException"}, rid
            )
            return 502  # "Malformed Lambda proxy response", as API Gateway logs it
        self._send(status, data, headers, rid)
        return status

    def _safe(self):
        try:
            self._handle()
        except BadRequest as exc:
            self.close_connection = True
            self._send(400, _json({"message": f"Bad Request: {exc}"}), {"x-amzn-ErrorType": "BadRequestException"})
        except (ClientGone, BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _safe


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
        default=READ_TIMEOUT_S,
        help=f"seconds a client gets to send a request, or to idle between requests (default {READ_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=MAX_CONNECTIONS,
        help=f"connections served at once; more get 503 at once (default {MAX_CONNECTIONS})",
    )
    args = p.parse_args(argv)

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
    api_key = os.environ.get("LOCAL_API_KEY") or secrets.token_urlsafe(24)
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
            max_connections=args.max_connections,
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
        f"API key    {api_key}{'' if os.environ.get('LOCAL_API_KEY') else '   (generated; set LOCAL_API_KEY to choose it)'}",
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

    def stop(*_):
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGINT too: it may arrive inherited as ignored
        signal.signal(sig, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        pool.stop()
        server.server_close()
        print("local API stopped", flush=True)


if __name__ == "__main__":
    main()
