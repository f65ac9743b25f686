"""A local stand-in for API Gateway (REST API, one stage) in front of the Lambda runtime (local_lambda.py).

    python lambda/local_api.py [--port 3000] [--workers 2] [--stage prod]

It serves dist/lambda_function.zip + dist/layer.zip (rebuilt when missing or stale) the way AWS would:
  * API Gateway: the exact REST v1 proxy event; 403 without the API key on POST /predict (usage plan);
    403 "Missing Authentication Token" for routes the template does not define; 413 above 10 MB;
    429 when the throttle's token bucket is empty; 504 after the 29 s integration timeout.
    Framing like a careful proxy: chunked bodies read, conflicting or malformed lengths 400 and closed; a
    client gets --read-timeout seconds to send its request, and waits for it without a thread (one gatekeeper
    thread reads every connection until its request is whole); --max-connections requests are handled at once.
  * Lambda (local_lambda.py): each worker is a separate process running the real runtime client (awslambdaric)
    on the template Runtime's CPython, against a Lambda Runtime API served there, with the package extracted
    and nothing else on its path. A worker that crashes or hangs past the function's Timeout is replaced.
Every invocation is appended to .local/invocations.jsonl with its duration and billed duration (whole ms,
rounded up as Lambda bills); the cost monitor reads it. The function's own log lines go to .local/function.log.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import queue
import secrets
import selectors
import signal
import socket
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

LAMBDA_DIR = Path(__file__).resolve().parent
ROOT = LAMBDA_DIR.parent
sys.path.insert(0, str(LAMBDA_DIR))

import package  # noqa: E402
import runtime_python  # noqa: E402
import settings  # noqa: E402
from local_lambda import Invocation, InvocationLog, Pool, _json  # noqa: E402

sys.path.insert(0, str(ROOT))
from dashboard.config import LOCAL_DIR  # noqa: E402  (the one place the .local folder is named)

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway's hard limit
INTEGRATION_TIMEOUT_S = 29.0  # API Gateway's default integration timeout
READ_TIMEOUT_S = 10.0  # a client gets this long to send a request's headers and body (and to idle)
MAX_CONNECTIONS = 64  # requests handled at once (threads); a connection still sending costs a buffer, not a thread
MAX_PENDING = 8192  # connections still sending their request; beyond it a quick 503 and close
MAX_HEAD = 64 * 1024  # request line + headers


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


class _Prefixed(io.RawIOBase):
    """A socket whose first bytes were already read by the gatekeeper."""

    def __init__(self, prefix: bytes, sock: socket.socket):
        self.prefix, self.sock = memoryview(prefix), sock

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int | None:
        if len(self.prefix):
            n = min(len(b), len(self.prefix))
            b[:n] = self.prefix[:n]
            self.prefix = self.prefix[n:]
            return n
        try:
            return self.sock.recv_into(b)
        except BlockingIOError:
            return None


_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b'Content-Length: 34\r\n\r\n{"message": "Service Unavailable"}'
)


def _request_ready(buf: bytes) -> bool | None:
    """True when `buf` holds a whole request head and, where Content-Length says how long it is, the whole body; None
    when the head is too long to be a request. Framing errors are left to the handler, which answers them."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None if len(buf) > MAX_HEAD else False
    lengths = [
        line.split(b":", 1)[1].strip() for line in buf[:end].split(b"\r\n")[1:] if line.lower().startswith(b"content-length:")
    ]
    chunked = any(line.lower().startswith(b"transfer-encoding:") for line in buf[:end].split(b"\r\n")[1:])
    if chunked or len(lengths) != 1 or not lengths[0].isdigit() or int(lengths[0]) > MAX_PAYLOAD:
        return True
    return len(buf) >= end + 4 + int(lengths[0])


