"""MLflow tracking: a tiny run logs params, metrics and artifacts; promote; the comparison table comes from the store."""

from __future__ import annotations

import hashlib
import json

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("torch")

from models import experiments, promote, tracking  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(mlflow_store):
    from models import train

    report = train.main(
        [
            "--epochs",
            "2",
            "--limit",
            "200",
            "--hidden",
            "8",
            "--layers",
            "1",
            "--risk-epochs",  # the risk model's 12 default epochs are most of a run's cost and nothing here reads them
            "1",
            "--risk-hidden",
            "4",
            "--run-name",
            "B",
            "--out-dir",
            str(tracking.store_dir() / "experiments" / "B"),
            "--held-out",
            "^IXIC",
        ]
    )
    return report


def test_the_run_logs_params_metrics_and_artifacts(tiny_run):
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking.tracking_uri())
    run = client.get_run(tiny_run["run_id"])
    p = run.data.params
    assert p["hidden"] == "8" and p["layers"] == "1" and p["window"] == "60" and p["seed"] == "1337"
    assert p["tickers"] == "^GSPC,AAPL,MSFT,IBM,GOOG" and p["members"] == "lstm,linear,naive"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2][: len(history)] and len(history) >= 1
    m = run.data.metrics
    assert m["test_mase"] == pytest.approx(tiny_run["test"]["overall"]["ensemble"]["mase"])
    assert m["test_naive_mase"] == pytest.approx(1.0)  # the naive forecast's figures are logged too
    assert m["model_bytes"] > 0 and m["latency_p50_us"] > 0
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"lstm_multi_ticker.pth", "scaler_ensemble_multi.pkl", "metrics.json", "runtime"} <= names
    assert {a.path for a in client.list_artifacts(run.info.run_id, "runtime")} == {"runtime/manifest.json", "runtime/model.onnx"}


def test_promote_writes_a_manifest_whose_hashes_match(tiny_run, tmp_path):
    m = promote.promote("B", tmp_path)
    assert m["run_id"] == tiny_run["run_id"] and m["run_name"] == "B"
    written = json.loads((tmp_path / "runtime" / "manifest.json").read_text())
    assert written["run_id"] == tiny_run["run_id"]
    for name, meta in written["files"].items():
        assert hashlib.sha256((tmp_path / "runtime" / name).read_bytes()).hexdigest() == meta["sha256"]
    assert (tmp_path / "lstm_multi_ticker.pth").exists()


def test_promote_an_unknown_run_is_a_clear_error(tiny_run, tmp_path):
    with pytest.raises(SystemExit, match="no finished run"):
        promote.promote("no-such-run", tmp_path)


def test_the_table_comes_from_the_store(tiny_run):
    text = experiments.table(["B"])
    row = next(line for line in text.splitlines() if line.startswith("| B |"))
    mase = tiny_run["test"]["overall"]["ensemble"]["mase"]
    assert f"{mase:.4f}" in row and "1 x 8" in row
    assert "| naive |" in text


def test_runs_frame_without_a_store(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    assert tracking.runs_frame() is None


def test_model_page_lists_runs(tiny_run, local_api):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT, SAMPLE_KEY

    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.session_state["endpoint_url"], at.session_state["endpoint_key"] = local_api.url, SAMPLE_KEY
    at.run()
    at.switch_page("views/model.py").run()
    assert not at.exception
    runs = at.dataframe[-1].value
    assert "B" in set(runs["run"]) and "MASE (naive = 1)" in runs.columns
    assert any("the MLflow tracking store" in c.value for c in at.caption)


def test_the_runs_summary_is_exported_from_the_store(tiny_run, tmp_path):
    """models/runs.json (what a fresh clone's Model page shows) holds the store's newest run of each name."""
    doc = tracking.export_summary(tmp_path / "runs.json")
    assert json.loads((tmp_path / "runs.json").read_text()) == doc
    b = next(r for r in doc["runs"] if r["run"] == "B")
    assert b["run_id"] == tiny_run["run_id"] and b["hidden"] == "8" and b["layers"] == "1"
    assert b["test_mase"] == pytest.approx(tiny_run["test"]["overall"]["ensemble"]["mase"])
    assert set(tracking.SUMMARY_METRICS) <= set(b) and doc["store"] == tracking.tracking_uri()


def _procs():
    """(pid, state, ppid, pgrp) of every process, from /proc."""
    from pathlib import Path

    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        yield int(stat.parent.name), state, int(ppid), int(pgrp)


def _group_members(pgid: int) -> list[int]:
    return [pid for pid, state, _, pgrp in _procs() if pgrp == pgid and state != "Z"]


def _children(pid: int) -> list[int]:
    return [p for p, _, ppid, _ in _procs() if ppid == pid]


@pytest.mark.integration
@pytest.mark.slow
def test_mlflow_ui_starts_offline_and_stops_its_whole_group(tiny_run):
    import os
    import signal
    import subprocess
    import sys

    import requests

    from tests.support import ROOT, free_port, launch, stop_group, wait_for

    port = free_port()
    ui = launch(
        [sys.executable, str(ROOT / "scripts" / "mlflow_ui.py"), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # as a job started in the background inherits it (`make test &`, CI runners): SIGINT ignored at startup,
        # so only an explicit handler makes the launcher answer Ctrl-C
        preexec=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    server = None
    try:
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5"
        r = wait_for(
            f"the MLflow UI to answer {url}", lambda: (resp := requests.get(url, timeout=5)).ok and resp, timeout_s=240, proc=ui
        )
        assert tracking.EXPERIMENT in {e["name"] for e in r.json()["experiments"]}
        [server] = _children(ui.pid)
        assert len(_group_members(server)) >= 2, "the server runs helper processes in its group"
        ui.send_signal(signal.SIGINT)  # what Ctrl-C in `make mlflow` delivers
        # bounded by the launcher's own escalation (SIGTERM, 5 s, SIGKILL), not by how busy the machine is
        wait_for("the MLflow UI launcher to exit after SIGINT", lambda: ui.poll() is not None, timeout_s=20, interval_s=0.1)
        assert _group_members(server) == [], "the launcher exits only once the server's whole group is gone"
    finally:  # whatever happened above, nothing this test started outlives it
        stop_group(ui, grace_s=5)
        if server is not None:
            try:
                os.killpg(server, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
