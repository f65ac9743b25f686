"""`make mlflow`: the MLflow UI on 127.0.0.1:5000 over the local store, offline. Ctrl-C stops it and its workers.

MLflow's server starts helper processes (uvicorn/gunicorn workers), so it runs in its own process group and
the whole group is stopped: SIGTERM, then SIGKILL after a few seconds (at once on a second Ctrl-C). The signal
handlers are explicit, so a launcher started in the background (SIGINT inherited ignored) stops too, and the
server ends with this launcher even when it is SIGKILLed (models.processes.launch).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models import tracking  # noqa: E402
from models.processes import Supervisor  # noqa: E402

GRACE_S = 5.0  # SIGTERM's grace before SIGKILL: short, so Ctrl-C answers promptly even on a loaded machine


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
    sup = Supervisor().install()
    proc = sup.launch(cmd, env=env)
    print(f"MLflow UI: http://127.0.0.1:{args.port}  (store {tracking.tracking_uri()}); Ctrl-C stops it", flush=True)
    try:
        while proc.poll() is None:
            if sup.sleep(0.5):
                return 0
        return proc.returncode
    finally:
        sup.stop_all(grace_s=GRACE_S)


if __name__ == "__main__":
    sys.exit(main())
