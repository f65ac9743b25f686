"""Which API the replay asks, and the calibration state file that API reads: --url as given, the local API
`make run` started when it reads this ledger's state, or one started here."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ledger.store import DEFAULT_DB, LOCAL_DIR, ROOT
from models.client import EndpointError, ForecastClient


def state_file(db: Path) -> Path:
    """The calibration state that goes with a ledger file: .local/calibration.json beside the default ledger (the file
    `make run`'s local API reads), else <db>.calibration.json (read by a local API this replay starts)."""
    db = Path(db)
    return LOCAL_DIR / "calibration.json" if db.resolve() == DEFAULT_DB.resolve() else db.with_name(db.name + ".calibration.json")


def _answers(url: str, key: str) -> bool:
    try:
        ForecastClient(url, key, timeout=3).health()
        return True
    except EndpointError:
        return False


@contextlib.contextmanager
def local_api(state: Path, log=sys.stderr) -> Iterator[tuple[str, str]]:
    """A local API of our own on a free port, reading the calibration state at `state`, in its own process group,
    stopped (group and all) on the way out."""
    from models.processes import free_port, launch, stop_group

    port = free_port()
    key = secrets.token_urlsafe(24)
    tmp = Path(tempfile.mkdtemp(prefix="ledger-api-"))
    out = open(tmp / "local_api.out", "w")  # noqa: SIM115
    proc = launch(
        [sys.executable, "-m", "local_api", "--port", str(port), "--log-dir", str(tmp), "--calibration", str(state)],
        env={**os.environ, "LOCAL_API_KEY": key, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/prod"
    try:
        print(f"ledger: starting a local API on {url} (log {tmp / 'local_api.out'})", file=log, flush=True)
        deadline = time.monotonic() + 900  # the first start may build the packages
        while not _answers(url, key):
            if proc.poll() is not None:
                raise SystemExit(
                    f"ledger: the local API exited ({proc.returncode}): {(tmp / 'local_api.out').read_text()[-1500:]}"
                )
            if time.monotonic() > deadline:
                raise SystemExit(f"ledger: the local API did not answer within 900 s; see {tmp / 'local_api.out'}")
            time.sleep(0.3)
        yield url, key
    finally:
        stop_group(proc, grace_s=15)
        out.close()


@contextlib.contextmanager
def endpoint(url: str | None, key: str | None, state: Path) -> Iterator[tuple[str, str, Path | None]]:
    """(url, key, the calibration state file the API reads). --url/--key as given (its state is not ours to write:
    None); else the local API `make run` wrote about, if it answers and reads `state`; else one of our own."""
    if url:
        yield url.rstrip("/"), key or os.environ.get("FORECAST_API_KEY", ""), None
        return
    try:
        info = json.loads((LOCAL_DIR / "local_api.json").read_text())
    except (OSError, ValueError):
        info = {}
    reads = info.get("calibration_state")
    if info.get("url") and reads and Path(reads) == state.resolve() and _answers(info["url"], info.get("api_key", "")):
        yield info["url"], info.get("api_key", ""), state
        return
    with local_api(state) as (found, found_key):
        yield found, found_key, state
