"""Screenshots of every dashboard page into docs/, for the README: `make screenshots`.

    python scripts/screenshots.py                     # starts its own local API + dashboard on free ports
    python scripts/screenshots.py --url http://127.0.0.1:8501   # or uses a running dashboard

Drives Debian's chromium (/usr/bin/chromium) with Playwright; never downloads a browser.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from models.processes import launch as launch_process  # noqa: E402
from models.processes import stop_group  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
PAGES = {
    "forecast": "forecast?chart=AAPL",
    "cost_monitor": "costs",
    "deploy": "deploy",
    "model": "model",
    "track_record": "track-record",  # from .local/ledger.sqlite: run `make ledger` first
}  # Forecast: the default view, AAPL's chart


def launch(playwright):
    if not Path(CHROMIUM).exists():
        raise SystemExit("screenshots: /usr/bin/chromium is missing: apt-get install chromium")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def wait_rendered(page, timeout_ms: int = 30_000, quiet_ms: int = 1500) -> None:
    """Streamlit has finished a run when its status widget is gone and the page text stops changing."""
    page.wait_for_selector('[data-testid="stMainBlockContainer"]', timeout=timeout_ms)
    t_end = time.time() + timeout_ms / 1000
    last, stable_since = None, time.time()
    while time.time() < t_end:
        text = page.evaluate("""() => (document.querySelector('[data-testid="stStatusWidget"]') ? 'RUNNING' : '') +
                                      document.querySelector('[data-testid="stMain"]').innerText""")
        if text != last:
            last, stable_since = text, time.time()
        elif not text.startswith("RUNNING") and (time.time() - stable_since) * 1000 >= quiet_ms:
            return
        page.wait_for_timeout(200)
    raise TimeoutError("the page did not settle")


DRAWN = """() => [...document.querySelectorAll('[data-testid="stDataFrame"]')].every(d => d.querySelector('table tr td'))
    && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].every(c => c.querySelector('.main-svg'))
    && [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].every(c => c.querySelector('svg, canvas'))"""


def wait_drawn(page, timeout_ms: int = 60_000) -> None:
    """Every table and chart on the page has drawn its content: a quiet page can still hold empty frames."""
    page.wait_for_function(DRAWN, timeout=timeout_ms, polling=200)
    page.wait_for_timeout(500)  # the last frame's paint


def start_servers() -> tuple[str, subprocess.Popen]:
    proc = launch_process(
        [sys.executable, str(ROOT / "scripts" / "run.py"), "--port", "3300", "--dashboard-port", "8700"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    t_end = time.time() + 180
    for line in proc.stdout:
        print(line, end="")
        m = re.search(r"dashboard\s+(http://\S+)", line)
        if m:  # the servers go on writing: drain it, or a full pipe would block them
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return m.group(1), proc
        if time.time() > t_end:
            break
    stop_group(proc)
    raise SystemExit("screenshots: make run did not come up")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=None, help="a running dashboard (default: start one)")
    p.add_argument("--out", type=Path, default=ROOT / "docs")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    proc = None
    url = args.url
    if url is None:
        url, proc = start_servers()
    requests.get(url + "/_stcore/health", timeout=10).raise_for_status()
    args.out.mkdir(exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 1400, "height": 2600})
            for name, path in PAGES.items():
                page.goto(f"{url}/{path}")
                wait_rendered(page)
                wait_drawn(page)
                out = args.out / f"{name}.png"
                page.screenshot(path=str(out), full_page=True)
                print(f"wrote {out}")
            first = browser.new_page(viewport={"width": 1280, "height": 800})  # what a laptop shows before scrolling
            first.goto(f"{url}/forecast")
            wait_rendered(first)
            wait_drawn(first)
            out = args.out / "forecast_first_screen.png"
            first.screenshot(path=str(out))
            print(f"wrote {out}")
            browser.close()
    finally:
        if proc is not None:
            stop_group(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
