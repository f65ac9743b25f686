"""What the function makes of paths and stages, what its metric line may cost, and the batch limit's one definition."""

from __future__ import annotations

import io
import json
import sys

import pytest
import yaml

from tests.support import LAMBDA_DIR, call, load_event, rest


def emf_lines(handler, monkeypatch, events) -> list[dict]:
    """The function's log lines (one per request) for `events`."""
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buf)
    for ev in events:
        handler.lambda_handler(ev, None)
    monkeypatch.setattr(sys, "stdout", sys.__stdout__)
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def function_url(path: str, method: str = "GET") -> dict:
    ev = load_event("http_v2_health.json")
    ev["rawPath"], ev["requestContext"]["http"]["method"], ev["requestContext"]["stage"] = path, method, "$default"
    ev["headers"] = {}
    return ev


def test_probing_new_paths_mints_no_new_metric(handler, keyed, monkeypatch):
    """1000 unauthenticated requests to 1000 paths on a Function URL: CloudWatch bills per metric (name + dimensions),
    so the Route dimension must take the matched route or "other", never the raw path."""
    paths = [f"/probe-{i}/x" for i in range(1000)] + ["/predict", "/model", "/health", "/predict/", "/"]
    lines = emf_lines(handler, monkeypatch, [function_url(p, "POST" if p.startswith("/predict") else "GET") for p in paths])
    assert len(lines) == len(paths)
    routes = {line["Route"] for line in lines}
    assert routes == {"other", "/predict", "/model", "/health"}, routes
    for line in lines:
        [directive, *_] = line["_aws"]["CloudWatchMetrics"]
        assert directive["Dimensions"] == [["Service", "Route"]]
    assert lines[0]["path"] == "/probe-0/x", "the raw path stays in the log line, as text"


def test_predictions_metric_counts_answers(handler, keyed, features, monkeypatch):
    """The cost monitor counts predictions from the EMF line: 1 a single, N a batch of N, 0 for everything else."""
    batch = rest({"instances": [{"ticker": "AAPL", "features": features}] * 5})
    events = [load_event("rest_v1_predict.json"), batch, load_event("http_v2_health.json"), load_event("rest_v1_model.json")]
    events.append(rest({"ticker": "AAPL", "features": features[:3]}))  # a 400
    lines = emf_lines(handler, monkeypatch, events)
    assert [line["Predictions"] for line in lines] == [1, 5, 0, 0, 0]
    metrics = {m["Name"]: m["Unit"] for m in lines[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert metrics["Predictions"] == "Count"


@pytest.mark.parametrize("stage", ["predict", "model", "health", "prod"])
@pytest.mark.parametrize("route, method", [("/predict", "POST"), ("/model", "GET"), ("/health", "GET")])
def test_a_stage_named_like_a_route_keeps_the_route(handler, keyed, features, stage, route, method):
    """REST's `path` never carries the stage (requestContext.path does): a stage called `predict` must not strip
    /predict into / and answer 404."""
    ev = rest({"ticker": "AAPL", "features": features} if method == "POST" else None, method=method, path=route)
    ev["requestContext"]["stage"], ev["requestContext"]["path"] = stage, f"/{stage}{route}"
    assert call(handler, ev)[0] == 200
    v2 = load_event("http_v2_predict.json")  # an HTTP API's named stage is in rawPath: stripped once, from the front
    v2["rawPath"], v2["requestContext"]["stage"], v2["requestContext"]["http"]["method"] = f"/{stage}{route}", stage, method
    if method == "GET":
        v2["body"] = None
    assert call(handler, v2)[0] == 200


def test_the_batch_limit_is_defined_once(handler, keyed, features):
    from forecast.validation import MAX_BATCH

    spec = yaml.safe_load((LAMBDA_DIR / "openapi.yaml").read_text())
    post = spec["paths"]["/predict"]["post"]
    schemas = json.dumps(spec["components"]["schemas"])
    assert f'"maxItems": {MAX_BATCH}' in schemas, "openapi.yaml's instances.maxItems must be MAX_BATCH"
    assert f"up to {MAX_BATCH}" in post["summary"]
    item = {"ticker": "AAPL", "features": features}
    status, _, body = call(handler, rest({"instances": [item] * MAX_BATCH}))
    assert status == 200 and len(body["predictions"]) == MAX_BATCH
    status, _, body = call(handler, rest({"instances": [item] * (MAX_BATCH + 1)}))
    assert status == 400 and body["code"] == "batch_too_large" and f"at most {MAX_BATCH}" in body["error"]
    status, _, body = call(handler, rest(raw=" " * (1024 * 1024 + 1)))
    assert status == 413 and f"at most {MAX_BATCH} instances" in body["error"]
