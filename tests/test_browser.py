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
KEY = "browser-test-key-123"  # the local API's key in these tests: it must never reach the browser
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
        env={**os.environ, "LOCAL_API_KEY": KEY},
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


def nav(page):
    """The sidebar's page list (dashboard/viewstate.py nav_links: each link carries its page's saved view)."""
    return page.locator(".st-key-sidebar_nav")


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def expect_text(page, text: str, timeout_ms: int = 60_000) -> None:
    """Wait for `text` in the main area itself: a loaded machine may look quiet before the section has drawn."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stMain")).to_contain_text(text, timeout=timeout_ms)


def wait_grid(page, header: str, timeout_ms: int = 90_000) -> None:
    """Wait until a table with a column `header` has drawn."""
    page.wait_for_function(
        """h => [...document.querySelectorAll('[data-testid="stDataFrame"] table tr:first-child')]
                  .some(tr => [...tr.querySelectorAll('th,td')].some(c => c.innerText.trim() === h))""",
        arg=header,
        timeout=timeout_ms,
    )


UNSET = re.compile(r"\b(None|nan|NaN)\b")


def grids(page) -> list[list[list[str]]]:
    """Every st.dataframe on the page as rows of cell texts (the grid mirrors its cells into a DOM table)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stDataFrame"]')].map(d =>
             [...d.querySelectorAll('table tr')].map(tr => [...tr.querySelectorAll('th,td')].map(c => c.innerText.trim())))"""
    )


def grid(page, header: str) -> list[dict[str, str]]:
    """The rows of the first table that has a column `header`, as dicts."""
    for rows in grids(page):
        if rows and header in rows[0]:
            return [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]
    raise AssertionError(f"no table with a column {header!r} on {page.url}")


def forecast_cards(page, n: int) -> list[dict]:
    """The Forecast page's cards once the n-th has drawn (waiting for the element asserted, not for quiet): each card's
    ticker, target day, forecast and range line, and its box on the page."""
    page.locator(f".st-key-forecast_card_{n - 1}").wait_for(timeout=90_000)
    page.locator(f".st-key-forecast_card_{n}").wait_for(state="detached", timeout=60_000)  # a card left from before
    out = []
    for i in range(n):
        card = page.locator(f".st-key-forecast_card_{i}")
        label = card.get_by_test_id("stMetricLabel").inner_text()
        out.append(
            {
                "ticker": label.split(" · ")[0],
                "target": label.split("target ")[-1],
                "forecast": card.get_by_test_id("stMetricValue").inner_text(),
                "text": card.inner_text(),
                "box": card.bounding_box(),
            }
        )
    return out


def forecast_tickers(page, n: int) -> list[str]:
    return [c["ticker"] for c in forecast_cards(page, n)]


def forecast_marks(page, n: int) -> dict[str, str]:
    """The comparison chart's forecast diamonds (SVG, labelled "forecast <ticker>"), once n have drawn: ticker -> fill."""
    marks = page.locator('[data-testid="stVegaLiteChart"] path[aria-label^="forecast "]')
    marks.nth(n - 1).wait_for(timeout=60_000)
    return {m.get_attribute("aria-label").removeprefix("forecast "): m.get_attribute("fill") for m in marks.all()}


def chosen_tickers(page) -> list[str]:
    return [t for t in page.locator(".st-key-forecast_tickers").inner_text().split("\n")[1:] if t.strip()]


def open_forecast(page, url: str) -> None:
    page.goto(url)
    wait_rendered(page, timeout_ms=90_000)
    page.locator('[data-testid="stVegaLiteChart"], .js-plotly-plot').first.wait_for(timeout=60_000)


def clean(page) -> None:
    """What every page must hold to: no unset cells or words, no traceback, and the API key nowhere in its HTML."""
    text = main_text(page) + "\n" + "\n".join(c for g in grids(page) for r in g for c in r)
    assert not UNSET.search(text), f"{page.url} shows {UNSET.search(text).group()!r}"
    assert "Traceback" not in text
    assert KEY not in page.content(), f"the API key is in the HTML of {page.url}"


