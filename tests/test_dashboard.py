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


@pytest.mark.integration
def test_forecast_page_shows_predictions(local_api):
    at = app(local_api.url)
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(table["ticker"]) == ["AAPL", "^GSPC"]
    assert (table["prediction"] > 0).all() and table["confidence"].between(0.5, 1).all()
    assert "bundled snapshot" in texts(at)
    assert len(at.metric) == 4 and at.metric[2].label == "MASE"  # the backtest against the naive forecast


@pytest.mark.integration
def test_forecast_page_other_ticker(local_api):
    at = app(local_api.url)
    at.multiselect(key="forecast_tickers").set_value(["IBM"]).run()
    assert not at.exception and list(at.dataframe[0].value["ticker"]) == ["IBM"]


@pytest.mark.integration
def test_unknown_live_symbol_offline_is_a_warning_not_a_crash(local_api, no_network):
    at = app(local_api.url, source="auto (live, else bundled)")
    at.text_input(key="forecast_extra").set_value("ZZZZQ").run()
    assert not at.exception
    assert any("ZZZZQ" in w.value and "snapshot has" in w.value for w in at.warning)
    assert len(at.dataframe[0].value) == 2  # the other tickers still forecast


@pytest.mark.integration
@pytest.mark.parametrize("page", PAGES[1:])
def test_other_pages_render(local_api, page):
    at = app(local_api.url, page=page)
    assert not at.error, [e.value for e in at.error]


@pytest.mark.integration
def test_model_page_shows_metrics_beside_naive(local_api):
    at = app(local_api.url, page="views/model.py")
    overall = at.dataframe[0].value
    assert {"ensemble", "naive"} <= set(overall.index) and "mase" in overall.columns


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
    at.button(key="deploy_aws").click().run()
    assert not at.exception
    msgs = " ".join(e.value for e in at.error)
    assert "no AWS credentials" in msgs and "aws configure" in msgs


def test_cost_monitor_works_without_the_api(down_url):
    at = app(down_url, page="views/cost_monitor.py")
    before = at.metric[0].value
    at.toggle(key="cost_free").set_value(False).run()
    at.select_slider(key="cost_requests").set_value(1_000_000).run()
    assert at.metric[0].value != before
    at.number_input(key="cost_budget").set_value(0.01).run()
    assert any("above the monthly budget" in e.value for e in at.error)


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
            [sys.executable, str(ROOT / "lambda" / "deploy.py"), "deploy", "--no-verify", *args],
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
    "params, tickers, extra, end",
    [
        ({"tickers": "ibm,AAPL", "end": "2012-06-29"}, ["IBM", "AAPL"], "", "2012-06-29"),
        ({"tickers": "NVDA,IBM"}, ["IBM"], "NVDA", None),
        ({"tickers": "AAPL\n,<script>", "end": "yesterday"}, ["AAPL"], "", None),
        ({}, [], "", None),
    ],
)
def test_shared_views_parse_safely(params, tickers, extra, end):
    import datetime as dt

    view = forecasting.parse_view(params, ["AAPL", "IBM", "^GSPC"])
    assert view == {"tickers": tickers, "extra": extra, "end": dt.date.fromisoformat(end) if end else None}
    assert forecasting.view_params(["AAPL", "IBM"], dt.date(2012, 6, 29)) == {"tickers": "AAPL,IBM", "end": "2012-06-29"}


@pytest.mark.integration
def test_an_unrelated_widget_change_sends_no_request_again(local_api):
    """Predictions are cached by endpoint, model version, ticker and window: switching the chart re-runs the page,
    not the requests, so the cost monitor counts only real traffic."""
    import time

    at = app(local_api.url)
    assert not at.error, [e.value for e in at.error]
    time.sleep(0.5)
    before = len(local_api.invocations())
    at.selectbox(key="forecast_chart").set_value("^GSPC").run()
    at.selectbox(key="forecast_chart").set_value("AAPL").run()
    assert not at.exception and not at.error
    time.sleep(0.5)
    after = local_api.invocations()
    new = [r for r in after[before:] if r["path"] == "/predict"]
    # ^GSPC's band and backtest are new windows (fetched once); going back to AAPL fetches nothing
    at.selectbox(key="forecast_chart").set_value("^GSPC").run()
    time.sleep(0.5)
    assert len(local_api.invocations()) == len(after), "a repeated view was sent again"
    assert all(r["status"] == 200 for r in new)


@pytest.mark.integration
def test_forecast_page_shows_the_interval_comparison(local_api):
    at = app(local_api.url)
    tables = [d.value for d in at.dataframe]
    comparison = next(t for t in tables if "interval" in t.columns and "Winkler (this backtest)" in t.columns)
    assert list(comparison["interval"]) == ["served (risk model)", "rolling 20-day volatility", "GARCH(1,1)"]
    assert comparison["Winkler (this backtest)"].iloc[:2].notna().all() and comparison["Winkler (test period)"].notna().all()
    assert any("predicted volatility" in c.value for c in at.caption)


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