class Gatekeeper(threading.Thread):
    """One thread reads every connection until its request is complete (or its read deadline passes), so a slow
    client costs a buffer, not a thread; complete requests go to a bounded pool of handler threads. A keep-alive
    connection comes back here between requests."""

    def __init__(self, server: Gateway, read_timeout: float, max_pending: int = MAX_PENDING):
        super().__init__(daemon=True, name="gatekeeper")
        self.server, self.read_timeout, self.max_pending = server, read_timeout, max_pending
        self.selector = selectors.DefaultSelector()
        self.incoming: queue.SimpleQueue = queue.SimpleQueue()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)
        self.pending: dict[int, list] = {}  # fd -> [socket, address, buffer, deadline]

    def add(self, sock: socket.socket, addr, prefix: bytes = b"") -> None:
        self.incoming.put((sock, addr, prefix))
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    def _drop(self, fd: int, answer: bytes | None = None) -> None:
        sock = self.pending.pop(fd)[0]
        self.selector.unregister(sock)
        if answer:
            try:
                sock.send(answer)
            except OSError:
                pass
        self.server.shutdown_request(sock)

    def _dispatch(self, fd: int) -> None:
        sock, addr, buf, _ = self.pending.pop(fd)
        self.selector.unregister(sock)
        sock.setblocking(True)
        self.server.handlers.submit(self.server.handle_connection, sock, addr, bytes(buf))

    def run(self) -> None:
        while True:
            for key, _ in self.selector.select(timeout=0.25):
                if key.fileobj is self.wake_r:
                    try:
                        self.wake_r.recv(4096)
                    except OSError:
                        pass
                    continue
                fd = key.fd
                entry = self.pending.get(fd)
                if entry is None:
                    continue
                try:
                    data = entry[0].recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:  # the client left before its request was whole: nothing is invoked
                    self._drop(fd)
                    continue
                entry[2] += data
                ready = _request_ready(bytes(entry[2]))
                if ready is None:
                    self._drop(
                        fd, b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                    )
                elif ready:
                    self._dispatch(fd)
            while not self.incoming.empty():
                sock, addr, prefix = self.incoming.get()
                if len(self.pending) >= self.max_pending:
                    try:
                        sock.send(_503)
                    except OSError:
                        pass
                    self.server.shutdown_request(sock)
                    continue
                sock.setblocking(False)
                fd = sock.fileno()
                self.pending[fd] = [sock, addr, bytearray(prefix), time.monotonic() + self.read_timeout]
                self.selector.register(sock, selectors.EVENT_READ, None)
                if prefix and _request_ready(prefix):
                    self._dispatch(fd)
            now = time.monotonic()
            for fd in [fd for fd, e in self.pending.items() if e[3] <= now]:
                self._drop(fd)  # a slow or idle client: closed at its read deadline


class Gateway(HTTPServer):
    request_queue_size = 1024

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
        max_pending: int = MAX_PENDING,
    ):
        from concurrent.futures import ThreadPoolExecutor

        self.pool, self.api_key, self.stage, self.bucket = pool, api_key, stage, bucket
        self.integration_timeout, self.log = integration_timeout, log
        self.routes = {(r["path"], r["method"]): r for r in settings.api_routes(pool.template)}
        self.api_id = "local" + secrets.token_hex(3)
        self.deadlines = Deadlines(read_timeout)  # a chunked body still arriving in a handler thread
        self.handlers = ThreadPoolExecutor(max_workers=max_connections, thread_name_prefix="gateway")
        super().__init__(addr, GatewayHandler)
        self.gatekeeper = Gatekeeper(self, read_timeout, max_pending)
        self.gatekeeper.start()

    def process_request(self, request, client_address):
        self.gatekeeper.add(request, client_address)  # no thread until the request is whole

    def handle_connection(self, sock: socket.socket, addr, prefix: bytes) -> None:
        """One request in a handler thread; a keep-alive connection then goes back to the gatekeeper."""
        try:
            handler = GatewayHandler(sock, addr, self, prefix)
        except Exception:  # noqa: BLE001 - a broken connection must not take the pool thread with it
            self.shutdown_request(sock)
            return
        if handler.close_connection or handler.leftover is None:
            self.shutdown_request(sock)
        else:
            self.gatekeeper.add(sock, addr, handler.leftover)


class GatewayHandler(BaseHTTPRequestHandler):
    """Exactly one request per instance: the gatekeeper has already read it (or its head, for a chunked body)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Gateway

    def __init__(self, sock, addr, server, prefix: bytes = b""):
        self.prefix, self.leftover = prefix, None
        super().__init__(sock, addr, server)

    def setup(self):
        super().setup()
        self.raw = _Prefixed(self.prefix, self.connection)
        self.rfile = _EofReader(io.BufferedReader(self.raw, 65536))

    def finish(self):
        if not self.close_connection:  # whatever the client already sent of its next request goes back with it
            self.connection.setblocking(False)
            try:
                self.leftover = self.rfile.raw.peek(65536)
            except (OSError, ValueError):
                self.leftover = None
            self.connection.setblocking(True)
        super().finish()

    def handle(self):
        self.close_connection = True
        self.server.deadlines.start(self.connection)  # a chunked body may still be arriving
        try:
            self.handle_one_request()
        finally:
            self.server.deadlines.stop(self.connection)

    def log_message(self, *args):
        pass

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
        help=f"requests handled at once, one thread each (default {MAX_CONNECTIONS}); a connection still sending its "
        "request waits without a thread",
    )
    p.add_argument(
        "--max-pending",
        type=int,
        default=MAX_PENDING,
        help=f"connections still sending a request; more get 503 at once (default {MAX_PENDING})",
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
            max_pending=args.max_pending,
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