def test_a_user_journey_through_the_forecast_page(servers, page, tmp_path):
    """Issue 17's acceptance journey: default view, add a ticker, Back, a shared link, a page switch, a CSV download."""
    dash, _ = servers
    # 1. the default view on a 1280 x 800 screen: every default ticker's card (target day, forecast, range) on the
    # first screen, a forecast mark per ticker on the comparison chart, no "no data" message, the URL holds the view
    page.set_viewport_size({"width": 1280, "height": 800})
    open_forecast(page, dash + "/forecast")
    first = forecast_cards(page, 3)
    assert [c["ticker"] for c in first] == ["AAPL", "MSFT", "^IXIC"]
    for c in first:
        assert c["box"]["y"] >= 0 and c["box"]["y"] + c["box"]["height"] <= 800, f"{c['ticker']}'s card is below the fold"
        assert c["target"] == "2013-03-01" and float(c["forecast"].replace(",", "")) > 0, c
        assert re.search(r"80% range [\d,.]+ to [\d,.]+", c["text"]) and "Actual close" in c["text"], c["text"]
    colours = forecast_marks(page, 3)
    assert sorted(colours) == ["AAPL", "MSFT", "^IXIC"] and len(set(colours.values())) == 3, colours
    page.set_viewport_size({"width": 1400, "height": 1800})
    assert "no data" not in main_text(page).lower()
    clean(page)
    default_url = page.url
    assert re.search(r"/forecast$", default_url), "a bare /forecast already means the default view: not rewritten"
    # 2. add a ticker: its forecast appears and the URL follows
    page.locator(".st-key-forecast_tickers").get_by_role("combobox").click()
    page.get_by_role("option", name="IBM", exact=True).click()
    page.keyboard.press("Escape")
    page.wait_for_url(re.compile(r"tickers=AAPL%2CMSFT%2C%5EIXIC%2CIBM"), timeout=60_000)
    assert forecast_tickers(page, 4) == ["AAPL", "MSFT", "^IXIC", "IBM"]
    added = forecast_marks(page, 4)
    assert {t: added[t] for t in colours} == colours, "adding IBM recoloured another ticker"
    assert added["IBM"] not in colours.values()
    # 3. Back undoes it: the URL, the widget and the table
    page.go_back()
    page.wait_for_url(default_url, timeout=30_000)
    assert forecast_tickers(page, 3) == ["AAPL", "MSFT", "^IXIC"] and chosen_tickers(page) == ["AAPL", "MSFT", "^IXIC"]
    # 4. a shared link shows exactly its tickers and range (the defaults are not added)
    open_forecast(page, dash + "/forecast?tickers=IBM&range=6M&end=2012-06-29&chart=IBM")
    assert chosen_tickers(page) == ["IBM"] and forecast_tickers(page, 1) == ["IBM"]
    assert page.locator(".st-key-forecast_end input").input_value() == "2012-06-29"
    assert page.locator('.st-key-forecast_range [aria-checked="true"]').inner_text() == "6M"
    expect_text(page, "backtested days (2011-12-29 to 2012-06-29)")  # the link's 6M range, all backtested
    expect_text(page, "IBM: one-day-ahead forecasts")  # the chart the link named: IBM's, with its backtest
    clean(page)
    shared = page.url
    # 5. to the Model page and back: the Model page's URL carries no Forecast state, and the view comes back
    nav(page).get_by_role("link", name="Model", exact=True).click()
    page.wait_for_url(re.compile(r"/model$"), timeout=30_000)
    wait_rendered(page, timeout_ms=60_000)
    clean(page)
    nav(page).get_by_role("link", name="Forecast", exact=True).click()
    page.wait_for_url(shared, timeout=30_000)
    wait_rendered(page, timeout_ms=60_000)
    assert chosen_tickers(page) == ["IBM"] and forecast_tickers(page, 1) == ["IBM"]
    assert page.locator(".st-key-forecast_end input").input_value() == "2012-06-29"
    # 6. the forecasts and the backtest download as CSV
    for label, first_column in (("Download the forecasts (CSV)", "Ticker"), ("Download the backtest (CSV)", "Ticker")):
        with page.expect_download(timeout=30_000) as dl:
            page.get_by_role("button", name=label).click()
        path = tmp_path / dl.value.suggested_filename
        dl.value.save_as(path)
        lines = path.read_text().splitlines()
        assert lines[0].split(",")[0] == first_column and all(line.split(",")[0] == "IBM" for line in lines[1:]), lines[:3]
        assert not UNSET.search(path.read_text())
    assert len(lines) > 120  # the backtest: one line per trading day of the six months


