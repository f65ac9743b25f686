"""The Lambda side of the local stand-in: execution environments running the real runtime client.

Each Worker is one process running awslambdaric against a Lambda Runtime API served here, with the extracted
package and nothing else on its path, on the CPython of the template's Runtime. A worker that crashes or hangs
past the function's Timeout is replaced; an invocation its dead process never took is handed to another. The
API Gateway side lives in local_api.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import settings

sys.path.append(str(Path(__file__).resolve().parents[1]))  # the checkout, for the one process launcher
from models.processes import launch  # noqa: E402

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


class Worker:
    """One execution environment: a process running awslambdaric, and the Runtime API it talks to."""

    def __init__(self, index: int, pool: Pool):
        self.index, self.pool = index, pool
        self.generation = 0
        self.inbox: queue.Queue = queue.Queue()
        self.proc: subprocess.Popen | None = None
        self.spawned_at = 0.0
        self.init_ms: float | None = None
        self.invocations = 0
        self.inflight: dict[str, Invocation] = {}
        self.lock = threading.Lock()
        self.server = RuntimeServer(("127.0.0.1", 0), self._handler_class())
        threading.Thread(target=self.server.serve_forever, daemon=True, name=f"runtime-api-{index}").start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def spawn(self) -> None:
        with self.lock:
            old = self.inbox
            self.generation += 1
            self.inbox = queue.Queue()
            while True:  # invocations handed to the dead process but never taken: give them back, untouched
                try:
                    stranded = old.get_nowait()
                except queue.Empty:
                    break
                if stranded is not None:
                    stranded.orphaned = True
                    stranded.done.set()
            old.put(None)  # release a /next still parked for the previous process
            self.init_ms, self.invocations = None, 0
            self.spawned_at = time.perf_counter()
            env = self.pool.worker_env(self.address)
            # from the launcher's long-lived thread: a worker ends with this process, not with this watcher thread
            self.proc = launch(
                [str(self.pool.python), "-S", "-m", "awslambdaric", self.pool.handler],
                cwd=self.pool.task_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self.pool.function_log,
                stderr=subprocess.STDOUT,
            )
            proc, gen = self.proc, self.generation
        threading.Thread(target=self._watch, args=(proc, gen), daemon=True, name=f"watch-{self.index}").start()

    def kill(self, generation: int | None = None) -> None:
        """Kill the current process, or only if it is still `generation` (never a healthy replacement)."""
        with self.lock:
            proc = self.proc if generation is None or generation == self.generation else None
        if proc and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _watch(self, proc: subprocess.Popen, gen: int) -> None:
        code = proc.wait()
        with self.lock:
            stale = gen != self.generation
            pending = list(self.inflight.values())
            self.inflight.clear()
        for inv in pending:
            inv.finish(error=f"Runtime exited with error: exit status {code}")
        if stale or self.pool.stopping:
            return
        # killed from outside (SIGKILL: an operator, the OOM killer) is not the function failing its init: respawn at
        # once, and never answer requests waiting for a worker with an init error 502 for work that never started
        if self.init_ms is None and code != -signal.SIGKILL:
            self.pool.note_init_failure(f"worker {self.index} exited during init (status {code}); see .local/function.log")
            time.sleep(min(5.0, 0.5 * (1 + self.pool.init_failures)))
        if not self.pool.stopping and gen == self.generation:
            self.spawn()

    def max_rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except (OSError, AttributeError, ValueError):
            return None
        return None

    def _handler_class(self):
        worker = self

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


class Pool:
    """N warm execution environments and the dispatch between them."""

    def __init__(
        self,
        function_zip: Path,
        layer_zip: Path,
        workers: int,
        api_key: str,
        log_dir: Path,
        timeout_s: float | None = None,
        python: Path | None = None,
    ):
        digest = hashlib.sha256(function_zip.read_bytes() + layer_zip.read_bytes()).hexdigest()[:16]
        base = log_dir / "lambda" / digest
        self.task_dir, self.opt_dir = base / "task", base / "opt"
        if not (base / ".complete").exists():
            shutil.rmtree(base, ignore_errors=True)
            zipfile.ZipFile(function_zip).extractall(self.task_dir)
            zipfile.ZipFile(layer_zip).extractall(self.opt_dir)
            (base / ".complete").touch()
        self.python = Path(python or sys.executable)
        self.ric_dir = self._runtime_client_dir(
            log_dir / "ric" / hashlib.sha256(str(self.python).encode()).hexdigest()[:12], self.python
        )
        self.template = settings.load_template()
        self.settings = settings.function_settings(self.template, {"ApiKeySha256": hashlib.sha256(api_key.encode()).hexdigest()})
        self.function_name = self.settings["FunctionName"]
        self.handler = self.settings["Handler"]
        self.timeout_s = float(timeout_s or self.settings["Timeout"])
        self.memory_mb = int(self.settings["MemorySize"])
        self.function_log = open(log_dir / "function.log", "ab", buffering=0)  # noqa: SIM115 - lives as long as the pool
        self.idle: queue.Queue = queue.Queue()
        self.stopping = False
        self.init_failures = 0
        self.last_init_error = ("", 0.0)
        self.workers = [Worker(i, self) for i in range(workers)]
        for w in self.workers:
            w.spawn()

    @staticmethod
    def _runtime_client_dir(path: Path, python: Path) -> Path:
        """awslambdaric and its two dependencies as `python` has them, alone: the worker's path holds nothing else."""
        path.mkdir(parents=True, exist_ok=True)
        code = (
            "import importlib.util, json; print(json.dumps({m: (importlib.util.find_spec(m) or None) and "
            "importlib.util.find_spec(m).origin for m in ('awslambdaric', 'runtime_client', 'simplejson', "
            "'snapshot_restore_py')}))"
        )
        r = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
        origins = json.loads(r.stdout) if r.returncode == 0 else {}
        for mod in ("awslambdaric", "runtime_client", "simplejson", "snapshot_restore_py"):
            if not origins.get(mod):
                raise SystemExit(f"local_api: {mod} is not installed for {python}; run `make setup`")
            src = Path(origins[mod])
            src = src.parent if src.name == "__init__.py" else src
            link = path / src.name
            if not link.exists():
                link.symlink_to(src)
        return path

    def worker_env(self, runtime_api: str) -> dict:
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "PYTHONPATH": os.pathsep.join([str(self.task_dir), str(self.opt_dir / "python"), str(self.ric_dir)]),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "_HANDLER": self.handler,
            "LAMBDA_TASK_ROOT": str(self.task_dir),
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_REGION": "local",
            "AWS_DEFAULT_REGION": "local",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.settings['Runtime']}",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "OMP_NUM_THREADS": "1",
        }
        env.update({k: str(v) for k, v in self.settings["Environment"]["Variables"].items()})
        return env

    def note_init_failure(self, message: str) -> None:
        self.init_failures += 1
        self.last_init_error = (message, time.monotonic())

    def invoke(self, event: dict, wait_s: float) -> tuple[str, Invocation]:
        """-> (outcome, invocation): "ok", "error" (handler raised), "crash", "timeout" (function Timeout),
        "integration_timeout" (API Gateway gave up first) or "init_error"."""
        t_end = time.perf_counter() + wait_s
        while True:
            inv = Invocation(event, self.timeout_s)
            outcome, worker = self._dispatch(inv, t_end)
            if outcome is not None:
                return outcome, inv
            limit = min(self.timeout_s, max(0.0, t_end - time.perf_counter()))
            if not inv.done.wait(limit):
                worker.kill(inv.generation)  # hung: Lambda ends it at its Timeout; only that process, never a replacement
                inv.finish(error="Task timed out")
                return ("timeout" if limit >= self.timeout_s else "integration_timeout"), inv
            if inv.orphaned:  # its worker died before taking it: nothing ran, so another worker may take it
                continue
            if inv.result is not None:
                return "ok", inv
            return ("crash" if inv.error and inv.error.startswith("Runtime exited") else "error"), inv

    def _dispatch(self, inv: Invocation, t_end: float) -> tuple[str | None, Worker | None]:
        """Hand `inv` to an idle, live worker: (None, worker), or (outcome, None) when none comes in time."""
        while True:
            remaining = t_end - time.perf_counter()
            if remaining <= 0:
                return "integration_timeout", None
            try:
                worker, gen = self.idle.get(timeout=min(remaining, 0.25))
            except queue.Empty:
                msg, when = self.last_init_error
                if msg and time.monotonic() - when < 2.0 and self.init_failures >= len(self.workers):
                    inv.error = msg
                    return "init_error", None
                continue
            with worker.lock:
                if gen != worker.generation or worker.proc is None or worker.proc.poll() is not None:
                    continue
                worker.inbox.put(inv)
            return None, worker

    def stop(self) -> None:
        self.stopping = True
        for w in self.workers:
            w.kill()
            w.server.shutdown()


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
