"""The function through its entry point: every event source, validation table, auth, CORS, logs, parity."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from tests.support import BAD, LAMBDA_DIR, RUNTIME_DIR, SAMPLE_KEY, assert_cors, call, load_event, rest, with_


@pytest.mark.parametrize("name, build, status, code", BAD, ids=[b[0] for b in BAD])
def test_bad_input_table(handler, keyed, features, manifest, name, build, status, code):
    got_status, headers, body = call(handler, build(features))
    assert (got_status, body["code"]) == (status, code), body
    assert set(body) == {"error", "code", "request_id"} and body["error"]
    assert_cors(headers)
    assert "Traceback" not in body["error"]


def test_errors_name_the_field(handler, keyed, features):
    _, _, body = call(handler, rest({"ticker": "AAPL", "features": with_(features, i123="x")}))
    assert "features[123]" in body["error"]
    _, _, body = call(
        handler, rest({"instances": [{"ticker": "AAPL", "features": features}, {"ticker": "IBM", "features": features[:3]}]})
    )
    assert "instances[1].features" in body["error"]
    _, _, body = call(handler, rest({"ticker": "AAPL", "features": features, "model_version": "0.0-old"}))
    assert "0.0-old" in body["error"] and handler.MODEL.version in body["error"]


def test_direct_invoke_nan_and_inf_are_400(handler, features):
    for bad in (float("nan"), float("inf"), float("-inf")):
        out = handler.lambda_handler({"ticker": "AAPL", "features": with_(features, i42=bad)}, None)
        assert out["status"] == 400 and out["code"] == "non_finite" and "features[42]" in out["error"]
    out = handler.lambda_handler(["not", "an", "object"], None)
    assert out["status"] == 400 and out["code"] == "invalid_event"


# --- every event source -------------------------------------------------------------------------


def test_rest_v1_sample_event(handler, keyed):
    status, headers, body = call(handler, load_event("rest_v1_predict.json"))
    assert status == 200 and body["ticker"] == "AAPL"
    assert body["interval"]["low"] < body["prediction"] < body["interval"]["high"]
    assert 0.5 <= body["confidence"] < 1 and body["interval"]["level"] == 0.8
    assert body["request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert_cors(headers)


def test_all_sources_agree(handler, keyed):
    direct = handler.lambda_handler(load_event("direct_invoke.json"), None)
    _, _, v1 = call(handler, load_event("rest_v1_predict.json"))
    _, _, v2 = call(handler, load_event("http_v2_predict.json"))
    assert direct["prediction"] == v1["prediction"] == v2["prediction"]
    assert "statusCode" not in direct  # direct invoke answers the bare JSON


def test_stage_prefix_and_base64_body(handler, keyed, features):
    ev = rest({"ticker": "AAPL", "features": features}, b64=True)
    ev["path"] = ev["resource"] = None  # only requestContext.path left: it carries the stage, which is stripped
    ev["requestContext"]["path"] = "/prod/predict"
    status, _, body = call(handler, ev)
    assert status == 200 and body["ticker"] == "AAPL"


def test_v2_with_named_stage(handler, keyed, features):
    ev = load_event("http_v2_predict.json")
    ev["rawPath"] = "/prod/predict"
    ev["requestContext"]["stage"] = "prod"
    assert call(handler, ev)[0] == 200


def test_preflight_needs_no_key(handler, keyed):
    status, headers, body = call(handler, load_event("rest_v1_preflight.json"))
    assert status == 204 and body is None
    assert_cors(headers)


def test_health_and_model(handler, keyed, manifest):
    status, headers, body = call(handler, load_event("http_v2_health.json"))
    assert status == 200 and body["status"] == "ok" and body["model_version"] == manifest["version"]
    assert_cors(headers)
    status, _, body = call(handler, load_event("rest_v1_model.json"))
    assert status == 200 and body["scaler"] == manifest["scaler"] and body["features"] == manifest["features"]


def test_batch_matches_singles(handler, keyed, features, manifest):
    # three distinct windows: the sample, and the sample with every RSI and momentum value shifted
    others = [[v + 0.3 * k if i % 10 in (7, 9) else v for i, v in enumerate(features)] for k in (1, 2)]
    instances = [{"ticker": "aapl", "features": features}] + [
        {"ticker": t, "features": f} for t, f in zip(("IBM", "^GSPC"), others, strict=True)
    ]
    status, _, body = call(handler, rest({"instances": instances, "model_version": manifest["version"]}))
    assert status == 200 and [p["ticker"] for p in body["predictions"]] == ["AAPL", "IBM", "^GSPC"]
    assert len({p["prediction"] for p in body["predictions"]}) == 3
    for inst, pred in zip(instances, body["predictions"], strict=True):
        single = handler.lambda_handler({"ticker": inst["ticker"], "features": inst["features"]}, None)
        assert pred["prediction"] == pytest.approx(single["prediction"], rel=1e-6)


def test_batch_of_64_is_accepted(handler, keyed, features):
    status, _, body = call(handler, rest({"instances": [{"ticker": "AAPL", "features": features}] * 64}))
    assert status == 200 and len(body["predictions"]) == 64


# auth on every front door: test_auth.py


# --- logs and metrics ---------------------------------------------------------------------------


def test_one_log_line_per_request_without_features_or_key(handler, keyed, features, monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buf)
    call(handler, load_event("rest_v1_predict.json"))
    call(handler, rest({"ticker": "AAPL", "features": features}, headers={"X-API-Key": "wrong-key-123"}))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    ok, bad = map(json.loads, lines)
    for field in ("request_id", "route", "ticker", "status", "latency_ms", "model_version"):
        assert field in ok
    assert ok["status"] == 200 and ok["route"] == "/predict" and ok["ticker"] == "AAPL"
    assert bad["status"] == 401 and bad["code"] == "invalid_api_key"
    text = buf.getvalue()
    assert SAMPLE_KEY not in text and "wrong-key-123" not in text
    assert repr(features[17])[:8] not in text
    # Embedded Metric Format: every metric named in a directive is a top-level number
    for rec in (ok, bad):
        for directive in rec["_aws"]["CloudWatchMetrics"]:
            for dims in directive["Dimensions"]:
                assert all(d in rec for d in dims)
            for metric in directive["Metrics"]:
                assert isinstance(rec[metric["Name"]], int | float)
    assert bad["Errors"] == 1 and bad["ErrorCode"] == "invalid_api_key"


RUNTIME_CHECK = """
import sys, pickle, json
def refuse(*a, **k):
    raise AssertionError("a pickle was loaded")
