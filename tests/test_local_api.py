"""The local API over real HTTP: API Gateway's behaviour in front, awslambdaric workers behind."""

from __future__ import annotations

import json
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support import SAMPLE_KEY, LocalAPI, load_event

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def body():
    return load_event("rest_v1_predict.json")["body"]


def test_health_model_and_predict(local_api, body, manifest, built_packages):
    import package
    import smoke

    health = requests.get(local_api.url + "/health", timeout=5).json()
    assert health["status"] == "ok"
    model = requests.get(local_api.url + "/model", timeout=5).json()
    assert model["version"] == manifest["version"] and len(model["scaler"]["mean"]) == 10
    r = requests.post(local_api.url + "/predict", data=body, headers={"X-API-Key": SAMPLE_KEY}, timeout=5)
    assert r.status_code == 200, r.text
    python = package.interpreter(package.Target.from_template())
    expected = smoke.run_isolated(*built_packages, [json.loads(body)], python)["answers"][0]["prediction"]
    assert r.json()["prediction"] == pytest.approx(expected, rel=1e-9)
    assert r.headers["Access-Control-Allow-Origin"] == "*" and r.headers["x-amzn-RequestId"]
    banner = (local_api.dir / "local_api.out").read_text()
    assert f"CPython {package.Target.from_template().python}" in banner and "as on Lambda" in banner and "WARNING" not in banner


def test_the_event_is_api_gateways(local_api, body):
    """The function sees a REST v1 proxy event: its request id and stage come back in the answer."""
    r = requests.post(local_api.url + "/predict?debug=1", data=body, headers={"X-API-Key": SAMPLE_KEY}, timeout=5)
    assert r.json()["request_id"] == r.headers["x-amzn-RequestId"]


@pytest.mark.parametrize(
    "headers, status, message",
    [
        ({}, 403, "Forbidden"),
        ({"X-API-Key": "wrong"}, 403, "Forbidden"),
        ({"x-api-key": SAMPLE_KEY}, 200, None),
    ],
)
def test_usage_plan_key(local_api, body, headers, status, message):
    r = requests.post(local_api.url + "/predict", data=body, headers=headers, timeout=5)
    assert r.status_code == status
    if message:
        assert r.json() == {"message": message}
        assert r.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("method, path", [("GET", "/nope"), ("GET", "/predict"), ("DELETE", "/model"), ("GET", "/")])
def test_undefined_routes_are_missing_authentication_token(local_api, method, path):
    r = requests.request(method, local_api.url + path, timeout=5)
    assert r.status_code == 403 and r.json() == {"message": "Missing Authentication Token"}


def test_outside_the_stage(local_api):
    r = requests.get(f"http://127.0.0.1:{local_api.port}/health", timeout=5)
    assert r.status_code == 403


def test_preflight(local_api):
    r = requests.options(
        local_api.url + "/predict",
        headers={
            "Origin": "http://localhost:8501",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key",
        },
        timeout=5,
    )
    assert r.status_code == 204
    assert "X-API-Key" in r.headers["Access-Control-Allow-Headers"] and "POST" in r.headers["Access-Control-Allow-Methods"]


def test_client_errors_pass_through_as_4xx(local_api):
    h = {"X-API-Key": SAMPLE_KEY}
    r = requests.post(local_api.url + "/predict", data="{nope", headers=h, timeout=5)
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    r = requests.post(local_api.url + "/predict", data=b"\xff\xfe\x00binary", headers=h, timeout=5)
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"  # sent base64-encoded, decoded by the function
    r = requests.post(local_api.url + "/predict", data=" " * (2 * 1024 * 1024), headers=h, timeout=10)
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


def test_payload_over_10_mb_is_refused_by_the_gateway(local_api):
    r = requests.post(
        local_api.url + "/predict", data=b" " * (10 * 1024 * 1024 + 1), headers={"X-API-Key": SAMPLE_KEY}, timeout=30
    )
    assert r.status_code == 413 and r.json() == {"message": "Request Too Long"}


def test_concurrent_requests_all_succeed(local_api, body):
    def one(_):
        return requests.post(local_api.url + "/predict", data=body, headers={"X-API-Key": SAMPLE_KEY}, timeout=10).status_code

    with ThreadPoolExecutor(8) as ex:
        assert set(ex.map(one, range(64))) == {200}


