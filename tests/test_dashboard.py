"""AppTest of every page, with the local API running and with it down; plus the pure helpers."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import config, forecasting, usage
from tests.support import ROOT, SAMPLE_KEY, free_port

APP = str(ROOT / "dashboard" / "app.py")
PAGES = ["views/forecast.py", "views/cost_monitor.py", "views/deploy.py", "views/model.py"]


def app(url: str, key: str = SAMPLE_KEY, page: str | None = None, source: str = "bundled snapshot") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["endpoint_url"] = url
    at.session_state["endpoint_key"] = key
    at.session_state["data_source"] = source
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    parts += [w.value for w in at.warning] + [i.value for i in at.info] + [s.value for s in at.success]
    return "\n".join(map(str, parts))


@pytest.fixture(autouse=True)
def fresh_caches():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


# --- with the local API running -----------------------------------------------------------------


def table(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def unescaped(s: str) -> str:
    import re

    return re.sub(r"\\(.)", r"\1", s)


def cards(at: AppTest) -> list[dict]:
    """The Forecast page's cards, in order: ticker, target day, forecast, its range line and its actual-close line."""
    out = []
    for m in at.metric:
        label = unescaped(m.label)
        out.append({"ticker": label.split(" · ")[0], "target": label.split("target ")[1], "value": m.value})
    caps = [unescaped(c.value) for c in at.caption]
    ranges = [c for c in caps if c.startswith("80% range")]
    actuals = [c for c in caps if c.startswith("Actual close")]
    assert len(ranges) == len(out), (ranges, out)
    for card, line in zip(out, ranges, strict=True):
        card["range"] = line
    return out, actuals


@pytest.mark.integration
def test_forecast_page_shows_predictions(local_api):
    """The default view has data for every default ticker: a forecast each, a backtest each, and no "no data" message."""
    at = app(local_api.url)
    assert not at.error and not at.warning, [m.value for m in [*at.error, *at.warning]]
    shown, actuals = cards(at)
    assert [c["ticker"] for c in shown] == list(forecasting.DEFAULT_TICKERS)
    assert all(float(c["value"].replace(",", "")) > 0 for c in shown)
    # the default as-of day (2013-02-28) has a next row for every default ticker: its close is shown, hit or miss
    assert {c["target"] for c in shown} == {"2013-03-01"} and len(actuals) == 3
    assert all(("hit" in a or "miss" in a) and "direction" in a for a in actuals)
    sure = [float(c["range"].split("% sure")[0].rsplit(" ", 1)[1]) for c in shown]
    assert all(50 <= x <= 100 for x in sure), sure
    backtest = table(at, "MASE")
    assert list(backtest["Ticker"]) == list(forecasting.DEFAULT_TICKERS) and (backtest["Days"] > 200).all()
    assert list(backtest["Test period"]) == ["inside", "inside", "never trained on"]
    assert "bundled snapshot" in texts(at) and "no data" not in texts(at).lower()
    assert not dict(at.query_params), "a bare /forecast already means the default view: rewriting it is a history entry"


def query(at: AppTest) -> dict:
    return {k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items()}


@pytest.mark.integration
def test_forecast_page_other_ticker(local_api):
    at = app(local_api.url)
    at.multiselect(key="forecast_tickers").set_value(["IBM"]).run()
    assert not at.exception and [c["ticker"] for c in cards(at)[0]] == ["IBM"]
    # a changed view is written out in full, so the link shares it whatever the defaults become
    assert query(at) == {"tickers": "IBM", "range": "1Y", "end": "2013-02-28", "chart": "Compare", "source": "snapshot"}