def test_the_cost_page_prices_the_function_url_at_least_10x_below_the_guide(servers, page):
    """Journey step 7: after the Forecast page made its batch calls, the Cost monitor's Function URL front door is at
    least ten times cheaper than the guide's design (the README and `python -m dashboard.costs --front-doors` agree)."""
    dash, _ = servers
    open_forecast(page, dash + "/forecast")
    nav(page).get_by_role("link", name="Cost monitor", exact=True).click()
    page.wait_for_url(re.compile(r"/costs$"), timeout=30_000)
    wait_rendered(page, timeout_ms=60_000)
    clean(page)
    header = next(h for rows in grids(page) if rows for h in rows[0] if "cheaper" in h.lower())
    url_row = next(r for r in grid(page, header) if re.search(r"\burl\b", next(iter(r.values())), re.I))
    assert float(url_row[header].rstrip("x×")) >= 10, url_row


def test_one_pages_query_string_never_reaches_another_page(servers, page):
    """Leaving the Forecast page while it still runs, or opening /model with Forecast's query string, leaves the Model
    page's URL bare; a later return to Forecast still opens the view that was left."""
    dash, _ = servers
    page.goto(dash + "/forecast?tickers=GOOG&range=6M&end=2012-12-31")
    page.locator(".st-key-forecast_tickers").wait_for(timeout=60_000)
    nav(page).get_by_role("link", name="Model", exact=True).click()  # before it settles
    wait_rendered(page, timeout_ms=60_000)
    assert re.search(r"/model$", page.url), page.url
    page.goto(dash + "/model?tickers=IBM&range=6M")
    wait_rendered(page, timeout_ms=60_000)
    page.wait_for_url(re.compile(r"/model$"), timeout=30_000)


def history_length(page) -> int:
    return page.evaluate("history.length")


def switch_to(page, name: str, url: re.Pattern | str, *, forward_entries: int = 0) -> None:
    """Click a page in the sidebar's list and wait until it has drawn: the switch must be one history entry (a push
    drops the `forward_entries` that Back left above the current one, then adds itself)."""
    before = history_length(page)
    nav(page).get_by_role("link", name=name, exact=True).click()
    page.wait_for_url(url, timeout=30_000)
    wait_rendered(page, timeout_ms=90_000)
    assert page.get_by_role("heading", name=name, exact=True).count() >= 1, f"{name} did not draw at {page.url}"
    added = history_length(page) - (before - forward_entries)
    assert added == 1, f"the switch to {name} added {added} history entries"


def back_to(page, url: re.Pattern | str) -> None:
    page.go_back()
    page.wait_for_url(url, timeout=30_000)
    wait_rendered(page, timeout_ms=90_000)


def test_one_back_undoes_every_page_switch(servers, page):
    """Every switch in the sidebar is one history entry: one Back returns to the previous page and the view it showed
    (a switch that also wrote the URL used to push a second entry, on the old page's path)."""
    dash, _ = servers
    shared = dash + "/forecast?tickers=IBM&range=6M&end=2012-06-29&chart=IBM"
    open_forecast(page, shared)
    assert page.url == shared, "a link that names the whole view is not rewritten"
    for i, (name, path) in enumerate(
        (("Cost monitor", "costs"), ("Model", "model"), ("Deploy", "deploy"), ("Track record", "track-record"))
    ):
        switch_to(page, name, re.compile(rf"/{path}$"), forward_entries=min(i, 1))
        back_to(page, shared)
        assert chosen_tickers(page) == ["IBM"] and forecast_tickers(page, 1) == ["IBM"], f"Back from {name}"
        assert page.locator(".st-key-forecast_end input").input_value() == "2012-06-29"
        expect_text(page, "IBM: one-day-ahead forecasts")
    # to the Forecast page from another one: its link opens the view it showed last; Back, Back retraces the switches
    switch_to(page, "Cost monitor", re.compile(r"/costs$"), forward_entries=1)
    switch_to(page, "Forecast", shared)
    assert chosen_tickers(page) == ["IBM"] and forecast_tickers(page, 1) == ["IBM"]
    back_to(page, re.compile(r"/costs$"))
    assert page.get_by_role("heading", name="Cost monitor", exact=True).count() >= 1
    back_to(page, shared)
    assert chosen_tickers(page) == ["IBM"]


