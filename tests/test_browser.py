"""The dashboard in a real browser (Debian's chromium via Playwright), against servers started as `make run` starts them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, free_port, launch, stop_group, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.integration]
sys.path.insert(0, str(ROOT / "scripts"))
from screenshots import CHROMIUM, CHROMIUM_ARGS, wait_rendered  # noqa: E402


@pytest.fixture(scope="module")
def servers(tmp_path_factory, built_packages):
    """scripts/run.py (what `make run` runs) on free ports; yields (dashboard URL, API URL)."""
    log = tmp_path_factory.mktemp("run") / "run.log"
    out = open(log, "w")  # noqa: SIM115
    proc = launch(
        [sys.executable, str(ROOT / "scripts" / "run.py"), "--port", str(free_port()), "--dashboard-port", str(free_port())],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LOCAL_API_KEY": "browser-test-key-123"},
    )

    def urls():
        text = log.read_text()
        dash = (re.search(r"dashboard\s+(http://\S+)", text) or [None, None])[1]
        api = (re.search(r"local API\s+(http://\S+/prod)\s+\(X-API-Key", text) or [None, None])[1]
        return (dash, api) if dash and api else None

    try:
        dash, api = wait_for("make run's launcher to print both URLs", urls, timeout_s=300, proc=proc, log=log)
        yield dash, api
    finally:  # SIGINT, as Ctrl-C in `make run`; then the whole group, whatever happened
        stop_group(proc, sig=signal.SIGINT, grace_s=20)
        out.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `make browser` (apt-get install chromium); `make test` does it for you")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, request, tmp_path):
    p = browser.new_page(viewport={"width": 1400, "height": 1800})
    yield p
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        shot = Path(os.environ.get("BROWSER_FAILURES", tmp_path)) / f"{request.node.name}.png"
        p.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")
    p.close()


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_choose_a_ticker_and_see_its_chart_and_prediction(servers, page):
    dash, _ = servers
    page.goto(dash)
    wait_rendered(page, timeout_ms=60_000)
    assert "Forecast" in main_text(page) and "Traceback" not in main_text(page)
    page.get_by_test_id("stMultiSelect").get_by_role("combobox").click()
    page.get_by_role("option", name="IBM", exact=True).click()
    page.keyboard.press("Escape")
    # the table's third row is IBM's forecast (the grid mirrors its cells into the DOM for accessibility)
    page.wait_for_function(
        """() => { const c = document.querySelector('[data-testid="glide-cell-0-2"]');
                                      return c && c.innerText.trim() === 'IBM'; }""",
        timeout=60_000,
    )
    wait_rendered(page, timeout_ms=60_000)
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="IBM", exact=True).click()
    page.get_by_text("IBM: one-day-ahead forecasts").wait_for(timeout=60_000)
    wait_rendered(page, timeout_ms=60_000)
    charts = page.locator(".js-plotly-plot")
    assert charts.count() >= 2  # the candlestick with the forecast, and the backtest
    assert "forecast (80% interval)" in charts.first.inner_text()
    text = main_text(page)
    assert "MASE" in text and "bundled snapshot" in text and "Traceback" not in text


def test_open_cost_monitor_and_deploy_pages(servers, page):
    dash, _ = servers
    page.goto(dash)
    wait_rendered(page, timeout_ms=60_000)
    page.get_by_test_id("stSidebarNav").get_by_text("Cost monitor").click()
    # a loaded machine may start the page switch after the old page has looked quiet: wait for the new page itself
    page.get_by_test_id("stMain").get_by_text("Projected monthly cost").first.wait_for(timeout=60_000)
    wait_rendered(page, timeout_ms=60_000)
    page.get_by_test_id("stSidebarNav").get_by_text("Deploy").click()
    page.get_by_test_id("stMain").get_by_text("Deploy locally").first.wait_for(timeout=60_000)
    wait_rendered(page, timeout_ms=60_000)
    text = main_text(page)
    assert "Deploy locally" in text and "To AWS" in text and "answers" in text


def test_move_a_slider_and_see_the_total_change(servers, page):
    dash, _ = servers
    page.goto(dash + "/costs")
    wait_rendered(page, timeout_ms=60_000)

    from playwright.sync_api import expect

    total = page.get_by_test_id("stMetric").first.get_by_test_id("stMetricValue")
    before = total.inner_text()
    handle = page.get_by_role("slider").first  # requests per day
    handle.focus()
    page.keyboard.press("End")  # 10 million a day: past every free tier
    # the rerun may start well after the key press on a loaded machine: wait for the figure itself, not for quiet
    expect(total).not_to_have_text(before, timeout=60_000)
    assert total.inner_text().startswith("$")


def test_deploy_locally_shows_the_new_url(servers, page):
    dash, api = servers
    page.goto(dash + "/deploy")
    wait_rendered(page, timeout_ms=60_000)
    page.get_by_role("button", name="Deploy locally").click()
    page.get_by_text("Local API running at").wait_for(timeout=120_000)
    wait_rendered(page, timeout_ms=60_000)
    m = re.search(r"Local API running at (http://127\.0\.0\.1:\d+/prod)", main_text(page))
    assert m and m.group(1) != api
    url_box = page.get_by_test_id("stSidebar").get_by_role("textbox", name="URL")
    assert url_box.input_value() == m.group(1), "the new local API is the active endpoint"
    assert "answers: model" in main_text(page)


def test_a_forecast_view_is_a_shareable_url(servers, page):
    """/forecast opens the Forecast page itself, with the tickers and end date of the query string, and the
    address bar follows the view."""
    dash, _ = servers
    page.goto(dash + "/forecast?tickers=IBM&end=2010-06-30")
    wait_rendered(page, timeout_ms=60_000)
    text = main_text(page)
    assert "Page not found" not in text and "IBM" in text
    assert page.get_by_test_id("stDateInput").first.locator("input[type=date]").nth(1).input_value() == "2010-06-30"
    chosen = page.get_by_test_id("stMultiSelect").first.inner_text()
    assert "IBM" in chosen and "AAPL" not in chosen
    assert "tickers=IBM" in page.url and "end=2010-06-30" in page.url


@pytest.mark.parametrize("path, heading", [("/costs", "Cost monitor"), ("/deploy", "Deploy"), ("/model", "Model")])
def test_every_page_has_a_url(servers, page, path, heading):
    dash, _ = servers
    page.goto(dash + path)
    wait_rendered(page, timeout_ms=60_000)
    assert page.get_by_role("heading", name=heading, exact=True).count() >= 1
