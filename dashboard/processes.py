"""Run the repository's own tools from the dashboard: stream a command's lines, (re)start a local API."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from dashboard.config import LOCAL_DIR, ROOT

PY = sys.executable
STATE = LOCAL_DIR / "dashboard_api.json"  # the local API this dashboard started, so it can replace it


def stream(cmd: list[str], env: dict | None = None, timeout_s: float = 900) -> Iterator[str]:
    """Yield the command's output line by line; the last item is "exit <code>"."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    t_end = time.time() + timeout_s
    assert proc.stdout is not None
    for line in proc.stdout:
        yield line.rstrip("\n")
        if time.time() > t_end:
            proc.kill()
            yield f"timed out after {timeout_s:.0f} s"
            break
    yield f"exit {proc.wait()}"


def free_port(preferred: int = 3001) -> int:
    import socket

    for port in [preferred, 0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return s.getsockname()[1]
            except OSError:
                continue
    raise RuntimeError("no free port")


def stop_previous() -> None:
    try:
        pid = json.loads(STATE.read_text())["pid"]
        os.killpg(pid, signal.SIGTERM)
    except (OSError, ValueError, KeyError, ProcessLookupError):
        pass
    STATE.unlink(missing_ok=True)


def start_local_api(key: str, port: int | None = None, workers: int = 2, wait_s: float = 60) -> str:
    """Replace the dashboard's local API with a fresh one serving the current dist/; returns its URL."""
    stop_previous()
    port = port or free_port()
    log_dir = LOCAL_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    out = open(log_dir / "dashboard_api.out", "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen([PY, str(ROOT / "lambda" / "local_api.py"), "--port", str(port), "--workers", str(workers),
                             "--no-build", "--log-dir", str(log_dir / "dashboard_api")],
                            cwd=ROOT, env={**os.environ, "LOCAL_API_KEY": key}, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/prod"
    STATE.write_text(json.dumps({"pid": proc.pid, "url": url}))
    t_end = time.time() + wait_s
    while time.time() < t_end:
        if proc.poll() is not None:
            raise RuntimeError(f"the local API exited with {proc.returncode}; see {log_dir / 'dashboard_api.out'}")
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                return url
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"the local API did not answer at {url} within {wait_s:.0f} s")


def invocation_logs() -> list[Path]:
    """Every invocation log the local APIs of this checkout write."""
    return sorted(p for p in [LOCAL_DIR / "invocations.jsonl", LOCAL_DIR / "dashboard_api" / "invocations.jsonl"] if p.exists())
