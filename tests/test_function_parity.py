"""The built package, run isolated on the runtime's CPython, answers what models/ computes in PyTorch.

The function's own suite (tests/function) runs on CPython 3.13 without pandas or torch; these checks need both
sides, so they run here and reach the function the way Lambda does: the extracted zips, `python3.13 -S -E`.
"""

from __future__ import annotations

import numpy as np
import package
import pytest
import smoke


@pytest.fixture(scope="session")
def run_function(built_packages):
    python = package.interpreter(package.Target.from_template())

    def run(events: list) -> list:
        return smoke.run_isolated(*built_packages, events, python)["answers"]

    return run


CASES = [("AAPL", None), ("IBM", "2008-10-10"), ("^GSPC", "2017-06-30"), ("^IXIC", "2002-07-19"), ("GOOG", "2012-01-03")]


def test_predictions_equal_the_reference(run_function, manifest, root):
    """The served answer equals models/'s PyTorch ensemble within a relative 1e-4, in price units."""
    torch = pytest.importorskip("torch")
    from models.data import load_prices
    from models.export import load_ensemble
    from models.features import window

    ens, _, _ = load_ensemble(root / "models")  # the point forecast; the interval is checked against evaluate below
    windows = [window(load_prices(t, source="snapshot"), manifest["scaler"], end=e) for t, e in CASES]
    answers = run_function([{"ticker": t, "features": w.tolist()} for (t, _), w in zip(CASES, windows, strict=True)])
    for (ticker, end), w, out in zip(CASES, windows, answers, strict=True):
        with torch.no_grad():
            r = float(ens(torch.from_numpy(w.reshape(1, 60, 10).astype(np.float32)))[0][0])
        last = w[590] * manifest["scaler"]["scale"][0] + manifest["scaler"]["mean"][0]
        assert out["prediction"] == pytest.approx(last * np.exp(r), rel=1e-4), ticker
        close = load_prices(ticker, source="snapshot", end=end)["Close"].iloc[-1]
        assert out["last_close"] == pytest.approx(close, rel=1e-6), ticker


def test_confidence_varies_per_request(run_function, manifest):
    from models.data import load_prices
    from models.features import window

    df = load_prices("^GSPC", source="snapshot")
    ends = ("2008-10-10", "2012-03-01", "2016-06-24", "2018-12-24")
    answers = run_function([{"ticker": "^GSPC", "features": window(df, manifest["scaler"], end=e).tolist()} for e in ends])
    assert len({round(a["confidence"], 6) for a in answers}) == 4, "confidence must be computed per request, not a constant"


def test_events_match_the_served_scaler(manifest, features):
    """The sample events were generated with the current scaler (regenerate: lambda/events/generate.py)."""
    from tests.support import load_event

    assert load_event("direct_invoke.json")["features"] == pytest.approx(features, abs=1e-7)


def test_served_interval_and_confidence_equal_what_evaluate_computes(run_function, root, manifest):
    """Serving and evaluation must not drift: the function's interval, confidence and volatility for a window equal
    models.evaluate's for the same window (the figures in metrics.json are about what is served)."""
    from models import dataset
    from models.evaluate import RuntimeModel

    rt = RuntimeModel(root / "models" / "runtime")
    windows, lasts = [], []
    for ticker in ("AAPL", "^GSPC", "^IXIC"):
        d = dataset.build(ticker)
        idx = np.linspace(0, len(d) - 1, 6).astype(int)
        windows.append(d.X[idx])
        lasts.append(d.last_close[idx])
    X, last = np.concatenate(windows), np.concatenate(lasts)
    expected = rt.served(X, last)
    from models.features import standardize

    Xs = standardize(X, manifest["scaler"])  # float64, as clients send them (the graph itself runs in float32)
    answers = run_function([{"ticker": "AAPL", "features": w.reshape(-1).tolist()} for w in Xs])
    for i, a in enumerate(answers):
        assert a["interval"]["low"] == pytest.approx(expected["low"][i], rel=1e-5)
        assert a["interval"]["high"] == pytest.approx(expected["high"][i], rel=1e-5)
        assert a["confidence"] == pytest.approx(expected["confidence"][i], abs=1e-4)  # float32 graph, two onnxruntime versions
        assert a["volatility"] == pytest.approx(expected["volatility"][i], rel=1e-5)
        assert a["prediction"] == pytest.approx(expected["prediction"][i], rel=1e-5)
