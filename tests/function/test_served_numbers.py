"""The served numbers themselves, against an independent computation done here from the runtime model and manifest.

The reference runs its own onnxruntime session on models/runtime/model.onnx, takes the ensemble as the manifest's
weights times the `members` output (the function reads the fused `ensemble` output), decodes the last close with
the manifest's scaler, and applies the README's formulas: prediction = close x exp(r), interval = close x
exp(r ± q x vol), confidence = Phi(|r| / (sigma x vol)) with statistics.NormalDist. A wrong served number (close,
return, volatility, q, sigma or the formulas) then fails `make test-function`, not only an ordering check.
"""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pytest

from tests.support import HTTP_SOURCES, RUNTIME_DIR, call, with_

AAPL_LAST_CLOSE = 56.1374  # the snapshot's AAPL close on 2013-03-01, the sample window's last day (adjusted)


@pytest.fixture(scope="module")
def reference():
    """(features list) -> the numbers the function should serve, computed without the function's code."""
    import onnxruntime as ort

    m = json.loads((RUNTIME_DIR / "manifest.json").read_text())
    session = ort.InferenceSession(str(RUNTIME_DIR / m["onnx"]["file"]), providers=["CPUExecutionProvider"])
    weights = np.asarray(m["ensemble"]["weights"], dtype=np.float64)
    ci, n = m["close_index"], m["n_features"]
    mean, scale = m["scaler"]["mean"][ci], m["scaler"]["scale"][ci]
    cal = m["calibration"]

    def compute(features: list[float]) -> dict:
        x = np.asarray(features, dtype=np.float32).reshape(1, m["window"], n)
        members, vol = session.run(["members", "volatility"], {m["onnx"]["input"]: x})
        r = float(members[0].astype(np.float64) @ weights)
        v = max(float(vol[0]), cal["vol_floor"])
        close = features[(m["window"] - 1) * n + ci] * scale + mean
        return {
            "last_close": close,
            "volatility": v,
            "prediction": close * math.exp(r),
            "low": close * math.exp(r - cal["q"] * v),
            "high": close * math.exp(r + cal["q"] * v),
            "confidence": NormalDist().cdf(abs(r) / (cal["sigma"] * v)),
            "level": cal["level"],
        }

    return compute


def windows(features: list[float]) -> list[list[float]]:
    """The sample window and three others: momentum and RSI shifted, a calm and a stormy last day."""
    shifted = [v + 0.4 if i % 10 in (7, 9) else v for i, v in enumerate(features)]
    calm = with_(features, i598=-1.3, i591=0.0)
    stormy = with_(features, i598=4.0, i591=-3.5, i592=3.0)
    return [features, shifted, calm, stormy]


def assert_served(body: dict, want: dict) -> None:
    assert body["last_close"] == pytest.approx(want["last_close"], rel=1e-12)
    assert body["volatility"] == pytest.approx(want["volatility"], rel=1e-6)
    assert body["prediction"] == pytest.approx(want["prediction"], rel=1e-7)
    assert body["interval"]["low"] == pytest.approx(want["low"], rel=1e-7)
    assert body["interval"]["high"] == pytest.approx(want["high"], rel=1e-7)
    assert body["interval"]["level"] == want["level"]
    assert body["confidence"] == pytest.approx(want["confidence"], abs=1e-6)


def test_the_sample_window_decodes_to_aapls_real_close(handler, features, reference):
    out = handler.lambda_handler({"ticker": "AAPL", "features": features}, None)
    assert out["last_close"] == pytest.approx(AAPL_LAST_CLOSE, abs=1e-4)
    assert reference(features)["last_close"] == pytest.approx(AAPL_LAST_CLOSE, abs=1e-4)


@pytest.mark.parametrize("source", ["direct", *sorted(HTTP_SOURCES)])
def test_served_numbers_match_the_independent_computation(handler, keyed, features, reference, source):
    answers = []
    for f in windows(features):
        if source == "direct":
            body = handler.lambda_handler({"ticker": "AAPL", "features": f}, None)
        else:
            status, _, body = call(handler, HTTP_SOURCES[source]({"ticker": "AAPL", "features": f}))
            assert status == 200, body
        assert_served(body, reference(f))
        answers.append(body)
    # the windows differ where the model looks: a check that passes for them all is not passing by coincidence
    assert len({a["prediction"] for a in answers}) == len(answers)
    assert len({round(a["confidence"], 9) for a in answers}) == len(answers)


def test_batch_numbers_match_the_independent_computation(handler, keyed, features, reference):
    ws = windows(features)
    tickers = ["AAPL", "IBM", "^GSPC", "MSFT"]
    instances = [{"ticker": t, "features": f} for t, f in zip(tickers, ws, strict=True)]
    status, _, body = call(handler, HTTP_SOURCES["http_api"]({"instances": instances}))
    assert status == 200 and [p["ticker"] for p in body["predictions"]] == tickers
    for got, f in zip(body["predictions"], ws, strict=True):
        assert_served(got, reference(f))


def test_the_served_interval_and_confidence_use_the_manifests_calibration(handler, features, reference):
    """Hand-checkable relations between the fields: the interval's half-width in log space is q x volatility, and
    the confidence inverts to |ln(prediction / close)| / (sigma x volatility)."""
    m = json.loads((RUNTIME_DIR / "manifest.json").read_text())
    q, sigma = m["calibration"]["q"], m["calibration"]["sigma"]
    for f in windows(features):
        b = handler.lambda_handler({"ticker": "AAPL", "features": f}, None)
        half = math.log(b["interval"]["high"] / b["interval"]["low"]) / 2
        assert half == pytest.approx(q * b["volatility"], rel=1e-9)
        r = math.log(b["prediction"] / b["last_close"])
        assert b["confidence"] == pytest.approx(NormalDist().cdf(abs(r) / (sigma * b["volatility"])), abs=1e-9)
