"""`make mlflow`: the MLflow UI on 127.0.0.1:5000 over the local store, offline. Ctrl-C stops it and its workers.

MLflow's server starts helper processes (uvicorn/gunicorn workers), so it runs in its own process group and
the whole group is stopped.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models import tracking  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, default=5000)
    args = p.parse_args()
    if not tracking.store_exists():
        print("mlflow: no tracking store yet; run `make experiments` or `make train` first", file=sys.stderr)
        return 1
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        tracking.tracking_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(args.port),
        "--workers",
        "1",
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    print(f"MLflow UI: http://127.0.0.1:{args.port}  (store {tracking.tracking_uri()}); Ctrl-C stops it", flush=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the server's whole process group, wait for every member, SIGKILL what lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    t_end = time.time() + grace_s
    while time.time() < t_end:
        proc.poll()
        try:
            os.killpg(proc.pid, 0)  # anyone left in the group?
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main())
