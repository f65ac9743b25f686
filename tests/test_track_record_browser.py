"""The Track record page in chromium: a real Streamlit server over a small ledger; a shared link opens the view it
names, and choosing another ticker puts it in the address bar."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.processes import launch
from tests.support import ROOT, free_port, stop_group, wait_for
from tests.test_track_record import make_ledger

pytestmark = [pytest.mark.browser, pytest.mark.integration]
sys.path.insert(0, str(ROOT / "scripts"))
from screenshots import CHROMIUM, CHROMIUM_ARGS, wait_rendered  # noqa: E402


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """`streamlit run dashboard/app.py` as `make dashboard` starts it, its ledger a small file made here (LEDGER_DB)."""
    import requests

    tmp = tmp_path_factory.mktemp("track")
    make_ledger(tmp / "ledger.sqlite")
    port = free_port()
    log = tmp / "streamlit.log"
    out = open(log, "w")  # noqa: SIM115
    proc = launch(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        env={**os.environ, "LEDGER_DB": str(tmp / "ledger.sqlite"), "FORECAST_API_URL": "http://127.0.0.1:9/prod"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("the dashboard's health check", lambda: requests.get(url + "/_stcore/health", timeout=2).ok, proc=proc, log=log)
        yield url
    finally:
        stop_group(proc)
        out.close()


def test_a_shared_track_record_link_opens_its_view_and_follows_changes(dashboard, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        try:
            page.goto(dashboard + "/track-record?track_ticker=IBM")
            wait_rendered(page, timeout_ms=60_000)
            main = page.locator('[data-testid="stMain"]')
            assert page.get_by_role("heading", name="Track record", exact=True).count() == 1
            ticker = main.get_by_role("combobox", name="Ticker")
            assert ticker.input_value() == "IBM"
            # wait for what is asserted, not for the page to look quiet: a loaded machine draws the charts late
            expect(main).to_contain_text("Rolling 60-day coverage", timeout=60_000)
            expect(main).to_contain_text("Kupiec", timeout=60_000)
            page.locator(".js-plotly-plot").nth(2).wait_for(timeout=60_000)
            assert page.locator(".js-plotly-plot").count() == 3
            ticker.click()
            page.get_by_role("option", name="AAPL").click()
            wait_rendered(page, timeout_ms=60_000)
            page.wait_for_url("**track_ticker=AAPL**", timeout=30_000)
            assert ticker.input_value() == "AAPL"
        except Exception:
            page.screenshot(path=str(Path(os.environ.get("BROWSER_FAILURES", tmp_path)) / "track_record.png"), full_page=True)
            raise
        finally:
            browser.close()