@pytest.mark.integration
def test_a_link_restores_exactly_its_view(local_api):
    """?tickers=IBM&range=6M&end=2012-06-29&chart=IBM is that view: IBM alone (no defaults added), six months, its chart."""
    import datetime as dt

    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["endpoint_url"], at.session_state["endpoint_key"] = local_api.url, SAMPLE_KEY
    at.query_params.update({"tickers": "IBM", "range": "6M", "end": "2012-06-29", "chart": "IBM", "source": "snapshot"})
    at.switch_page("views/forecast.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="forecast_tickers").value == ["IBM"]
    assert at.date_input(key="forecast_end").value == dt.date(2012, 6, 29)
    assert at.button_group(key="forecast_range").value == "6M" and at.button_group(key="forecast_chart").value == "IBM"
    bt = table(at, "MASE")
    assert list(bt["Ticker"]) == ["IBM"] and 120 <= bt["Days"].iloc[0] <= 130  # six months of trading days
    comparison = table(at, "Winkler, this backtest")
    assert list(comparison["Interval"]) == ["served (risk model)", "rolling 20-day volatility", "GARCH(1,1)"]
    assert not comparison.isna().any().any() and "None" not in comparison.to_string()


@pytest.mark.integration
def test_unknown_live_symbol_offline_is_a_warning_not_a_crash(local_api, no_network):
    at = app(local_api.url, source="auto (live, else bundled)")
    at.multiselect(key="forecast_tickers").set_value(["AAPL", "IBM", "ZZZZQ"]).run()
    assert not at.exception
    assert any("ZZZZQ" in w.value and "snapshot has" in w.value for w in at.warning)
    assert len(cards(at)[0]) == 2  # the other tickers still forecast


@pytest.mark.integration
@pytest.mark.parametrize("page", PAGES[1:])
def test_other_pages_render(local_api, page):
    at = app(local_api.url, page=page)
    assert not at.error, [e.value for e in at.error]


@pytest.mark.integration
def test_model_page_shows_metrics_beside_naive(local_api):
    at = app(local_api.url, page="views/model.py")
    overall = at.dataframe[0].value
    assert {"ensemble (served)", "naive (tomorrow = today)", "ridge"} <= set(overall["model"])
    assert "MASE (naive = 1)" in overall.columns
    assert_readable(at)


SNAKE = r"^[a-z0-9]+(_[a-z0-9]+)+$"


def assert_readable(at: AppTest) -> None:
    """Every table: no None or nan cell, no snake_case header, no R² column, 'ridge' (the README's name) not 'linear'."""
    import re

    for d in at.dataframe:
        df = d.value
        cells = df.astype(str).to_numpy().ravel().tolist()
        assert not {"None", "nan", "NaN", "<NA>"} & set(cells), df
        assert not any(re.match(SNAKE, str(c)) for c in df.columns), list(df.columns)
        assert not any("r2" in str(c).lower() or "R²" in str(c) for c in df.columns), list(df.columns)
        assert "linear" not in cells


@pytest.fixture
def served_card(monkeypatch):
    """The card the function publishes at GET /model is the manifest's; the endpoint itself is faked here."""
    import json

    from dashboard import data

    card = json.loads((ROOT / "models" / "runtime" / "manifest.json").read_text())
    monkeypatch.setattr(data, "model_card", lambda url, key: card)
    return card


def test_model_page_tables_are_readable(down_url, served_card, monkeypatch):
    from dashboard import processes

    monkeypatch.setattr(processes, "training_runs", lambda: None)  # no mlflow store, as on a fresh clone
    at = app(down_url, page="views/model.py")
    assert_readable(at)
    per_ticker = next(d.value for d in at.dataframe if "ticker" in d.value.columns)
    assert "2016-01-25 to 2018-12-28 (739 days)" in set(per_ticker["test period"])
    assert "R²" not in " ".join(str(c) for d in at.dataframe for c in d.value.columns)


def test_model_page_falls_back_to_the_committed_runs_summary(down_url, served_card, monkeypatch):
    """A fresh clone has no mlruns/: the page shows models/runs.json (runs A, A0, B and C; A is served) and names it."""
    from dashboard import model_tables, processes
    from models.experiments import RUNS

    summary = model_tables.read_runs_summary()
    assert summary and {r["run"] for r in summary["runs"]} == set(RUNS), "models/runs.json holds every run: A, A0, B, C"
    monkeypatch.setattr(processes, "training_runs", lambda: None)
    at = app(down_url, page="views/model.py")
    runs = at.dataframe[-1].value
    assert list(runs["run"]) == sorted(r["run"] for r in summary["runs"])
    for _, row in runs.iterrows():  # each run's LSTM as experiments.py configures it
        assert row["LSTM (layers x units)"] == f"{RUNS[row['run']]['layers']} x {RUNS[row['run']]['hidden']}"
    a = summary["runs"][[r["run"] for r in summary["runs"]].index("A")]
    assert runs.set_index("run").loc["A", "MASE (naive = 1)"] == f"{a['test_mase']:.4f}"
    assert a["test_mase"] == pytest.approx(served_card["test_metrics"]["overall"]["ensemble"]["mase"], abs=1e-12)  # served
    assert any("the committed summary of the runs, exported by `make experiments`" in c.value for c in at.caption)
    assert not any("No experiment tracking store yet" in i.value for i in at.info)
    at.selectbox(key="model_metric").set_value("80% coverage").run()
    assert not at.exception


@pytest.mark.integration
def test_wrong_key_says_what_to_do(local_api):
    at = app(local_api.url, key="not-the-key")
    msgs = " ".join(e.value for e in at.error)
    assert "refused the API key" in msgs and "sidebar" in msgs


# --- with the API down --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def down_url():
    return f"http://127.0.0.1:{free_port()}/prod"


@pytest.mark.parametrize("page", [None, "views/model.py"])
def test_pages_with_api_down_say_how_to_start_it(down_url, page):
    at = app(down_url, page=page)
    msgs = " ".join(e.value for e in at.error)
    assert "nothing answers" in msgs and "make run" in msgs


def test_deploy_page_with_api_down(down_url):
    at = app(down_url, page="views/deploy.py")
    assert any("does not answer" in w.value for w in at.warning)
    assert at.button(key="deploy_teardown").disabled  # teardown needs the confirmation first


def test_deploy_to_aws_without_credentials_is_a_clear_error(down_url, monkeypatch):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    at = app(down_url, page="views/deploy.py")
    assert at.button(key="deploy_aws").disabled  # nothing is created before the plan is confirmed
    plan = " ".join(c.value for c in at.code)
    assert "financial-forecasting-lstm" in plan and "python3.13" in plan
    assert any("per million single predictions through the REST API" in m.value for m in at.markdown)
    at.checkbox(key="deploy_aws_confirm").check().run()
    at.button(key="deploy_aws").click().run()
    assert not at.exception
    msgs = " ".join(e.value for e in at.error)
    assert "no AWS credentials" in msgs
    page = texts(at) + " ".join(c.value for c in at.code)
    assert page.count("aws configure") == 1, "the credentials hint is printed once"


def test_deploy_page_shows_the_runtime_support_date_without_aws(down_url, monkeypatch):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    at = app(down_url, page="views/deploy.py")
    assert any("python3.13 (Amazon Linux 2023) is supported until 2029-06-30" in c.value for c in at.caption)
    at.radio(key="deploy_front_door").set_value("url").run()
    assert "url" in " ".join(c.value for c in at.code) and any("through the Function URL" in m.value for m in at.markdown)


def test_deploy_locally_keeps_its_log_and_message_in_its_own_section(down_url, monkeypatch):
    """The build's boundary is faked (the real build is tested in test_package); the page keeps what it showed."""
    from dashboard import processes

    monkeypatch.setattr(processes, "stream", lambda cmd, env=None: iter(["building layer.zip", "wrote dist/", "exit 0"]))
    monkeypatch.setattr(processes, "start_local_api", lambda key: "http://127.0.0.1:9/prod")
    at = app(down_url, page="views/deploy.py")
    at.button(key="deploy_local").click().run()
    assert not at.exception
    assert any("Local API running at http://127.0.0.1:9/prod" in s.value for s in at.success)
    at.text_input(key="deploy_region").set_value("eu-west-1").run()  # any later rerun
    assert "building layer.zip\nwrote dist/" in [c.value for c in at.code]
    order = [(type(e).__name__, getattr(e, "value", "")) for e in at.main]
    where = next(i for i, (_, v) in enumerate(order) if "Local API running" in str(v))
    aws = next(i for i, (_, v) in enumerate(order) if v == "To AWS")
    assert where < aws, "the local deploy's message stands in the Locally section, above To AWS"


def test_the_dashboards_local_api_is_the_default_endpoint_while_it_runs(tmp_path):
    import json
    import os

    from dashboard import processes

    ident = processes.process_identity(os.getpid())
    record = {"pid": os.getpid(), "start": ident["start"], "url": "http://127.0.0.1:9/prod", "key": "k9"}
    (tmp_path / "dashboard_api.json").write_text(json.dumps(record))
    assert config.dashboard_switch(tmp_path)["url"] == "http://127.0.0.1:9/prod"
    (tmp_path / "dashboard_api.json").write_text(json.dumps({**record, "start": "1"}))  # a recycled pid
    assert config.dashboard_switch(tmp_path) == {}
    (tmp_path / "dashboard_api.json").write_text("torn")
    assert config.dashboard_switch(tmp_path) == {}


def test_cost_monitor_works_without_the_api(down_url):
    at = app(down_url, page="views/cost_monitor.py")
    before = at.metric[0].value
    at.toggle(key="cost_free").set_value(False).run()
    at.select_slider(key="cost_requests").set_value(1_000_000).run()
    assert at.metric[0].value != before
    at.number_input(key="cost_budget").set_value(0.01).run()
    assert any("above the monthly budget" in e.value for e in at.error)


def test_cost_monitor_keeps_its_settings_in_the_url(down_url):
    """A link opens the calculator with its settings; a change is written to the URL; a bad part takes its default."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["endpoint_url"], at.session_state["endpoint_key"] = down_url, SAMPLE_KEY
    at.run()  # the root forwards to /forecast; the link is opened from there
    at.query_params.clear()
    at.query_params.update({"per_day": "10000", "batch": "8", "door": "url", "free": "0", "memory": "999", "cold": "x"})
    at.switch_page("views/cost_monitor.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.select_slider(key="cost_requests").value == 10_000 and at.select_slider(key="cost_batch").value == 8
    assert at.radio(key="cost_api").value == "url" and at.toggle(key="cost_free").value is False
    assert at.select_slider(key="cost_memory").value == 256 and at.slider(key="cost_cold").value == pytest.approx(0.01, abs=0.2)
    at.select_slider(key="cost_requests").set_value(1_000_000).run()
    q = query(at)
    assert q["per_day"] == "1000000" and q["batch"] == "8" and q["door"] == "url" and q["free"] == "0", q
    assert q["memory"] == "256" and not at.warning, [w.value for w in at.warning]


def test_a_bare_cost_link_is_the_default_view_and_not_rewritten(down_url):
    at = app(down_url, page="views/cost_monitor.py")
    assert not dict(at.query_params), "a bare /costs already means the defaults: rewriting it is a history entry"


def cli_month(args: list[str]) -> dict:
    """`python -m dashboard.costs ARGS --json`, run as a user runs it."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "dashboard.costs", *args, "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("settings", [{}, {"cost_requests": 1_000_000, "cost_batch": 8, "cost_memory": 1024, "cost_api": "http"}])
def test_cost_monitor_money_figures_agree_with_the_cli_and_say_what_they_are(down_url, settings):
    """Every calculator figure is the CLI's for the command the page prints; the two monthly figures for the guide's
    100 predictions a day (the calculator's and the guide design's) stand with the reason they differ."""

    from dashboard.costs import money

    at = app(down_url, page="views/cost_monitor.py")
    for key, value in settings.items():
        widget = next(w for kind in ("select_slider", "radio") for w in getattr(at, kind) if w.key == key)
        widget.set_value(value).run()
    assert not at.exception, [e.value for e in at.exception]
    caption = next(c.value for c in at.caption if c.value.startswith("A call of"))
    command = next(
        c.value for c in at.code if c.value.startswith("python -m dashboard.costs ") and "--front-doors" not in c.value
    )
    args = command.removeprefix("python -m dashboard.costs ").split()  # in the developers' expander
    month, paid = cli_month(args), cli_month([*args, "--no-free-tier"])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Projected monthly cost"] == money(month["total_usd"])
    calls = paid["inputs"]["requests_per_day"] * paid["inputs"]["days"]
    assert metrics["Per million calls, list prices"] == money(paid["total_usd"] / calls * 1e6)
    batch = settings.get("cost_batch", 1)
    assert metrics["Per million predictions, list prices"] == money(paid["total_usd"] / calls / batch * 1e6)
    # the per-million figure names its parts, each the CLI's line per million calls
    for line in paid["lines"]:
        if line["usd"] > 0:
            assert f"{money(line['usd'] / calls * 1e6)} {line['item']}" in caption, line
    if month["total_usd"] == 0:
        assert f"Within the free tier: {money(paid['total_usd'])} a month at list prices without it" in caption
    guide = next(c.value for c in at.caption if c.value.startswith("The guide says"))
    if not settings:  # the guide's traffic: both monthly figures, and why they differ, side by side
        assert money(paid["total_usd"]) in guide and "differs because it prices its own settings" in guide
        assert "512 MB, 100 ms a call" in guide
    else:
        assert "differs because" not in guide


def write_log(path, records):
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")


def logged(minute, duration_ms, predictions=None, **extra):
    rec = {"ts": f"2026-11-30T10:{minute:02d}:00Z", "duration_ms": duration_ms, "billed_ms": -(-duration_ms // 1), "status": 200}
    rec.update({"cold_start": False, "memory_mb": 256, **extra})
    return rec if predictions is None else {**rec, "predictions": predictions}


def test_cost_monitor_prices_the_logged_batches_per_prediction(down_url, tmp_path, monkeypatch):
    """After the Forecast page's 64-window batch calls, the page still prices a prediction, not a call: the URL front
    door stays at least 10x cheaper than the guide, and records without a prediction count are named and left out."""
    from dashboard import processes

    log = tmp_path / "invocations.jsonl"
    records = [logged(i, 60.0, 64, cold_start=i < 2, init_ms=400 if i < 2 else None) for i in range(30)]
    records += [logged(40 + i, 1.5, 1) for i in range(5)] + [logged(50, 2.0, 0), logged(51, 300.0)]  # /health; an old one
    write_log(log, records)
    monkeypatch.setattr(processes, "invocation_logs", lambda: [log])
    at = app(down_url, page="views/cost_monitor.py")
    labels = {m.label: m.value for m in at.metric}
    assert labels["calls logged"] == "37" and labels["predictions"] == "1,925"
    assert labels["single call p50"] == "1.50 ms" and labels["batch call p50"] == "60.00 ms"
    assert any("1 logged call(s) predate the per-call prediction count" in w.value for w in at.warning)
    mix = next(m.value for m in at.markdown if m.value.startswith("At the logged mix"))
    times = float(mix.split("x cheaper than the guide through a Function URL")[0].rsplit(": ", 1)[1])
    assert times >= 10
    table = next(d.value for d in at.dataframe if "front door" in d.value.columns)
    url = table.set_index("front door").loc["Function URL"]
    assert float(url["x cheaper than the guide (single calls)"].rstrip("x")) >= 10
    # the calculator's default cold-start share is AWS's production figure, not the local first calls' 2 in 37
    assert at.slider(key="cost_cold").value == 0.01


def test_cost_monitor_budget_follows_the_front_door(down_url):
    at = app(down_url, page="views/cost_monitor.py")
    rest = next(m.value for m in at.markdown if "what caps the spend" in m.value)
    assert "usage plan" in rest and "300,000" in rest
    at.radio(key="cost_api").set_value("http").run()
    http = next(m.value for m in at.markdown if "what caps the spend" in m.value)
    assert "stage throttling" in http and "no usage plan" in http and "usage plan: " not in http
    at.radio(key="cost_api").set_value("url").run()
    assert any("reserved concurrency" in m.value for m in at.markdown)
    at.radio(key="cost_api").set_value("rest").run()
    at.select_slider(key="cost_requests").set_value(100_000).run()  # 3M calls a month against a 300,000 quota
    assert any("exceed that cap" in w.value and "quota" in w.value for w in at.warning)


def test_cost_monitor_calculator_scales_duration_with_memory(down_url):
    at = app(down_url, page="views/cost_monitor.py")
    at.number_input(key="cost_duration").set_value(1.0).run()
    at.select_slider(key="cost_memory").set_value(128).run()
    assert any("takes 13.82 ms at 128 MB" in c.value and "billed 14 ms" in c.value for c in at.caption)
    at.select_slider(key="cost_memory").set_value(3008).run()
    assert any("takes 1.00 ms at 3008 MB" in c.value for c in at.caption)
    import re

    assert not re.search(r"\$0\.0+(?!\d)", texts(at) + " ".join(m.value for m in at.metric))  # no "$0.0000" anywhere


# --- pure helpers -------------------------------------------------------------------------------


def test_contract_problem(manifest):
    assert forecasting.contract_problem(manifest) is None
    assert "window" in forecasting.contract_problem({**manifest, "window": 90})
    assert forecasting.contract_problem({**manifest, "features": list(reversed(manifest["features"]))})


def test_backtest_rows_line_up(manifest, aapl):
    bt = forecasting.backtest_requests(aapl, manifest, "2012-01-03", "2012-03-01", 100)
    assert len(bt) > 30 and all(len(f) == 600 for f in bt["features"])
    first = bt.iloc[0]
    assert first["actual"] == pytest.approx(aapl.loc[first["date"], "Close"], rel=1e-9)
    assert first["last_close"] == pytest.approx(aapl[aapl.index < first["date"]]["Close"].iloc[-1], rel=1e-9)


def test_backtest_summary_by_hand():
    bt = pd.DataFrame(
        {"actual": [10.0, 11.0], "last_close": [9.0, 10.0], "prediction": [9.5, 10.5], "low": [9.0, 11.5], "high": [10.5, 12.0]}
    )
    s = forecasting.backtest_summary(bt)
    assert s["mae"] == 0.5 and s["naive_mae"] == 1.0 and s["mase"] == 0.5 and s["coverage"] == 0.5
    bt["as_of"] = ["2011-06-01", "2011-06-02"]
    row = forecasting.backtest_row("AAPL", bt, {"test_from": "2011-04-11", "test_to": "2013-02-28"})
    assert row == {
        "Ticker": "AAPL",
        "Days": 2,
        "MAE (price)": 0.5,
        "Naive MAE (price)": 1.0,
        "MASE": 0.5,
        "Coverage of the 80% interval (%)": 50.0,
        "Test period": "inside",
    }
    assert forecasting.backtest_row("AAPL", bt, None)["Test period"] == "not evaluated"


def test_usage_summary_by_hand(tmp_path):
    log = tmp_path / "inv.jsonl"
    log.write_text(
        "\n".join(
            [
                '{"ts": "2026-11-26T00:00:00Z", "duration_ms": 1.2, "billed_ms": 2, "cold_start": true, "init_ms": '
                '120, "status": 200, "memory_mb": 256, "max_memory_used_mb": 60}',
                '{"ts": "2026-11-26T01:00:00Z", "duration_ms": 0.8, "billed_ms": 1, "cold_start": false, "status": '
                '400, "memory_mb": 256}',
                "a torn line",
                '{"ts": "2026-11-26T02:00:00Z", "duration_ms": 0.9, "billed_ms": 1, "cold_start": false, "status": '
                '200, "memory_mb": 256}',
            ]
        )
    )
    s = usage.summarize(usage.read_invocations(log))
    assert s["invocations"] == 3 and s["cold_starts"] == 1 and s["client_errors"] == 1
    assert s["billed_mean_ms"] == pytest.approx(4 / 3) and s["span_hours"] == 2.0
    assert s["projected_requests_per_day"] == pytest.approx(36)
    assert usage.summarize([]) is None


def test_usage_summary_per_prediction_by_hand():
    # two batches of 64 (60 ms, 70 ms), three singles (1, 2, 3 ms), a /health call (0) and an old record (no count)
    recs = [logged(0, 60.0, 64), logged(10, 70.0, 64)] + [logged(20 + i, 1.0 + i, 1) for i in range(3)]
    recs += [logged(30, 0.5, 0), logged(59, 40.0)]
    s = usage.summarize(recs)
    assert s["invocations"] == 7 and s["unlabelled"] == 1
    assert s["predictions"] == 131 and s["predict_calls"] == 5 and s["single_calls"] == 3 and s["batch_calls"] == 2
    assert s["single_p50_ms"] == 2.0 and s["batch_p50_ms"] == 65.0 and s["batch_mean_size"] == 64
    assert s["duration_per_prediction_ms"] == pytest.approx((60 + 70 + 1 + 2 + 3) / 131)
    assert s["billed_per_prediction_ms"] == pytest.approx((60 + 70 + 1 + 2 + 3) / 131)
    assert s["projected_predictions_per_day"] == pytest.approx(131 * 24)  # a span under an hour counts as one hour
    old = usage.summarize([logged(0, 40.0)])
    assert old["predictions"] == 0 and old["duration_per_prediction_ms"] is None and old["unlabelled"] == 1


def test_cloudwatch_usage_against_moto(aws_env):
    import boto3

    cw = boto3.client("cloudwatch", endpoint_url=aws_env, region_name="us-east-1")
    dims = [{"Name": "FunctionName", "Value": "financial-forecasting-lstm"}]
    cw.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dims, "Value": 120, "Unit": "Count"},
            {"MetricName": "Errors", "Dimensions": dims, "Value": 2, "Unit": "Count"},
            {"MetricName": "Duration", "Dimensions": dims, "Value": 3.5, "Unit": "Milliseconds"},
        ],
    )
    u = usage.cloudwatch_usage(cw, "financial-forecasting-lstm", hours=24)
    assert u["invocations"] == 120 and u["errors"] == 2 and u["throttles"] == 0
    assert u["duration"] == pytest.approx(3.5) and u["projected_requests_per_day"] == pytest.approx(120)


