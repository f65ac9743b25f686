"""Metrics, conformal calibration and confidence against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models import metrics


def test_conformal_quantile_by_hand():
    # n = 9, level 0.8: k = ceil(10 * 0.8) = 8 -> the 8th smallest
    assert metrics.conformal_quantile(np.arange(9, 0, -1), 0.8) == 8
    # n = 3, level 0.8: k = ceil(3.2) = 4 > n -> the largest
    assert metrics.conformal_quantile([0.1, 0.3, 0.2], 0.8) == 0.3
    with pytest.raises(ValueError):
        metrics.conformal_quantile([], 0.8)


def test_price_metrics_by_hand():
    last = np.array([100.0, 100.0, 100.0, 100.0])
    actual = np.array([101.0, 99.0, 102.0, 100.0])
    pred = np.array([100.5, 99.0, 101.0, 101.0])
    m = metrics.price_metrics(actual, pred, last, low=pred - 1, high=pred + 1)
    assert m["mae"] == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    assert m["rmse"] == pytest.approx(math.sqrt((0.25 + 0 + 1 + 1) / 4))
    # naive errors 1, 1, 2, 0 -> naive MAE 1
    assert m["mase"] == pytest.approx(0.625)
    # directions: up/up, flat(pred 99<100 -> down)/down, up/up, up/flat -> 3 of 4
    assert m["directional_accuracy"] == pytest.approx(0.75)
    assert m["interval_coverage"] == pytest.approx(1.0)


def test_naive_forecast_has_mase_one_and_no_direction():
    last = np.array([10.0, 11.0, 12.0])
    actual = np.array([11.0, 12.0, 11.5])
    m = metrics.price_metrics(actual, last, last)
    assert m["mase"] == 1.0 and m["directional_accuracy"] is None


def test_confidence_by_hand():
    assert metrics.confidence(0.0, 0.02, 1.0) == pytest.approx(0.5)
    # |r| / (sigma vol) = 0.02 / (1 * 0.02) = 1 -> Phi(1) = 0.8413
    assert metrics.confidence(0.02, 0.02, 1.0) == pytest.approx(0.841345, abs=1e-6)
    assert metrics.confidence(-0.02, 0.02, 1.0) == pytest.approx(0.841345, abs=1e-6)


def test_interval_by_hand():
    low, high = metrics.interval(100.0, 0.0, 0.01, 1.5)
    assert low == pytest.approx(100 * math.exp(-0.015)) and high == pytest.approx(100 * math.exp(0.015))


def test_calibrate_covers_its_own_data_at_the_level():
    rng = np.random.default_rng(1)
    y = rng.normal(0, 0.01, 5000)
    vol = np.full(5000, 0.01)
    cal = metrics.calibrate(y, np.zeros(5000), vol, 0.8)
    assert cal["q"] == pytest.approx(1.2816, abs=0.05)  # N(0,1)'s 0.9 quantile
    assert np.mean(np.abs(y) / vol <= cal["q"]) >= 0.8


# --- interval scores and risk baselines, worked by hand ------------------------------------------------------


def test_winkler_by_hand():
    # inside: the width 0.2; below by 0.1: 0.2 + (2 / 0.2) x 0.1 = 1.2; above by 0.05: 0.2 + 10 x 0.05 = 0.7
    assert metrics.winkler([1.0, 0.8, 1.15], [0.9, 0.9, 0.9], [1.1, 1.1, 1.1]) == pytest.approx((0.2 + 1.2 + 0.7) / 3)


def test_pinball_by_hand():
    # tau 0.9, quantile 1.0: actual 1.2 costs 0.9 x 0.2 = 0.18; actual 0.5 costs 0.1 x 0.5 = 0.05
    assert metrics.pinball([1.2, 0.5], [1.0, 1.0], 0.9) == pytest.approx((0.18 + 0.05) / 2)


def test_crps_gaussian_by_hand():
    # CRPS(N(0, 1), 0) = 2 phi(0) - 1 / sqrt(pi) = 0.797885 - 0.564190
    assert metrics.crps_gaussian([0.0], [0.0], [1.0]) == pytest.approx(0.2336949, abs=1e-6)
    # scale-equivariant: CRPS(N(0, s), s x y) = s x CRPS(N(0, 1), y)
    assert metrics.crps_gaussian([0.3], [0.0], [0.1]) == pytest.approx(0.1 * metrics.crps_gaussian([3.0], [0.0], [1.0]))


def test_coverage_by_tercile_by_hand():
    vol = [1, 2, 3, 4, 5, 6]
    inside_low, inside_high = [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]
    actual = [0.5, 2, 0.5, 0.5, 0.5, 2]  # calm: 1 of 2 inside; middle: 2 of 2; stormy: 1 of 2
    assert metrics.coverage_by_tercile(actual, inside_low, inside_high, vol) == pytest.approx([0.5, 1.0, 0.5])


def test_ewma_by_hand():
    r = np.array([0.01, -0.01, 0.02])
    # start: mean of the first 2 squares = 1e-4; then 0.94 x 1e-4 + 0.06 x r_t^2, step by step
    v0 = 0.94 * 1e-4 + 0.06 * 1e-4
    v1 = 0.94 * v0 + 0.06 * 1e-4
    v2 = 0.94 * v1 + 0.06 * 4e-4
    out = metrics.ewma_volatility(r, init_days=2)
    assert np.isnan(out[0]) and out[1:] == pytest.approx(np.sqrt([v1, v2]))


def test_garch_filter_by_hand():
    r = np.array([0.02, -0.01])
    # sigma^2_1 = w + a r_0^2 + b s0, sigma^2_2 = w + a r_1^2 + b sigma^2_1
    w, a, b, s0 = 1e-6, 0.1, 0.85, 1e-4
    v1 = w + a * 4e-4 + b * s0
    v2 = w + a * 1e-4 + b * v1
    assert metrics.garch_volatility(r, w, a, b, s0) == pytest.approx(np.sqrt([v1, v2]))


def test_garch_filter_agrees_with_arch():
    """Our forward filter with arch's fitted parameters reproduces arch's own conditional volatility."""
    from arch import arch_model

    rng = np.random.default_rng(3)
    r = rng.standard_t(5, size=800) * 0.01
    g = metrics.fit_garch(r[:600])
    ours = metrics.garch_volatility(r, g["omega"], g["alpha"], g["beta"], g["init_var"])
    fixed = arch_model(r * 100, mean="Zero", vol="GARCH", p=1, q=1, rescale=False).fix([g["omega"] * 1e4, g["alpha"], g["beta"]])
    theirs = np.asarray(fixed.conditional_volatility) / 100  # sigma_t|t-1: ours is shifted by one day
    np.testing.assert_allclose(ours[300:-1], theirs[301:], rtol=1e-6)


def test_risk_metrics_of_a_known_gaussian():
    rng = np.random.default_rng(7)
    ret = rng.normal(0, 0.01, size=20000)
    last = np.full_like(ret, 100.0)
    m = metrics.risk_metrics(last * np.exp(ret), last, np.zeros_like(ret), np.full_like(ret, 0.01), metrics.Z90, np.abs(ret))
    assert m["coverage"] == pytest.approx(0.8, abs=0.01)
    assert m["crps"] == pytest.approx(0.01 / np.sqrt(np.pi), rel=0.03)  # E CRPS(F, y ~ F) = E|X - X'| / 2 = 1/sqrt(pi)