def test_invocation_log(local_api, body):
    requests.post(local_api.url + "/predict", data=body, headers={"X-API-Key": SAMPLE_KEY}, timeout=5)
    logs = local_api.invocations()
    assert logs, "no invocation was logged"
    last = logs[-1]
    assert last["path"] == "/predict" and last["status"] == 200 and last["memory_mb"] == 256
    assert last["billed_ms"] == max(1, -(-last["duration_ms"] // 1))  # whole ms, rounded up
    assert any(rec["cold_start"] and rec["init_ms"] for rec in logs)
    assert 0 < last["max_memory_used_mb"] < 128


def test_invocation_log_counts_predictions(local_api, body, features):
    """The cost monitor's contract: every record says how many predictions it served (1, N for a batch of N, 0 for
    /health, /model and errors)."""
    h = {"X-API-Key": SAMPLE_KEY}
    before = len(local_api.invocations())
    batch = json.dumps({"instances": [{"ticker": "AAPL", "features": features}] * 3})
    assert requests.post(local_api.url + "/predict", data=body, headers=h, timeout=10).status_code == 200
    assert requests.post(local_api.url + "/predict", data=batch, headers=h, timeout=10).status_code == 200
    assert requests.get(local_api.url + "/health", timeout=10).status_code == 200
    assert requests.get(local_api.url + "/model", timeout=10).status_code == 200
    assert requests.post(local_api.url + "/predict", data="{nope", headers=h, timeout=10).status_code == 400
    log = local_api.invocations()[before:]
    assert [(rec["path"], rec["status"], rec["predictions"]) for rec in log] == [
        ("/predict", 200, 1),
        ("/predict", 200, 3),
        ("/health", 200, 0),
        ("/model", 200, 0),
        ("/predict", 400, 0),
    ]


def test_workers_run_under_awslambdaric_with_nothing_else(local_api):
    log = (local_api.dir / "function.log").read_text()
    assert '"message":"request"' in log  # the handler's JSON lines, as CloudWatch would get them
    task = next((local_api.dir / "lambda").glob("*/task"))
    assert (task / "lambda_handler.py").exists() and (task / "runtime" / "model.onnx").exists()


# --- a misbehaving function: crash, hang, throttle ------------------------------------------------

MISBEHAVING = """
import json, os, time
def lambda_handler(event, context):
    body = event.get("body") or ""
    if "crash" in body:
        os._exit(3)
    if "hang" in body:
        time.sleep(120)
    if "raise" in body:
        raise RuntimeError("boom")
    if "malformed" in body:
        return {"no": "statusCode"}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps({"ok": True})}
"""


@pytest.fixture(scope="module")
def misbehaving(tmp_path_factory, built_packages):
    tmp = tmp_path_factory.mktemp("misbehaving")
    fn = tmp / "fn.zip"
    with zipfile.ZipFile(fn, "w") as zf:
        zf.writestr("lambda_handler.py", MISBEHAVING)
    api = LocalAPI(tmp, args=("--function-zip", str(fn), "--workers", "2", "--timeout", "2", "--integration-timeout", "4"))
    yield api
    api.stop()


def _post(api, text, timeout=30):
    return requests.post(api.url + "/predict", data=text, headers={"X-API-Key": SAMPLE_KEY}, timeout=timeout)


def test_crashed_worker_answers_502_and_is_replaced(misbehaving):
    r = _post(misbehaving, "crash")
    assert r.status_code == 502 and r.json() == {"message": "Internal server error"}
    for _ in range(4):  # both workers serve again
        assert _post(misbehaving, "fine").status_code == 200


def test_hung_worker_is_killed_at_the_function_timeout(misbehaving):
    t0 = time.time()
    r = _post(misbehaving, "hang")
    assert r.status_code == 502 and time.time() - t0 > 1.5  # waited for the 2 s Timeout; the 4 s gateway limit would be a 504
    assert _post(misbehaving, "fine").status_code == 200
    assert any(rec["outcome"] == "timeout" for rec in misbehaving.invocations())


def test_handler_exception_and_malformed_answer_are_502(misbehaving):
    assert _post(misbehaving, "raise").status_code == 502
    assert _post(misbehaving, "malformed").status_code == 502
    assert _post(misbehaving, "fine").status_code == 200


def test_integration_timeout_is_504(tmp_path, built_packages):
    fn = tmp_path / "fn.zip"
    with zipfile.ZipFile(fn, "w") as zf:
        zf.writestr("lambda_handler.py", MISBEHAVING)
    api = LocalAPI(
        tmp_path, args=("--function-zip", str(fn), "--workers", "1", "--timeout", "30", "--integration-timeout", "1.5")
    )
    try:
        t0 = time.time()
        r = _post(api, "hang")
        assert r.status_code == 504 and r.json() == {"message": "Endpoint request timed out"}
        assert time.time() - t0 < 25  # the gateway gave up, long before the function's 30 s Timeout
        assert _post(api, "fine").status_code == 200
    finally:
        api.stop()


def test_throttle_answers_429(tmp_path, built_packages):
    fn = tmp_path / "fn.zip"
    with zipfile.ZipFile(fn, "w") as zf:
        zf.writestr("lambda_handler.py", MISBEHAVING)
    api = LocalAPI(tmp_path, args=("--function-zip", str(fn), "--workers", "1", "--rate-limit", "0.5", "--burst-limit", "3"))
    try:  # the health probe in LocalAPI took one token
        codes = [_post(api, "fine").status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and 429 in codes
        r = _post(api, "fine")
        assert r.status_code == 429 and r.json() == {"message": "Too Many Requests"}
    finally:
        api.stop()


@pytest.mark.slow
def test_without_the_runtime_python_it_serves_on_this_one_and_says_so(tmp_path, body):
    """`make run` never fails for lack of CPython 3.13: it serves on the venv's interpreter, with a layer built for
    it, and its banner says plainly that this is not the deployed runtime."""
    import sys

    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    api = LocalAPI(
        tmp_path,
        env={
            "FUNCTION_VENV": str(tmp_path / "no-venv"),
            "PYENV_ROOT": str(tmp_path / "no-pyenv"),
            "PATH": "/usr/bin:/bin",
            "FUNCTION_PYTHON": "",
        },
    )
    try:
        r = requests.post(api.url + "/predict", data=body, headers={"X-API-Key": SAMPLE_KEY}, timeout=10)
        assert r.status_code == 200 and r.json()["prediction"] > 0
        banner = (tmp_path / "local_api.out").read_text()
        assert f"WARNING    serving the function on CPython {here}, NOT the deployed python3.13" in banner
        assert "pyenv install 3.13" in banner
        info = json.loads((tmp_path / "local_api.json").read_text())
        assert info["python"] == here and "NOT the deployed" in info["caveat"]
    finally:
        api.stop()


def test_the_workers_follow_the_calibration_state_without_a_restart(local_api, features, manifest):
    """The local API hands its workers the state's path (CALIBRATION_STATE) and says where it is in local_api.json; a
    change written there is served on the next request, and a removed state falls back to the model's own interval."""
    info = json.loads((local_api.dir / "local_api.json").read_text())
    state = local_api.dir / "calibration.json"
    assert info["calibration_state"] == str(state.resolve())

    def ask() -> dict:
        r = requests.post(local_api.url + "/predict", json={"ticker": "AAPL", "features": features},
                          headers={"X-API-Key": SAMPLE_KEY}, timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        return r.json()["interval"]

    def write(factor: float) -> None:
        entry = {"factor": factor, "as_of": "2013-02-28", "n": 400}
        doc = {"version": 1, "model_version": manifest["version"], "method": "qt", "tickers": {"AAPL": entry},
               "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
        tmp = state.with_name("next.json")
        tmp.write_text(json.dumps(doc))
        tmp.replace(state)

    try:
        plain = ask()
        assert plain["calibration"]["method"] == "none"
        for factor in (1.2, 0.9, 1.2):  # two workers: each must see every change
            write(factor)
            for _ in range(4):
                got = ask()
                assert got["calibration"] == {"method": "qt", "factor": factor, "as_of": "2013-02-28", "n": 400}
                assert (got["high"] - got["low"]) / (plain["high"] - plain["low"]) == pytest.approx(factor, rel=2e-3)
    finally:
        state.unlink(missing_ok=True)
    assert ask()["calibration"]["method"] == "none"
