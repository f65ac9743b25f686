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


def _text(features) -> str:
    return ", ".join(v if isinstance(v, str) else repr(v) for v in features)


@pytest.mark.parametrize("literal", ["true", "false"])
@pytest.mark.parametrize("at", [0, 299, 599])
def test_a_boolean_feature_is_refused(handler, keyed, literal, at):
    """struct.pack takes a boolean as 1.0 or 0.0; the x * x == x check must still find it wherever it sits."""
    from tests.support import call, rest

    features = list(load_event("direct_invoke.json")["features"])
    features[at] = literal
    status, _, body = call(handler, rest(raw='{"ticker": "AAPL", "features": [' + _text(features) + "]}"))
    assert status == 400 and body["code"] == "non_numeric", body
    assert f"features[{at}] must be a number, got bool" in body["error"]


@pytest.mark.parametrize("literal", ["true", "false"])
def test_a_boolean_in_a_later_batch_row_is_named(handler, keyed, literal):
    from tests.support import call, rest

    features = load_event("direct_invoke.json")["features"]
    bad = list(features)
    bad[7] = literal
    rows = [f'{{"ticker": "AAPL", "features": [{_text(r)}]}}' for r in (features, features, bad)]
    status, _, body = call(handler, rest(raw='{"instances": [' + ", ".join(rows) + "]}"))
    assert status == 400 and body["code"] == "non_numeric", body
    assert "instances[2].features[7] must be a number, got bool" in body["error"]


def test_a_boolean_sent_by_direct_invoke_is_refused(handler):
    """Direct invoke hands over an already-decoded payload: no body text to search, the same check."""
    features = list(load_event("direct_invoke.json")["features"])
    features[42] = True
    out = handler.lambda_handler({"ticker": "AAPL", "features": features}, None)
    assert out["status"] == 400 and out["code"] == "non_numeric" and "features[42]" in out["error"]


def test_exact_zeros_and_ones_are_numbers(handler, keyed):
    """The slow check runs for a window holding 0 or 1 exactly, and finds numbers: the answer equals the one for
    the same window sent as floats, bit for bit."""
    from tests.support import call, rest

    features = list(load_event("direct_invoke.json")["features"])
    features[10], features[11], features[12] = 0, 1, 0.0  # ints and a float, all exact
    as_ints = call(handler, rest(raw='{"ticker": "AAPL", "features": [' + _text(features) + "]}"))
    features[10], features[11] = 0.0, 1.0
    as_floats = call(handler, rest({"ticker": "AAPL", "features": features}))
    assert as_ints[0] == as_floats[0] == 200, (as_ints, as_floats)
    assert as_ints[2]["prediction"].hex() == as_floats[2]["prediction"].hex()


@pytest.mark.parametrize(
    ("item", "code", "says"),
    [
        ('"0.5"', "non_numeric", "features[5] must be a number, got str"),
        ("null", "non_numeric", "features[5] must be a number, got NoneType"),
        ("[1]", "non_numeric", "features[5] must be a number, got list"),
    ],
)
def test_what_struct_refuses_is_named(handler, keyed, item, code, says):
    from tests.support import call, rest

    features = [repr(v) for v in load_event("direct_invoke.json")["features"]]
    features[5] = item
    status, _, body = call(handler, rest(raw='{"ticker": "AAPL", "features": [' + ", ".join(features) + "]}"))
    assert status == 400 and body["code"] == code and says in body["error"], body


def test_an_integer_beyond_float_range_is_named_on_direct_invoke(handler):
    """orjson refuses 1e400 in a body as invalid JSON; a direct invoke's payload comes from Lambda's own decoder,
    which keeps it as a Python int that struct cannot pack."""
    features = list(load_event("direct_invoke.json")["features"])
    features[3] = 10**400
    out = handler.lambda_handler({"ticker": "AAPL", "features": features}, None)
    assert out["status"] == 400 and out["code"] == "non_finite" and "too large for a float" in out["error"], out
