"""`make run`: the local API and the dashboard together, on the bundled data, with no cloud account.

    python scripts/run.py [--port 3000] [--dashboard-port 8501]

Builds the Lambda packages if they are missing or stale, starts lambda/local_api.py and
`streamlit run dashboard/app.py`, prints both URLs, and stops both on Ctrl-C. A busy port is
replaced by a free one rather than failing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def wait_http(url: str, proc: subprocess.Popen, seconds: float, what: str) -> None:
    t_end = time.time() + seconds
    while time.time() < t_end:
        if proc.poll() is not None:
            raise SystemExit(f"run: the {what} exited ({proc.returncode}); its output is above")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise SystemExit(f"run: the {what} did not answer at {url} within {seconds:.0f} s")


def stop(proc: subprocess.Popen | None) -> None:
    if proc and proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--dashboard-port", type=int, default=8501)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)

    def interrupted(*_):
        raise KeyboardInterrupt

    # explicit handlers: a launcher started in the background inherits an ignored SIGINT, and a plain
    # SIGTERM would otherwise end this process without stopping the servers it started
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    sys.path[:0] = [str(ROOT), str(ROOT / "lambda")]
    key = os.environ.get("LOCAL_API_KEY") or secrets.token_urlsafe(24)
    from dashboard import processes
    from dashboard.processes import free_port

    api_port, dash_port = free_port(args.port), free_port(args.dashboard_port)
    for wanted, got, what in ((args.port, api_port, "local API"), (args.dashboard_port, dash_port, "dashboard")):
        if wanted != got:
            print(f"run: port {wanted} is busy; the {what} uses {got}", flush=True)
    env = {**os.environ, "LOCAL_API_KEY": key, "PYTHONUNBUFFERED": "1"}
    api = dash = None
    try:
        api = subprocess.Popen(
            [sys.executable, str(ROOT / "lambda" / "local_api.py"), "--port", str(api_port), "--workers", str(args.workers)],
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        api_url = f"http://127.0.0.1:{api_port}/prod"
        # the local API builds the packages first when they are missing or stale (the first run fetches the layer's
        # wheels from PyPI), so its first answer may take minutes
        wait_http(api_url + "/health", api, 900, "local API")
        dash_env = {**env, "FORECAST_API_URL": api_url, "FORECAST_API_KEY": key}
        dash = subprocess.Popen(
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
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_http(f"http://127.0.0.1:{dash_port}/_stcore/health", dash, 180, "dashboard")
        print("", flush=True)
        print(f"  dashboard   http://127.0.0.1:{dash_port}", flush=True)
        print(f"  local API   {api_url}   (X-API-Key: {key})", flush=True)
        print("  Ctrl-C stops both.", flush=True)
        while api.poll() is None and dash.poll() is None:
            time.sleep(0.5)
        which = "local API" if api.poll() is not None else "dashboard"
        print(f"run: the {which} stopped; stopping the other", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nrun: stopping", flush=True)
        return 0
    finally:
        stop(dash)
        stop(api)
        processes.stop_previous()  # a local API the dashboard's Deploy page started, if it is still ours


if __name__ == "__main__":
    sys.exit(main())