# the Model page's interval scores (11 columns) and runs (13): they scroll, their first column pinned
WIDE_BY_DESIGN = {"interval", "run"}


def test_tables_fit_a_1280_by_800_window(servers, browser):
    """No table cuts a column off at 1280 x 800 with the sidebar open (the Forecast table's "Data" column once was):
    each grid's content is no wider than the grid, apart from the two that scroll by design."""
    dash, _ = servers
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        checked = []
        for path, header in (("/forecast", "MASE"), ("/costs", "front door"), ("/model", "ticker")):
            page.goto(dash + path)
            wait_grid(page, header)  # the table asserted below, not a quiet page: /model's used to be missing
            wait_rendered(page, timeout_ms=90_000)
            for g in page.locator('[data-testid="stDataFrame"]').all():
                first, content, shown = g.evaluate(
                    """d => { const s = d.querySelector('.dvn-scroller');
                              return [d.querySelector('table tr th')?.innerText.trim(), s.scrollWidth, s.clientWidth] }"""
                )
                if first not in WIDE_BY_DESIGN:
                    assert content <= shown, f"{path}: the table whose first column is {first!r} is {content - shown} px too wide"
                    checked.append((path, first))
        assert {("/forecast", "Ticker"), ("/costs", "front door"), ("/model", "ticker")} <= set(checked), checked
    finally:
        page.close()


@pytest.mark.parametrize("path", ["/forecast?chart=AAPL", "/forecast?tickers=IBM,^GSPC&range=Max", "/costs", "/deploy", "/model"])
def test_no_page_shows_none_or_nan_or_holds_the_key(servers, page, path):
    dash, _ = servers
    page.goto(dash + path)
    wait_rendered(page, timeout_ms=90_000)
    clean(page)


def test_open_cost_monitor_and_deploy_pages(servers, page):
    dash, _ = servers
    page.goto(dash)
    wait_rendered(page, timeout_ms=60_000)
    nav(page).get_by_text("Cost monitor").click()
    # a loaded machine may start the page switch after the old page has looked quiet: wait for the new page itself
    page.get_by_test_id("stMain").get_by_text("Projected monthly cost").first.wait_for(timeout=60_000)
    wait_rendered(page, timeout_ms=60_000)
    nav(page).get_by_text("Deploy").click()
    page.get_by_test_id("stMain").get_by_text("Deploy locally").first.wait_for(timeout=60_000)
    wait_rendered(page, timeout_ms=60_000)
    text = main_text(page)
    assert "Deploy locally" in text and "To AWS" in text and "answers" in text


def test_move_a_slider_and_see_the_total_change(servers, page):
    dash, _ = servers
    page.goto(dash + "/costs")
    wait_rendered(page, timeout_ms=60_000)

    from playwright.sync_api import expect

    # the quiet wait can end before the first run has drawn anything: wait for the slider itself, by name
    handle = page.get_by_role("slider", name="Predictions per day")
    handle.wait_for(timeout=60_000)
    wait_rendered(page, timeout_ms=60_000)
    total = page.get_by_test_id("stMetric").first.get_by_test_id("stMetricValue")
    before = total.inner_text()
    top = handle.get_attribute("max")  # an <input type="range">: End moves its value to max
    for _ in range(3):  # a key pressed while a late rerun replaces the slider is lost: press until the handle moved
        handle.focus()
        page.keyboard.press("End")  # 10 million a day: past every free tier
        try:
            expect(handle).to_have_value(top, timeout=10_000)
            break
        except AssertionError:
            continue
    expect(handle).to_have_value(top, timeout=1_000)
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


@pytest.mark.parametrize("path, heading", [("/costs", "Cost monitor"), ("/deploy", "Deploy"), ("/model", "Model")])
def test_every_page_has_a_url(servers, page, path, heading):
    dash, _ = servers
    page.goto(dash + path)
    wait_rendered(page, timeout_ms=60_000)
    assert page.get_by_role("heading", name=heading, exact=True).count() >= 1