def test_no_url_is_a_hint_not_a_traceback():
    at = app("")
    assert any("Set the endpoint URL" in i.value for i in at.info)


def test_default_endpoint_prefers_environment(monkeypatch):
    monkeypatch.setenv("FORECAST_API_URL", "http://example.invalid/prod/")
    monkeypatch.setenv("FORECAST_API_KEY", "k")
    assert config.default_endpoint() == ("http://example.invalid/prod", "k")


def test_cost_monitor_projects_cloudwatch_usage(down_url, aws_env):
    import os

    import boto3
    import requests

    # metrics other tests put are gone
    requests.post(f"{aws_env}/moto-api/reset", timeout=10, verify=os.environ["AWS_CA_BUNDLE"]).raise_for_status()
    cw = boto3.client("cloudwatch", endpoint_url=aws_env, region_name="us-east-1")
    dims = [{"Name": "FunctionName", "Value": "financial-forecasting-lstm"}]
    cw.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dims, "Value": 5000, "Unit": "Count"},
            {"MetricName": "Duration", "Dimensions": dims, "Value": 2.0, "Unit": "Milliseconds"},
        ],
    )
    at = app(down_url, page="views/cost_monitor.py")
    at.text_input(key="cost_endpoint").set_value(aws_env).run()
    at.button(key="cost_cloudwatch").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    labels = {m.label: m.value for m in at.metric}
    assert labels["invocations (24 h)"] == "5,000"
    assert any("this deployment costs" in m.value for m in at.markdown)


