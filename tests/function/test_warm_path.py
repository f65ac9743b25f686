"""The warm path's shortcuts change no answer: one window shaped in plain floats equals the vectorized path bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support import load_event


@pytest.fixture(scope="module")
def windows(handler) -> np.ndarray:
    """Real and perturbed windows: the sample event's, shifted and scaled, so the outputs cover a wide range."""
    base = np.array(load_event("direct_invoke.json")["features"], dtype=np.float64)
    rng = np.random.default_rng(20261130)
    rows = [base] + [base + rng.normal(0, s, base.size) for s in (0.001, 0.01, 0.03, 0.1, 0.3) for _ in range(60)]
    X = np.array(rows)
    model = handler.MODEL
    closes = X[:, model.close_index :: model.n_features] * model.scale[model.close_index] + model.mean[model.close_index]
    return X[(closes > 0).all(axis=1)]


def test_single_window_shortcut_is_bit_identical(handler, windows, monkeypatch):
    """Each window through the shortcut against the same window through the vectorized path (the graph's outputs
    depend on the batch size, so each is run alone both ways)."""
    model = handler.MODEL
    fast = [model.predict(row[None, :])[0] for row in windows]
    monkeypatch.setattr(model, "_shape_one", lambda *args: None)
    slow = [model.predict(row[None, :])[0] for row in windows]
    assert len(fast) > 100
    for i, (one, ref) in enumerate(zip(fast, slow, strict=True)):
        assert one == ref, f"window {i}: {one} != {ref}"
        for key in ("prediction", "confidence", "last_close", "volatility"):
            assert one[key].hex() == ref[key].hex() and type(one[key]) is float
        assert one["interval"]["low"].hex() == ref["interval"]["low"].hex()
        assert one["interval"]["high"].hex() == ref["interval"]["high"].hex()


def test_shortcut_declines_what_it_cannot_shape(handler):
    model = handler.MODEL
    assert model._shape_one(100.0, 800.0, 0.01) is None  # exp() would overflow: the general path answers 400
    assert model._shape_one(100.0, 0.001, float("nan")) is None
    assert model._shape_one(-1.0, 0.001, 0.01) is None
    assert model._shape_one(100.0, 0.001, 0.01)["prediction"] > 0


@pytest.mark.parametrize("literal", ["true", "false"])
def test_a_boolean_feature_is_still_refused_on_the_fast_check(handler, keyed, literal):
    """The per-item type check is skipped only when the body cannot hold a boolean; array('d') would take one."""
    from tests.support import call, rest

    features = load_event("direct_invoke.json")["features"]
    text = '{"ticker": "AAPL", "features": [' + ", ".join(map(repr, features[:599])) + f", {literal}]}}"
    status, _, body = call(handler, rest(raw=text))
    assert status == 400 and body["code"] == "non_numeric" and "features[599]" in body["error"]


def test_may_hold_booleans():
    from forecast.validation import may_hold_booleans

    assert may_hold_booleans('{"x": true}') and may_hold_booleans(b'{"x": false}') and may_hold_booleans(None)
    assert not may_hold_booleans('{"x": [1.5, -2, 3e-5]}') and not may_hold_booleans(b"[1.0]")
