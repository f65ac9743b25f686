"""The Lambda Runtime API that each worker's runtime client (awslambdaric) polls: /invocation/next hands it one
event with the headers Lambda sends, and /response or /error takes its answer. The workers are in runtime.py."""

from __future__ import annotations

import json
import secrets
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RUNTIME_PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:local:000000000000:function:{name}:live"


def _json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class Invocation:
    def __init__(self, event: dict, deadline_s: float):
        self.id = str(uuid.uuid4())
        self.payload = _json(event)
        self.deadline_s = deadline_s
        self.done = threading.Event()
        self.result: bytes | None = None
        self.error: str | None = None
        self.started = 0.0
        self.ended = 0.0
        self.cold = False
        self.init_ms = None
        self.max_rss_mb = None
        self.worker = -1
        self.generation = -1  # the worker process generation that took it; a timeout kills only that one
        self.orphaned = False  # its worker died before taking it: safe to hand to another

    def finish(self, result: bytes | None = None, error: str | None = None) -> None:
        if self.done.is_set():
            return
        self.ended = time.perf_counter()
        self.result, self.error = result, error
        self.done.set()


class RuntimeServer(ThreadingHTTPServer):
    """The Runtime API's server: a runtime client that vanishes mid-request (its worker killed, crashed or timed out)
    is normal here, and its process watcher already reports it, so that costs no traceback; any other error still does."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # reset, broken pipe, aborted: the client left
            return
        super().handle_error(request, client_address)


def handler_class(worker) -> type[BaseHTTPRequestHandler]:
    """The Runtime API's request handler for one worker (a runtime.Worker, whose queue and lock it uses): what AWS's
    Runtime API answers, route by route."""

    class RuntimeAPI(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stalls

        def log_message(self, *args):  # the runtime client polls constantly: stay quiet
            pass

        def handle_one_request(self):
            # the runtime client writes a POST's headers and body separately; without quick ACKs its
            # Nagle algorithm waits out our delayed ACK (40 ms) before sending the body
            try:
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except (OSError, AttributeError):
                pass
            super().handle_one_request()

        def _reply(self, status: int, body: bytes = b"{}", headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != f"{RUNTIME_PREFIX}/invocation/next":
                return self._reply(404, _json({"errorMessage": "unknown runtime path"}))
            with worker.lock:
                inbox, gen = worker.inbox, worker.generation
                if worker.init_ms is None:
                    worker.init_ms = (time.perf_counter() - worker.spawned_at) * 1000
                    worker.pool.init_failures = 0
            worker.pool.idle.put((worker, gen))
            inv = inbox.get()
            if inv is None:  # this process was replaced; drop the connection
                self.close_connection = True
                return
            with worker.lock:
                if gen != worker.generation or worker.proc.poll() is not None:  # replaced or dead: hand the work back
                    inv.orphaned = True
                    inv.done.set()
                    self.close_connection = True
                    return
                worker.inflight[inv.id] = inv
                inv.generation = gen
                worker.invocations += 1
                inv.cold = worker.invocations == 1
                inv.init_ms = worker.init_ms if inv.cold else None
            inv.worker = worker.index
            inv.started = time.perf_counter()
            deadline_ms = int(time.time() * 1000 + inv.deadline_s * 1000)
            self._reply(
                200,
                inv.payload,
                {
                    "Lambda-Runtime-Aws-Request-Id": inv.id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN.format(name=worker.pool.function_name),
                    "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Sampled=0",
                },
            )

        def do_POST(self):
            text = (self.headers.get("Content-Length") or "0").strip()
            if not text.isascii() or not text.isdigit():  # a runtime always sends one; anything else is not one
                self.close_connection = True
                return self._reply(400, _json({"errorMessage": f"Content-Length {text[:20]!r} is not a length"}))
            length = int(text)
            body = self.rfile.read(length) if length else b""
            if len(body) < length:  # the runtime died mid-answer: no answer; its process watcher reports the crash
                self.close_connection = True
                return
            parts = self.path[len(RUNTIME_PREFIX) :].strip("/").split("/")
            if parts[:2] == ["init", "error"]:
                worker.pool.note_init_failure(f"worker {worker.index} init error: {body[:300].decode(errors='replace')}")
                return self._reply(202, b'{"status":"OK"}')
            if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                with worker.lock:
                    inv = worker.inflight.pop(parts[1], None)
                if inv is None:
                    return self._reply(400, _json({"errorMessage": "unknown or finished request id"}))
                inv.max_rss_mb = worker.max_rss_mb()
                if parts[2] == "response":
                    inv.finish(result=body)
                else:
                    inv.finish(error=body.decode(errors="replace")[:2000])
                return self._reply(202, b'{"status":"OK"}')
            return self._reply(404, _json({"errorMessage": "unknown runtime path"}))

    return RuntimeAPI
