"""`make run`: the local API and the dashboard together, on the bundled data, with no cloud account.

    python scripts/run.py [--port 3000] [--dashboard-port 8501]

Builds the Lambda packages if they are missing or stale, starts the local API (python -m local_api) and
`streamlit run dashboard/app.py`, prints both URLs, and stops both on Ctrl-C (a second Ctrl-C kills them at
once). A busy port is replaced by a free one rather than failing; a port left in TIME_WAIT by the last run is
not busy. The API key is reused from the last run (.local/local_api.json, owner-only) unless LOCAL_API_KEY is set.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from models.local import saved_key  # noqa: E402,F401  (tests reach it as run.saved_key)
from models.processes import Supervisor, free_port  # noqa: E402


def wait_http(url: str, proc: subprocess.Popen, seconds: float, what: str, sup: Supervisor) -> bool:
    """True once `url` answers; False when a stop was asked for first."""
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end and not sup.stopping:
        if proc.poll() is not None:
            raise SystemExit(f"run: the {what} exited ({proc.returncode}); its output is above")
        try:
            requests.get(url, timeout=1)
            return True
        except requests.RequestException:
            sup.sleep(0.3)
    if sup.stopping:
        return False
    raise SystemExit(f"run: the {what} did not answer at {url} within {seconds:.0f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--dashboard-port", type=int, default=8501)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)

    # the first Ctrl-C (or SIGTERM/SIGHUP) stops the servers with a grace period, a second kills them at once;
    # the handlers never raise, so no traceback and no half-done cleanup
    sup = Supervisor().install()
    sys.path.insert(0, str(ROOT / "lambda"))
    from dashboard import processes
    from dashboard.config import LOCAL_DIR

    key = os.environ.get("LOCAL_API_KEY") or saved_key(LOCAL_DIR) or secrets.token_urlsafe(24)
    api_port, dash_port = free_port(args.port), free_port(args.dashboard_port)
    for wanted, got, what in ((args.port, api_port, "local API"), (args.dashboard_port, dash_port, "dashboard")):
        if wanted != got:
            print(f"run: port {wanted} is busy; the {what} uses {got}", flush=True)
    env = {**os.environ, "LOCAL_API_KEY": key, "PYTHONUNBUFFERED": "1"}
    code = 0
    try:
        api = sup.launch(
            [sys.executable, "-m", "local_api", "--port", str(api_port), "--workers", str(args.workers)],
            env=env,
            cwd=ROOT,
        )
        api_url = f"http://127.0.0.1:{api_port}/prod"
        # the local API builds the packages first when they are missing or stale (the first run fetches the layer's
        # wheels from PyPI), so its first answer may take minutes
        if not wait_http(api_url + "/health", api, 900, "local API", sup):
            return 0
        dash_env = {**env, "FORECAST_API_URL": api_url, "FORECAST_API_KEY": key}
        dash = sup.launch(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "dashboard" / "app.py"),
                "--server.port",
                str(dash_port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            env=dash_env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=None,  # the terminal shows a page's traceback (the browser never does); an unread pipe would block it
        )
        if not wait_http(f"http://127.0.0.1:{dash_port}/_stcore/health", dash, 180, "dashboard", sup):
            return 0
        print("", flush=True)
        print(f"  dashboard   http://127.0.0.1:{dash_port}", flush=True)
        print(f"  local API   {api_url}   (X-API-Key: {key})", flush=True)
        print(f"  the key is kept in {LOCAL_DIR / 'local_api.json'} (owner-only) and reused by the next run", flush=True)
        print("  Ctrl-C stops both.", flush=True)
        while api.poll() is None and dash.poll() is None:
            if sup.sleep(0.5):
                return 0
        which = "local API" if api.poll() is not None else "dashboard"
        print(f"run: the {which} stopped; stopping the other", flush=True)
        code = 1
    except SystemExit as exc:
        print(exc, file=sys.stderr, flush=True)
        code = 1
    finally:
        if sup.stopping:
            print("\nrun: stopping (Ctrl-C again stops at once)", flush=True)
        stopped = sup.stop_all()
        processes.stop_previous()  # a local API the dashboard's Deploy page started, if it is still ours
        if not stopped:
            print("run: some processes would not stop even after SIGKILL", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