pickle.load = pickle.loads = refuse
sys.path.insert(0, {lam!r})
import lambda_handler
ev = json.load(open({ev!r}))
out = lambda_handler.lambda_handler(ev, None)
assert "prediction" in out, out
lambda_handler.lambda_handler({{"httpMethod": "GET", "path": "/model", "headers": {{}}}}, None)
banned = [m for m in ("torch", "pandas", "sklearn", "joblib", "scipy") if m in sys.modules]
assert not banned, banned
print("clean")
"""


def test_runtime_imports_stay_lean(root):
    code = RUNTIME_CHECK.format(lam=str(LAMBDA_DIR), ev=str(LAMBDA_DIR / "events" / "direct_invoke.json"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0 and "clean" in r.stdout, r.stderr


@pytest.mark.parametrize("damage", ["missing", "tampered", "no manifest"])
def test_broken_model_answers_503(tmp_path, damage):
    import shutil

    rt = tmp_path / "runtime"
    shutil.copytree(RUNTIME_DIR, rt)
    if damage == "missing":
        (rt / "model.onnx").unlink()
    elif damage == "tampered":
        data = bytearray((rt / "model.onnx").read_bytes())
        data[-1] ^= 0xFF
        (rt / "model.onnx").write_bytes(bytes(data))
    else:
        (rt / "manifest.json").unlink()
    code = (
        f"import sys, json; sys.path.insert(0, {str(LAMBDA_DIR)!r}); import lambda_handler as h; "
        "print(json.dumps([h.lambda_handler(json.load(open(sys.argv[1])), None) for _ in (0,)] + "
        "[h.lambda_handler({'version': '2.0', 'rawPath': '/health', 'requestContext': {'http': {'method': 'GET'}}}, None)]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(LAMBDA_DIR / "events" / "direct_invoke.json")],
        capture_output=True,
        text=True,
        env={"MODEL_DIR": str(rt), "PATH": "/usr/bin"},
    )
    assert r.returncode == 0, r.stderr
    predict, health = json.loads(r.stdout.strip().splitlines()[-1])
    assert predict["status"] == 503 and predict["code"] == "model_unavailable"
    assert health["statusCode"] == 503 and json.loads(health["body"])["code"] == "model_unavailable"


def test_runs_on_the_runtime_with_the_layer_pins():
    """This suite proves something about Lambda only on Lambda's CPython and the layer's exact versions."""
    from importlib.metadata import version

    import runtime_python

    assert f"{sys.version_info.major}.{sys.version_info.minor}" == runtime_python.template_version()
    pins = [
        line.split("==")
        for line in (LAMBDA_DIR / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert pins and {name: version(name) for name, _ in pins} == dict(pins)


def test_snapstart_hooks_are_registered_and_work(handler):
    """Lambda bundles snapshot_restore_py; the hooks warm the session before the snapshot and mark the restore cold."""
    snap = pytest.importorskip("snapshot_restore_py")
    before = [h[0] if isinstance(h, tuple) else h for h in snap.get_before_snapshot()]
    after = [h[0] if isinstance(h, tuple) else h for h in snap.get_after_restore()]
    assert handler._before_snapshot in before and handler._after_restore in after
    handler._before_snapshot()
    handler._cold = False
    handler._after_restore()
    assert handler._cold is True
