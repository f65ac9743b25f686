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
