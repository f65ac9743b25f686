"""The warm path's guards at their edges: closes that decode to exactly 0, just below and just above it on any day;
the scaler's load check that the one-reduction close check relies on; booleans found by x * x == x only at 0 and
1; and the read-only window that parse_predict hands to Model.predict.

Each input here was also run through the build before the struct/x*x==x change (5ed8e27) and gave the same
status, code and bits.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from tests.support import RUNTIME_DIR, call, load_event, rest


def _zero_close(model) -> tuple[float, float, float]:
    """(x giving a close of exactly 0.0, the next double below it, the next above) for the served scaler: the
    doubles around -mean/scale, walked one ulp at a time."""
    scale, mean = float(model.scale[model.close_index]), float(model.mean[model.close_index])
    x = -mean / scale
    for _ in range(200):  # a few ulps from the quotient at most
        price = x * scale + mean
        if price == 0.0:
            return x, math.nextafter(x, -math.inf), math.nextafter(x, math.inf)
        x = math.nextafter(x, math.inf if price < 0 else -math.inf)
    pytest.skip("no double decodes to a close of exactly 0 under this scaler")


@pytest.fixture(scope="module")
def edges(handler):
    return _zero_close(handler.MODEL)


def _body(features) -> str:
    return json.dumps({"ticker": "AAPL", "features": features})


@pytest.mark.parametrize("day", [0, 30, 59])
@pytest.mark.parametrize("which", ["zero", "below"])
def test_a_close_at_or_below_zero_is_refused_on_any_day(handler, keyed, features, edges, day, which):
    """The check reads only the lowest close: a zero or negative close in the middle of the window (not the
    lowest when the others are scanned the wrong way, not the last day the answer is built from) is still 400."""
    model = handler.MODEL
    x = edges[0] if which == "zero" else edges[1]
    assert (x * model.close_scaler[0] + model.close_scaler[1] > 0) is False
    f = list(features)
    f[day * model.n_features + model.close_index] = x
    status, _, body = call(handler, rest(raw=_body(f)))
    assert status == 400 and body["code"] == "invalid_price", body
    assert f"features[{day * model.n_features + model.close_index}] (day {day} close)" in body["error"]


def test_a_zero_close_in_a_later_batch_row_names_that_row(handler, keyed, features, edges):
    model = handler.MODEL
    bad = list(features)
    bad[30 * model.n_features + model.close_index] = edges[0]
    payload = {"instances": [{"ticker": "AAPL", "features": f} for f in (features, features, bad)]}
    status, _, body = call(handler, rest(payload))
    assert status == 400 and body["code"] == "invalid_price" and "in row 2" in body["error"], body


def test_a_tiny_positive_last_close_is_served_as_decoded(handler, keyed, features, edges):
    """One ulp above the zero close: a price of about 1e-13, positive, so it is served, and its last_close is the
    very double x * scale + mean, single and batch."""
    model = handler.MODEL
    x = edges[2]
    price = x * model.close_scaler[0] + model.close_scaler[1]
    assert 0.0 < price < 1e-9
    f = list(features)
    f[59 * model.n_features + model.close_index] = x
    status, _, body = call(handler, rest(raw=_body(f)))
    assert status == 200, body
    assert body["last_close"].hex() == price.hex()
    status, _, body = call(handler, rest({"instances": [{"ticker": "AAPL", "features": f}] * 2}))
    assert status == 200, body
    assert [p["last_close"].hex() for p in body["predictions"]] == [price.hex()] * 2


@pytest.mark.parametrize(
    ("field", "bad"), [("scale", 0.0), ("scale", -1.0), ("scale", float("nan")), ("scale", float("inf")), ("mean", float("nan"))]
)
def test_a_scaler_that_is_not_a_positive_finite_scale_is_refused_at_load(handler, tmp_path, field, bad):
    """predict() decides every close from the lowest one, which holds only for a positive finite scale: a manifest
    with any other scale (or a mean that is not finite) makes the model unavailable (503) instead of answering
    every client 400 invalid_price or worse."""
    from forecast.inference import Model, ModelUnavailable

    rt = tmp_path / "runtime"
    shutil.copytree(RUNTIME_DIR, rt)
    manifest = json.loads((rt / "manifest.json").read_text())
    manifest["scaler"][field][manifest["close_index"]] = bad
    (rt / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelUnavailable, match="scale"):
        Model(rt)


def test_the_served_scaler_loads(handler):
    """The guard above refuses only broken scalers: the committed one passes it."""
    from forecast.inference import Model

    assert Model(RUNTIME_DIR).close_scaler == handler.MODEL.close_scaler


@pytest.mark.parametrize("value", [0, 1, 0.0, -0.0, 1.0, 5e-324, -5e-324, math.nextafter(1.0, 2.0), math.nextafter(1.0, 0.0)])
def test_exact_and_near_zeros_and_ones_are_numbers_in_every_row(handler, keyed, features, value):
    """x * x == x flags 0, -0.0 and 1 (and denormals, whose square is 0, must not confuse it): such a row has its
    item types checked and passes, in every row of a batch, with the same bits as the floats."""
    rows = [list(features) for _ in range(3)]
    for r, row in enumerate(rows):
        row[r * 7] = value
    status, _, body = call(handler, rest({"instances": [{"ticker": "AAPL", "features": row} for row in rows]}))
    assert status == 200, body
    floats = [[float(v) for v in row] for row in rows]
    status, _, ref = call(handler, rest({"instances": [{"ticker": "AAPL", "features": row} for row in floats]}))
    assert [p["prediction"].hex() for p in body["predictions"]] == [p["prediction"].hex() for p in ref["predictions"]]


@pytest.mark.parametrize("literal", ["true", "false"])
def test_a_boolean_among_exact_zeros_and_ones_is_named(handler, keyed, features, literal):
    """Rows 0 and 1 hold exact 0 and 1 (flagged, and numbers); row 2 holds the boolean, after an exact 0 of its own."""
    rows = [list(map(repr, features)) for _ in range(3)]
    rows[0][3], rows[1][4], rows[2][5], rows[2][598] = "0", "1", "0.0", literal
    text = ", ".join('{"ticker": "AAPL", "features": [' + ", ".join(r) + "]}" for r in rows)
    status, _, body = call(handler, rest(raw='{"instances": [' + text + "]}"))
    assert status == 400 and body["code"] == "non_numeric", body
    assert "instances[2].features[598] must be a number, got bool" in body["error"]


def _window(handler, payload) -> np.ndarray:
    from forecast.validation import parse_predict

    model = handler.MODEL
    return parse_predict(payload, model.shape, model.ticker_re)[1]


def test_the_window_is_read_only_and_every_predict_path_takes_it(handler, features, edges):
    """parse_predict returns a view of the packed bytes, which numpy marks read-only: an in-place write anywhere
    downstream would be a 500. Each of predict's paths (one window, a batch, a refused close, an unforecastable
    row) runs on such a view and leaves it as it was."""
    from forecast.errors import ApiError

    model = handler.MODEL
    single = _window(handler, {"ticker": "AAPL", "features": list(features)})
    batch = _window(handler, {"instances": [{"ticker": "AAPL", "features": list(features)}] * 3})
    zero = list(features)
    zero[30 * model.n_features + model.close_index] = edges[0]
    refused = _window(handler, {"ticker": "AAPL", "features": zero})
    stormy = _window(handler, {"ticker": "AAPL", "features": [1000.0 if i % 10 else 1.0 for i in range(len(features))]})
    for X in (single, batch, refused, stormy):
        assert not X.flags.writeable and X.dtype == np.float64
    before = [X.tobytes() for X in (single, batch, refused, stormy)]
    assert len(model.predict(single)) == 1 and len(model.predict(batch)) == 3
    for X, code in ((refused, "invalid_price"), (stormy, None)):
        try:
            model.predict(X)
        except ApiError as err:
            assert code is None or err.code == code
        else:
            assert code is None
    assert [X.tobytes() for X in (single, batch, refused, stormy)] == before


def test_the_snapstart_hook_predicts(handler):
    """The hook runs once before the snapshot on a writable zeros window; it must not raise either."""
    handler._before_snapshot()


def test_the_sample_event_still_answers(handler):
    out = handler.lambda_handler(load_event("direct_invoke.json"), None)
    assert "prediction" in out and out["prediction"] > 0, out


class _Counting(list):
    """A features list that counts the items read from it, by iteration or by index."""

    reads = 0

    def __iter__(self):
        for v in super().__iter__():
            type(self).reads += 1
            yield v

    def __getitem__(self, i):
        type(self).reads += 1
        return super().__getitem__(i)


@pytest.mark.parametrize("rows", [1, 64])
def test_an_exact_zero_costs_its_own_type_check_not_its_rows(handler, features, rows):
    """A client that fills a gap with the mean sends an exact 0.0: x * x == x flags it, and then only the flagged
    items have their type read, not every item of the row again (600 reads a row: 5x the validation, 3x for a
    batch of 64). Counted in item reads, not time: packing reads each item once, the check one per flag."""
    from forecast.validation import parse_predict

    model = handler.MODEL
    row = list(features)
    row[5], row[77] = 0.0, 1
    _Counting.reads = 0
    payload = {"instances": [{"ticker": "AAPL", "features": _Counting(row)} for _ in range(rows)]}
    X = parse_predict(payload, model.shape, model.ticker_re)[1]
    assert X.shape == (rows, len(row))
    assert _Counting.reads <= rows * (len(row) + 2), _Counting.reads


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (math.nextafter(1000.0, math.inf), "1000.0000000000001"),
        (-1000.0000001, "-1000.0000001"),
        (2000.5, "2000.5"),
        (1e308, "1e+308"),
    ],
)
def test_the_out_of_range_error_shows_a_value_beyond_the_bound(handler, keyed, features, value, shown):
    """Six significant digits round the next double above 1000 to "1000", which read "1000 is outside ±1000"."""
    status, _, body = call(handler, rest(raw=_body([*features[:591], value, *features[592:]])))
    assert status == 400 and body["code"] == "out_of_range", body
    assert f"features[591] = {shown} is outside ±1000" in body["error"], body["error"]


@pytest.mark.parametrize("value", [10**400, -(10**400), 2**1024 - 2**970], ids=["1e400", "-1e400", "rounds to 2**1024"])
def test_an_integer_beyond_float_range_names_its_row_and_item(handler, features, value):
    """Direct invoke's decoder keeps such an integer exact; struct cannot pack it, and the answer names it, after
    any item of an earlier kind (a string) that was always named first."""
    rows = [list(features), list(features)]
    rows[1][3] = value
    out = handler.lambda_handler({"instances": [{"ticker": "AAPL", "features": r} for r in rows]}, None)
    assert out["status"] == 400 and out["code"] == "non_finite", out
    assert "instances[1].features[3] is too large for a float" in out["error"], out
    rows[1][9] = "x"
    out = handler.lambda_handler({"instances": [{"ticker": "AAPL", "features": r} for r in rows]}, None)
    assert out["code"] == "non_numeric" and "instances[1].features[9] must be a number, got str" in out["error"], out


def test_the_largest_integer_a_float_holds_is_packed_and_bounded(handler, features):
    """2**1024 - 2**971 rounds to the largest double: packed, then refused by the ±1000 bound, not as too large."""
    out = handler.lambda_handler({"ticker": "AAPL", "features": [*features[:3], 2**1024 - 2**971, *features[4:]]}, None)
    assert out["status"] == 400 and out["code"] == "out_of_range" and "features[3] = 1.79769e+308" in out["error"], out
