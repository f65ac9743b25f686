"""Run the repository's own tools from the dashboard: stream a command's lines, (re)start a local API.

The generic process helpers (free_port, launch, stopping groups) live in models/processes.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import requests

from dashboard.config import LOCAL_DIR, ROOT
from models.processes import free_port, launch, stop_group

PY = sys.executable
STATE = LOCAL_DIR / "dashboard_api.json"  # the local API this dashboard started, so it can replace it


def stream(cmd: list[str], env: dict | None = None, timeout_s: float = 900) -> Iterator[str]:
    """Yield the command's output line by line; the last item is "exit <code>". The tool ends with the dashboard."""
    proc = launch(
        cmd,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    t_end = time.time() + timeout_s
    assert proc.stdout is not None
    for line in proc.stdout:
        yield line.rstrip("\n")
        if time.time() > t_end:
            stop_group(proc, grace_s=2)
            yield f"timed out after {timeout_s:.0f} s"
            break
    yield f"exit {proc.wait()}"


def process_identity(pid: int) -> dict | None:
    """What makes a pid ours: its start time (field 22 of /proc/PID/stat) and its command line."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 onwards
    return {"start": fields[19], "cmdline": [c.decode(errors="replace") for c in cmdline if c]}


def _runs_module(cmdline: list[str], module: str) -> bool:
    """True when a command line is `python -m MODULE ...`."""
    return any(a == "-m" and b == module for a, b in zip(cmdline, cmdline[1:], strict=False))


def is_ours(record: dict) -> bool:
    """True only when the recorded pid is still the local API this dashboard started (not a recycled pid)."""
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 1:
        return False
    now = process_identity(pid)
    return bool(
        now and now["start"] == record.get("start") and _runs_module(now["cmdline"], "local_api") and os.getpgid(pid) == pid
    )


def stop_previous() -> None:
    """Stop the local API this dashboard started earlier, and nothing else."""
    try:
        record = json.loads(STATE.read_text())
    except (OSError, ValueError):
        record = {}
    try:
        if is_ours(record):
            os.killpg(record["pid"], signal.SIGTERM)
    except (OSError, ProcessLookupError):
        pass
    STATE.unlink(missing_ok=True)


def start_local_api(key: str, port: int | None = None, workers: int = 2, wait_s: float = 60) -> str:
    """Replace the dashboard's local API with a fresh one serving the current dist/; returns its URL."""
    stop_previous()
    port = port or free_port(3001)
    log_dir = LOCAL_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    # the local API prints its key: the log is owner-only from its first byte
    fd = os.open(log_dir / "dashboard_api.out", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)  # an older log may have been created world-readable
    out = os.fdopen(fd, "ab")
    # launched, not Popen'ed: it ends with this dashboard, even though a Streamlit script run (a short-lived thread)
    # asked for it
    proc = launch(
        [PY, "-m", "local_api", "--port", str(port), "--workers", str(workers), "--no-build"]
        + ["--log-dir", str(log_dir / "dashboard_api")],
        cwd=ROOT,
        env={**os.environ, "LOCAL_API_KEY": key},
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/prod"
    ident = process_identity(proc.pid) or {}
    # the switch is the dashboard's, not one browser session's: every new session reads this record (it holds the
    # key, so it is owner-only from its first byte)
    fd = os.open(STATE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": proc.pid, "url": url, "start": ident.get("start"), "key": key}, f)
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


@lru_cache(maxsize=8)
def deploy_plan(front_door: str | None = None) -> dict:
    """What the deployer would deploy, read through its CLI (`python -m deployer plan`): the dashboard never imports it."""
    cmd = [PY, "-m", "deployer", "plan", "--json"] + (["--api", front_door] if front_door else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"`python -m deployer plan` failed: {(r.stderr or r.stdout).strip()[-300:]}")
    return json.loads(r.stdout)


@lru_cache(maxsize=8)
def deploy_plan_text(front_door: str) -> str:
    """`python -m deployer plan --api DOOR` as it prints it: what a deploy would create, shown before anything is created."""
    cmd = [PY, "-m", "deployer", "plan", "--api", front_door]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"`python -m deployer plan` failed: {(r.stderr or r.stdout).strip()[-300:]}")
    return r.stdout.strip()


@lru_cache(maxsize=8)
def runtime_support(runtime: str) -> str:
    """The runtime's support dates from deployer/runtimes.json, through the deployer's lifecycle module: no AWS access needed."""
    r = subprocess.run([PY, "-m", "deployer.lifecycle", runtime], capture_output=True, text=True, timeout=60, cwd=ROOT)
    lines = r.stdout.strip().splitlines()
    if not lines:
        return f"the support dates of {runtime} could not be read: {(r.stderr or 'no output').strip()[-200:]}"
    parts = lines[0].split(None, 2)
    checked = lines[-1].strip("()").split("; sources")[0]  # where the dates come from is the deployer's detail, not the page's
    return f"{parts[2] if len(parts) == 3 else lines[0]} ({checked})"


def training_runs() -> list[dict] | None:
    """The MLflow runs table through `python -m models.tracking runs --json`: None when training tools are absent
    (`make setup` installs no mlflow), [] when nothing was trained yet."""
    r = subprocess.run(
        [PY, "-m", "models.tracking", "runs", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def invocation_logs() -> list[Path]:
    """Every invocation log the local APIs of this checkout write."""
    return sorted(p for p in [LOCAL_DIR / "invocations.jsonl", LOCAL_DIR / "dashboard_api" / "invocations.jsonl"] if p.exists())