@pytest.mark.integration
def test_deploy_page_lists_versions_and_rolls_back(down_url, aws_env, built_packages, monkeypatch):
    """The Deploy page against moto: three versions deployed by deploy.py, the page lists them and rolls live back
    only after the confirmation box is ticked."""
    import os
    import subprocess
    import sys

    import requests

    for path in ("reset",):
        requests.post(f"{aws_env}/moto-api/{path}", timeout=10, verify=os.environ["AWS_CA_BUNDLE"]).raise_for_status()
    requests.post(
        f"{aws_env}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10, verify=os.environ["AWS_CA_BUNDLE"]
    ).raise_for_status()
    args = ["--region", "us-east-1", "--endpoint-url", aws_env]
    for _ in range(3):
        r = subprocess.run(
            [sys.executable, "-m", "deployer", "deploy", "--no-verify", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert r.returncode == 0, r.stderr
    import json

    import boto3

    # moto cannot run code (--no-verify): record the post-publish verdicts a real deploy would have written
    ssm = boto3.client("ssm", endpoint_url=aws_env, region_name="us-east-1")
    name = "/financial-forecasting-lstm/deploy-record"
    record = json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    record["versions"] = {"1": "passed", "2": "failed", "3": "passed"}
    ssm.put_parameter(Name=name, Value=json.dumps(record), Type="String", Overwrite=True)
    at = app(down_url, page="views/deploy.py")
    at.text_input(key="deploy_endpoint").set_value(aws_env).run()
    at.button(key="deploy_status").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    versions = at.dataframe[-1].value
    assert list(versions["version"]) == ["1", "2", "3"] and list(versions["live"]) == [False, False, True]
    assert list(versions["check"]) == ["passed", "failed", "passed"]
    assert at.button(key="deploy_rollback").disabled
    assert at.selectbox(key="deploy_rollback_to").options == ["1"], "version 2 failed its check: never offered"
    at.selectbox(key="deploy_rollback_to").set_value("1").run()
    at.checkbox(key="deploy_rollback_confirm").check().run()
    at.button(key="deploy_rollback").click().run()
    assert not at.error, [e.value for e in at.error]
    alias = boto3.client("lambda", endpoint_url=aws_env, region_name="us-east-1").get_alias(
        FunctionName="financial-forecasting-lstm", Name="live"
    )
    assert alias["FunctionVersion"] == "1"


@pytest.mark.parametrize(
    "params, tickers, end, rng, chart",
    [
        ({}, ["AAPL", "MSFT", "^IXIC"], "2013-02-28", "1Y", "Compare"),  # the default view: inside the test period
        ({"tickers": "NVDA"}, ["NVDA"], None, "1Y", "Compare"),  # exactly the link's tickers, no defaults added
        (
            {"tickers": "ibm,AAPL,IBM", "end": "2012-06-29", "range": "5Y", "chart": "aapl"},
            ["IBM", "AAPL"],
            "2012-06-29",
            "5Y",
            "AAPL",
        ),
        ({"tickers": "AAPL\n,<script>", "end": "yesterday", "range": "2W", "chart": "IBM"}, ["AAPL"], None, "1Y", "Compare"),
        ({"tickers": ""}, [], None, "1Y", "Compare"),
    ],
)
def test_shared_views_parse_safely(params, tickers, end, rng, chart):
    import datetime as dt

    view = forecasting.parse_view(params, "snapshot")
    expected_end = dt.date.fromisoformat(end) if end else None
    assert view == {"tickers": tickers, "range": rng, "end": expected_end, "chart": chart, "source": "snapshot"}
    if tickers:
        again = forecasting.parse_view(forecasting.view_params({**view, "end": view["end"] or dt.date(2012, 1, 3)}), "auto")
        assert again == {**view, "end": view["end"] or dt.date(2012, 1, 3)}, "a written view reads back as itself"
    written = forecasting.view_params(view)
    assert "None" not in written.values() and ("end" in written) == (view["end"] is not None), written
    assert forecasting.parse_view(written, "snapshot") == view, "a view without an end reads back without one"


@pytest.mark.parametrize(
    "preset, start", [("1M", "2012-05-29"), ("1Y", "2011-06-29"), ("5Y", "2010-01-04"), ("Max", "2010-01-04")]
)
def test_range_presets(preset, start):
    import datetime as dt

    assert str(forecasting.range_start(dt.date(2012, 6, 29), preset, dt.date(2010, 1, 4))) == start


@pytest.mark.parametrize(
    "start, end, words",
    [
        ("2011-06-01", "2012-06-01", "inside"),
        ("2010-06-01", "2011-06-01", "partly outside"),
        ("2008-01-01", "2009-01-01", "lie outside"),
    ],
)
def test_the_backtest_says_where_the_range_lies(start, end, words):
    """The note names the days actually backtested, not the range chosen (a 5Y range backtests its last 256 days)."""
    span = {"test_from": "2011-04-11", "test_to": "2013-02-28"}
    note = forecasting.period_note("AAPL", start, end, span)
    assert words in note and f"AAPL's backtested days ({start} to {end})" in note, note
    assert forecasting.test_period(start, end, span) == words.removeprefix("lie ")


def test_the_data_note_says_what_each_short_data_label_means():
    """The table's Data column holds a short key (so it fits 1280 px); the line under it names each key's source, the
    tickers whose live data was not available, and the rows whose last day is before the chosen date."""
    import datetime as dt

    from dashboard.data import SOURCE_LABELS

    rows = [
        {"Ticker": "AAPL", "As of": "2013-02-28", "Data": "snapshot"},
        {"Ticker": "SPY", "As of": "2026-11-27", "Data": "live"},
    ]
    note = forecasting.data_note(rows, dt.date(2026, 11, 27), ["AAPL"], SOURCE_LABELS)
    assert "live = live (yfinance), snapshot = bundled snapshot" in note
    assert "Live data unavailable for AAPL" in note and forecasting.SNAPSHOT_ENDS in note
    assert "before 2026-11-27: AAPL (2013-02-28)" in note and "SPY (" not in note
    live_only = forecasting.data_note(rows[1:], dt.date(2026, 11, 27), [], SOURCE_LABELS)
    assert live_only == "Data: live = live (yfinance)."
    assert all(len(r["Data"]) <= 8 for r in [forecasting.forecast_row("X", ANSWER, s, "2013-02-28") for s in SOURCE_LABELS])


ANSWER = {"prediction": 101.0, "last_close": 100.0, "confidence": 0.6, "interval": {"low": 99.0, "high": 103.0, "level": 0.8}}


def test_within_noise_is_one_sentence_naming_the_weak_forecasts():
    rows = [{"Ticker": "AAPL", "Confidence (%)": 51.0}, {"Ticker": "IBM", "Confidence (%)": 70.0}]
    sentence = forecasting.within_noise(rows)
    assert "AAPL (51%)" in sentence and "IBM" not in sentence and "tomorrow = today" in sentence
    assert sentence.count(". ") == 0 and forecasting.within_noise(rows[1:]) is None


@pytest.mark.parametrize(
    "hostile",
    [
        "[re-enter your API key here](http://evil.example/)",
        "![x](http://evil.example/a.png) <img src=http://evil.example/b.png>",
        ":red[alarm] :material/warning: $x^2$ **bold** `code`",
        "line one\n# heading\n- item",
        "see http://evil.example and www.evil.example",
    ],
)
def test_endpoint_strings_render_as_plain_text(hostile):
    """CommonMark reads a backslash before ASCII punctuation as that character, literally: with every punctuation
    character escaped and newlines gone, no link, image, colour, heading or tag can start, and the reader sees s."""
    import string

    from dashboard.text import plain

    shown = plain(hostile)
    assert "\n" not in shown
    unescaped, i = [], 0
    while i < len(shown):
        if shown[i] in string.punctuation:
            assert shown[i] == "\\" and shown[i + 1] in string.punctuation, f"unescaped {shown[i]!r} in {shown!r}"
            i += 1
        unescaped.append(shown[i])
        i += 1
    assert "".join(unescaped) == " ".join(hostile.split())


@pytest.mark.integration
def test_the_api_key_is_never_a_widget_value(local_api):
    """The key in use stays on the server; a pasted key replaces it for the session and the field empties at once."""
    at = app(local_api.url)
    values = [str(w.value) for w in at.text_input]
    assert all(SAMPLE_KEY not in v for v in values), values
    at.text_input(key="sidebar_key").input("pasted-key-987").run()
    assert at.session_state["endpoint_key"] == "pasted-key-987" and at.text_input(key="sidebar_key").value == ""
    assert any("refused the API key" in e.value for e in at.error)  # the pasted (wrong) key is the one sent
    at.button(key="sidebar_forget_key").click().run()
    assert at.session_state["endpoint_key"] != "pasted-key-987"


@pytest.mark.integration
def test_an_unrelated_widget_change_sends_no_request_again(local_api):
    """Predictions are cached by endpoint, model version, ticker and window: switching the chart re-runs the page,
    not the requests, so the cost monitor counts only real traffic."""
    import time

    at = app(local_api.url)
    assert not at.error, [e.value for e in at.error]
    time.sleep(0.5)
    before = len(local_api.invocations())
    at.button_group(key="forecast_chart").set_value("AAPL").run()
    at.button_group(key="forecast_chart").set_value("Compare").run()
    assert not at.exception and not at.error
    time.sleep(0.5)
    after = local_api.invocations()
    new = [r for r in after[before:] if r["path"] == "/predict"]
    at.button_group(key="forecast_chart").set_value("AAPL").run()
    time.sleep(0.5)
    assert len(local_api.invocations()) == len(after), "a repeated view was sent again"
    assert not new, "the chart switch sent requests for windows the page already had"


@pytest.mark.integration
def test_the_input_window_heatmap_costs_nothing_until_opened(local_api):
    at = app(local_api.url)
    before = len(at.get("plotly_chart"))
    assert before == 0  # the comparison chart is Vega-Lite; the closed expander drew nothing
    at.session_state["forecast_window_open"] = True
    at.run()
    assert len(at.get("plotly_chart")) == before + 1


def test_stop_previous_signals_only_its_own_process(tmp_path, monkeypatch):
    """A recorded pid that now belongs to another process (pid reuse, or a forged file) is never signalled."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from dashboard import processes

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        state = tmp_path / "dashboard_api.json"
        monkeypatch.setattr(processes, "STATE", state)
        ident = processes.process_identity(other.pid)
        for record in (
            {"pid": other.pid, "start": ident["start"]},  # the right start time, but not local_api.py
            {"pid": other.pid, "start": "0"},  # a recycled pid
            {"pid": 1},
            {"pid": "1"},
            {},
        ):
            state.write_text(json.dumps(record))
            assert not processes.is_ours(record)
            processes.stop_previous()
            assert other.poll() is None, f"signalled a process that is not ours: {record}"
            assert not state.exists()
    finally:
        os.killpg(other.pid, signal.SIGKILL)
        other.wait(5)


def test_an_uncaught_error_never_shows_its_traceback_in_the_browser(root):
    """Streamlit's default ("full") sends exception text and traceback to every visitor."""
    import tomllib

    config = tomllib.loads((root / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"


def test_model_page_flags_every_missed_goal(down_url, served_card, monkeypatch):
    """Each goal models.evaluate judged, met or not, is named with its figure; a missed one is a warning, not prose."""
    from dashboard import processes

    monkeypatch.setattr(processes, "training_runs", lambda: None)
    goals = served_card["test_metrics"]["goals"]
    goals["test"] = dict(goals["test"], winkler_095_rolling=True, winkler_le_garch=True, coverage_77_83=True)
    goals["held_out"] = dict(goals["held_out"], winkler_vs_rolling=0.9535, winkler_095_rolling=False, coverage_77_83=False)
    at = app(down_url, page="views/model.py")
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1, warnings  # the test period met all four
    assert "on the held-out ticker" in warnings[0] and "coverage 76.3% (goal 77–83%)" in warnings[0]
    assert "Winkler 0.954x the rolling volatility's (goal ≤ 0.95)" in warnings[0]
    captions = " ".join(c.value for c in at.caption)
    assert "Winkler 0.954x the rolling volatility's (goal ≤ 0.95) NOT met" in captions
    assert "GARCH's (goal ≤ 1) met" in captions


def test_the_compare_chart_spans_the_data_not_zero():
    """Closes rebased to 100 move within about 80-130: on an axis from 0 every line is flat."""
    import pandas as pd

    from dashboard import charts, forecasting

    idx = pd.bdate_range("2012-01-02", periods=60)
    frames = {
        t: pd.DataFrame({"Close": [base * (1 + 0.002 * i) for i in range(60)]}, index=idx)
        for t, base in (("AAPL", 50.0), ("IBM", 180.0))
    }
    closes = forecasting.normalised_closes(frames, idx[0].date(), idx[-1].date())
    spec = charts.compare(closes).to_dict()
    assert spec["encoding"]["y"]["scale"]["zero"] is False
    assert spec["encoding"]["color"]["field"] == "ticker"
    values = next(iter(spec["datasets"].values()))
    assert {v["ticker"] for v in values} == {"AAPL", "IBM"} and len(values) == 120
    assert min(v["close"] for v in values) == 100.0


ANSWER_UP = {"prediction": 102.0, "last_close": 100.0, "confidence": 0.62, "interval": {"low": 99.0, "high": 104.0, "level": 0.8}}


@pytest.mark.parametrize(
    "actual, hit, right",
    [
        (103.0, True, True),
        (98.0, False, False),
        (100.5, True, True),
        (99.5, True, False),
        (105.0, False, True),
        (None, None, None),
    ],
)
def test_a_card_says_hit_or_miss_and_whether_the_direction_was_right(actual, hit, right):
    o = forecasting.outcome(ANSWER_UP, actual)
    assert o["direction"] == "up" and o["sure"] == pytest.approx(62.0)
    assert o.get("hit") is hit and o.get("direction_right") is right


def test_the_target_day_is_the_datas_next_row_else_the_next_weekday():
    idx = pd.to_datetime(["2013-02-27", "2013-02-28", "2013-03-04"])  # a gap: the file's own calendar decides
    df = pd.DataFrame({"Close": [1.0, 2.0, 3.0]}, index=idx)
    assert forecasting.target_day(df, idx[1]) == (pd.Timestamp("2013-03-04"), 3.0)
    assert forecasting.target_day(df, idx[2]) == (pd.Timestamp("2013-03-05"), None)  # past the data: next weekday
    row = forecasting.card_row(forecasting.forecast_row("AAPL", ANSWER_UP, "snapshot", idx[1]), ANSWER_UP, idx[2], 103.0)
    label, value, change, detail, actual = forecasting.card_lines(row)
    assert label == "AAPL · target 2013-03-04" and value == "102.00" and change == "+2.00%"
    assert detail == "80% range 99.00 to 104.00 · up, 62% sure · as of 2013-02-28, close 100.00"
    assert actual == "Actual close 103.00: hit (inside the range), direction right"


def test_the_csvs_name_as_of_and_target_days_and_carry_no_float_noise():
    row = forecasting.card_row(
        forecasting.forecast_row("IBM", {**ANSWER_UP, "prediction": 57.56270000000001}, "snapshot", "2013-02-28"),
        ANSWER_UP,
        pd.Timestamp("2013-03-01"),
        None,
    )
    text = forecasting.forecasts_csv([row])
    assert text.splitlines()[0].startswith("Ticker,As of,Target day,") and ",57.5627," in text
    assert "0000000" not in text
    bt = pd.DataFrame(
        {"as_of": pd.to_datetime(["2013-02-28"]), "date": pd.to_datetime(["2013-03-01"]), "last_close": [1 / 3]}
        | {"prediction": [0.1 + 0.2], "low": [0.3], "high": [0.4], "actual": [0.35]}
    )
    table = forecasting.backtest_table(bt, "IBM")
    assert list(table.iloc[0][["As of", "Target day"]]) == ["2013-02-28", "2013-03-01"]
    assert table.iloc[0]["Forecast"] == 0.3 and table.iloc[0]["Close as of"] == 0.3333


def test_a_ticker_keeps_its_colour_when_another_is_added():
    from dashboard import charts

    before = charts.ticker_colours(["AAPL", "MSFT", "^IXIC"])
    after = charts.ticker_colours(["AAPL", "IBM", "MSFT", "^IXIC", "NVDA"])
    assert all(after[t] == c for t, c in before.items())
    assert charts.ticker_colours(["NVDA"])["NVDA"] == after["NVDA"]  # a live symbol's colour comes from its name
    assert len(set(charts.ticker_colours(["AAPL", "MSFT", "IBM", "GOOG", "NVDA", "TSLA", "SPY", "^GSPC"]).values())) == 8


def test_the_compare_chart_marks_each_forecast_on_its_target_day():
    from dashboard import charts

    idx = pd.bdate_range("2013-01-01", periods=40)
    frames = {
        t: pd.DataFrame({"Close": [base + i for i in range(40)]}, index=idx) for t, base in (("AAPL", 50.0), ("IBM", 200.0))
    }
    rows = [
        forecasting.card_row(
            forecasting.forecast_row(t, ANSWER_UP, "snapshot", idx[-1]), ANSWER_UP, idx[-1] + pd.offsets.BDay(1), None
        )
        for t in frames
    ]
    marks = forecasting.rebased_forecasts(frames, idx[0], rows)
    assert list(marks["ticker"]) == ["AAPL", "IBM"] and marks["close"].tolist() == pytest.approx([204.0, 51.0])
    spec = charts.compare(forecasting.normalised_closes(frames, idx[0], idx[-1]), marks).to_dict()
    points = [layer for layer in spec["layer"] if layer["mark"].get("shape") == "diamond"]
    assert len(points) == 1 and spec["layer"][0]["encoding"]["color"]["scale"]["range"][:2] == [
        charts.ticker_colours(["AAPL"])["AAPL"],
        charts.ticker_colours(["IBM"])["IBM"],
    ]


def test_model_page_states_the_serving_rule_and_the_verdict(down_url, served_card, monkeypatch, tmp_path):
    """The rule as text, each calibrator's held-out figures from the ledger, and what is served (python -m ledger.aci)."""
    import datetime as dt

    import numpy as np

    import ledger.store
    from dashboard import processes
    from ledger import aci
    from ledger.store import Outcome, SqliteStore
    from tests.test_track_record import row

    monkeypatch.setattr(processes, "training_runs", lambda: None)
    db = tmp_path / "ledger.sqlite"
    monkeypatch.setattr(ledger.store, "DEFAULT_DB", db)
    rng, start, version = np.random.default_rng(4), dt.date(2012, 1, 3), served_card["version"]
    rows, outs = [], []
    for i in range(300):  # ^IXIC, held out: a ±2% band around closes with t(3) moves, so the model's own interval misses
        as_of, target = start + dt.timedelta(days=i), start + dt.timedelta(days=i + 1)
        rows.append(row("^IXIC", target, version, "2026-11-01T21:00:00Z", as_of, 100.0, "snapshot"))
        outs.append(
            Outcome("^IXIC", str(target), 100.1 * float(np.exp(rng.standard_t(3) * 0.012)), "snapshot", "2026-11-01T21:00:00Z")
        )
    with SqliteStore(db) as s:
        s.record(rows)
        s.add_outcomes(outs)
    at = app(down_url, page="views/model.py")
    assert not at.exception, [e.value for e in at.exception]
    texts = [t.value for t in at.text]
    assert any(aci.rule_text() in t for t in texts)
    table = next(d.value for d in at.dataframe if "calibrator" in d.value.columns)
    assert sorted(table["calibrator"]) == sorted(aci.CANDIDATES) and set(table["held-out series"]) == {"^IXIC"}
    expected = aci.report(db)[version]["serve"]
    assert any(t.startswith(f"Served for {version}: {expected or 'none.'}") for t in texts)
