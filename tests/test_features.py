"""Features against numbers worked out by hand, no look-ahead, and the window's shape and order."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.features import FEATURES, WARMUP, WINDOW, feature_frame, rsi, window


def geometric_ohlcv(n: int = 120, growth: float = 1.01) -> pd.DataFrame:
    """Close grows 1% a day; O = C / 1.005, H = 1.02 C, L = 0.99 C, constant volume."""
    close = 100.0 * growth ** np.arange(n)
    idx = pd.bdate_range("2020-01-01", periods=n)
    return pd.DataFrame(
        {"Open": close / 1.005, "High": close * 1.02, "Low": close * 0.99, "Close": close, "Volume": 1000.0}, index=idx
    )


@pytest.mark.parametrize(
    "closes, period, expected",
    [
        # diffs +1 +1: first average gain 1, loss 0 -> 100
        ([1, 2, 3], 2, [None, None, 100.0]),
        # then -1: avg_g = (1*1 + 0)/2 = 0.5, avg_l = (0*1 + 1)/2 = 0.5 -> RS 1 -> 50
        ([1, 2, 3, 2], 2, [None, None, 100.0, 50.0]),
        # diffs +2 -1: avg_g 1, avg_l 0.5 -> RS 2 -> 100 - 100/3
        ([5, 7, 6], 2, [None, None, 100 - 100 / 3]),
        # all losses -> 0
        ([9, 8, 7, 6], 2, [None, None, 0.0, 0.0]),
    ],
)
def test_rsi_by_hand(closes, period, expected):
    got = rsi(pd.Series(closes, dtype=float), period).tolist()
    for g, e in zip(got, expected, strict=True):
        assert math.isnan(g) if e is None else g == pytest.approx(e)


def test_features_by_hand_on_geometric_growth():
    f = feature_frame(geometric_ohlcv())
    row = f.iloc[-1]
    c = 100.0 * 1.01**119
    sma10 = sum(100.0 * 1.01 ** (119 - k) for k in range(10)) / 10
    sma50 = sum(100.0 * 1.01 ** (119 - k) for k in range(50)) / 50
    expected = {
        "close": c,
        "log_return": math.log(1.01),
        "range_hl": 0.03,  # (1.02 - 0.99) C / C
        "body_oc": math.log(1.005),  # ln(C / (C / 1.005))
        "volume_ratio20": 0.0,  # constant volume
        "sma10_gap": c / sma10 - 1,
        "sma50_gap": c / sma50 - 1,
        "rsi14": 1.0,  # only gains
        "volatility20": 0.0,  # identical returns
        "momentum20": 20 * math.log(1.01),
    }
    assert list(f.columns) == list(FEATURES)
    for name, value in expected.items():
        assert row[name] == pytest.approx(value, abs=1e-9), name


def test_features_by_hand_on_a_short_series():
    idx = pd.bdate_range("2021-03-01", periods=3)
    df = pd.DataFrame(
        {"Open": [10, 10, 12], "High": [11, 12, 13], "Low": [9, 9.5, 11], "Close": [10, 11, 12.5], "Volume": [100, 200, 300]},
        index=idx,
        dtype=float,
    )
    f = feature_frame(
        pd.concat([geometric_ohlcv(WARMUP)[: WARMUP - 3].set_axis(pd.bdate_range("2020-12-01", periods=WARMUP - 3)), df])
    )
    last = f.iloc[-1]
    assert last["log_return"] == pytest.approx(math.log(12.5 / 11))
    assert last["range_hl"] == pytest.approx((13 - 11) / 12.5)
    assert last["body_oc"] == pytest.approx(math.log(12.5 / 12))


def test_warmup_rows_are_dropped():
    f = feature_frame(geometric_ohlcv(WARMUP + 5))
    assert len(f) == 6 and not f.isna().any().any()


@pytest.mark.parametrize("t", [80, 500, 1700, 3000])
def test_no_look_ahead(aapl, t):
    """Changing every bar after day t changes no feature of any day up to t."""
    before = feature_frame(aapl)
    changed = aapl.copy()
    rng = np.random.default_rng(t)
    tail = changed.index[t + 1 :]
    factor = rng.uniform(0.5, 2.0, size=len(tail))
    for col in ("Open", "High", "Low", "Close"):
        changed.loc[tail, col] = changed.loc[tail, col] * factor
    changed.loc[tail, "Volume"] = rng.integers(1, 10**8, size=len(tail))
    after = feature_frame(changed)
    cutoff = aapl.index[t]
    pd.testing.assert_frame_equal(before[before.index <= cutoff], after[after.index <= cutoff])
    assert not before[before.index > cutoff].equals(after[after.index > cutoff])


def test_window_shape_and_order(aapl):
    f = feature_frame(aapl)
    identity = {"features": list(FEATURES), "mean": [0.0] * 10, "scale": [1.0] * 10}
    w = window(aapl, identity)
    assert w.shape == (WINDOW * len(FEATURES),)
    days = w.reshape(WINDOW, len(FEATURES))
    np.testing.assert_allclose(days[-1], f.iloc[-1].to_numpy())  # newest day last
    np.testing.assert_allclose(days[0], f.iloc[-WINDOW].to_numpy())  # oldest first
    assert w[1 * 10 + 0] == pytest.approx(f["close"].iloc[-WINDOW + 1])  # day-major: features[d*10 + f]


def test_window_standardizes_and_honours_end(aapl, manifest):
    end = "2010-06-30"
    w = window(aapl, manifest["scaler"], end=end)
    f = feature_frame(aapl)
    f = f[f.index <= end]
    raw = f.to_numpy()[-WINDOW:]
    np.testing.assert_allclose(w.reshape(WINDOW, -1), (raw - manifest["scaler"]["mean"]) / manifest["scaler"]["scale"])


def test_window_errors_name_the_problem(aapl, manifest):
    with pytest.raises(ValueError, match="need 60 days"):
        window(aapl.iloc[:80], manifest["scaler"])
    with pytest.raises(ValueError, match="lacks columns"):
        feature_frame(aapl.drop(columns="Volume"))
    bad = dict(manifest["scaler"], features=list(reversed(FEATURES)))
    with pytest.raises(ValueError, match="differ"):
        window(aapl, bad)
