"""The Lambda side of the local stand-in: execution environments running the real runtime client.

Each Worker is one process running awslambdaric against a Lambda Runtime API served here, with the extracted
package and nothing else on its path, on the CPython of the template's Runtime. A worker that crashes or hangs
past the function's Timeout is replaced; an invocation its dead process never took is handed to another. The
Runtime API they poll is runtime_api.py; the API Gateway side is gateway.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import settings

from models.processes import launch

from .runtime_api import Invocation, RuntimeServer, handler_class


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
        self.server = RuntimeServer(("127.0.0.1", 0), handler_class(self))
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
        calibration: Path | None = None,
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
        self.calibration = calibration
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
        if self.calibration is not None:  # what a deployed function reads from SSM, locally a file the ledger writes
            env["CALIBRATION_STATE"] = str(self.calibration)
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

    def stats(self) -> list[dict]:
        """Each worker's current process and how many it has had (1 + the restarts after a crash, a kill, a hang)."""
        return [{"index": w.index, "pid": w.proc.pid if w.proc else None, "generation": w.generation} for w in self.workers]

    def stop(self) -> None:
        self.stopping = True
        for w in self.workers:
            w.kill()
            w.server.shutdown()
