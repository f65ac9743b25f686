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
    # a flat series' zero volatility counts as VOL_FLOOR = 1e-4: half-width 2 x 1e-4, not an empty interval
    low, high = metrics.interval(100.0, 0.01, 0.0, 2.0)
    assert low == pytest.approx(100 * math.exp(0.0098), rel=1e-12) and high == pytest.approx(100 * math.exp(0.0102), rel=1e-12)


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
    """Our forward filter with fit_garch's parameters (omega converted from arch's percent units) reproduces the
    conditional volatility of arch's own fit: a wrong unit conversion of omega shows here."""
    from arch import arch_model

    rng = np.random.default_rng(3)
    r = rng.standard_t(5, size=600) * 0.01
    g = metrics.fit_garch(r)
    ours = metrics.garch_volatility(r, g["omega"], g["alpha"], g["beta"], g["init_var"])
    res = arch_model(r * 100, mean="Zero", vol="GARCH", p=1, q=1, dist="normal", rescale=False).fit(disp="off")
    theirs = np.asarray(res.conditional_volatility) / 100  # sigma_t|t-1: ours is shifted by one day
    np.testing.assert_allclose(ours[300:-1], theirs[301:], rtol=1e-6)


def test_risk_metrics_of_a_known_gaussian():
    rng = np.random.default_rng(7)
    ret = rng.normal(0, 0.01, size=20000)
    last = np.full_like(ret, 100.0)
    m = metrics.risk_metrics(last * np.exp(ret), last, np.zeros_like(ret), np.full_like(ret, 0.01), metrics.Z90, np.abs(ret))
    assert m["coverage"] == pytest.approx(0.8, abs=0.01)
    assert m["crps"] == pytest.approx(0.01 / np.sqrt(np.pi), rel=0.03)  # E CRPS(F, y ~ F) = E|X - X'| / 2 = 1/sqrt(pi)


# --- cases that tell a planted bug from the real thing (tests/mutations/metrics.yaml) ---------------------------


def test_conformal_rank_is_n_plus_one():
    # n = 10, level 0.8: k = ceil(11 x 0.8) = ceil(8.8) = 9 -> 9; ceil(n x level) = 8 would give 8
    assert metrics.conformal_quantile(np.arange(1.0, 11.0), 0.8) == 9.0
    # n = 4, level 0.5: k = ceil(5 x 0.5) = 3 -> the 3rd smallest, 30; ceil(4 x 0.5) = 2 would give 20
    assert metrics.conformal_quantile([40.0, 10.0, 30.0, 20.0], 0.5) == 30.0
    # n = 19, level 0.9: k = ceil(20 x 0.9) = 18 -> 18; ceil(17.1) = 18 too, and k - 1 would give 17
    assert metrics.conformal_quantile(np.arange(19.0, 0.0, -1.0), 0.9) == 18.0


def test_calibrate_by_hand_sigma_is_the_std_of_the_signed_residual():
    """sigma drives every served confidence: it is the std of z = (y - pred) / vol with its sign, not of |z|."""
    y = np.array([0.02, -0.01, 0.0, -0.03])
    cal = metrics.calibrate(y, np.zeros(4), np.full(4, 0.01), level=0.5)
    # z = [2, -1, 0, -3]: mean -0.5, squared deviations 6.25 + 0.25 + 0.25 + 6.25 = 13 -> sigma = sqrt(13 / 4)
    # (std(|z|) = sqrt(5 / 4) = 1.118 would be wrong)
    assert cal["sigma"] == pytest.approx(math.sqrt(3.25), rel=1e-12)
    # |z| sorted = [0, 1, 2, 3], n = 4, level 0.5: k = ceil(2.5) = 3 -> q = 2
    assert cal["q"] == pytest.approx(2.0) and cal["n"] == 4 and cal["level"] == 0.5
    # the served confidence for a +1% predicted move at 1% volatility: Phi(0.01 / (sigma x 0.01)) = Phi(0.554700)
    assert metrics.confidence(0.01, 0.01, cal["sigma"]) == pytest.approx(0.710450, abs=1e-6)


def test_calibrate_residual_is_against_the_prediction_and_floors_the_scale():
    # residuals y - pred = [0.01, -0.01] over vol 0.01 -> z = [1, -1]: sigma = 1, q = 1 (n = 2, k = ceil(3 x 0.5) = 2)
    cal = metrics.calibrate([0.03, 0.01], [0.02, 0.02], [0.01, 0.01], level=0.5)
    assert cal["sigma"] == pytest.approx(1.0) and cal["q"] == pytest.approx(1.0)
    # a zero volatility counts as VOL_FLOOR (1e-4): z = 1e-4 / 1e-4 = 1, not an infinity
    cal = metrics.calibrate([1e-4], [0.0], [0.0], level=0.5)
    assert cal["q"] == pytest.approx(1.0) and cal["vol_floor"] == metrics.VOL_FLOOR


def test_z90_is_the_normals_0_9_quantile():
    from statistics import NormalDist

    assert metrics.Z90 == pytest.approx(NormalDist().inv_cdf(0.9), abs=1e-12)


def test_risk_metrics_by_hand_with_q_not_z90():
    """With q = 2 x Z90 the Normal matching the conformal interval has sigma = q x scale / Z90 = 2 x scale; passing
    q = Z90 would hide a missing conversion (sigma = scale) because the two are then equal."""
    scale, q = 0.01, 2 * metrics.Z90
    last = np.array([100.0, 100.0, 100.0])
    actual = np.array([100.0, 100.0 * math.exp(0.03), 100.0 * math.exp(-0.01)])  # log returns 0, +0.03, -0.01
    m = metrics.risk_metrics(actual, last, np.zeros(3), np.full(3, scale), q, [1.0, 2.0, 3.0])
    half = q * scale  # 0.025631: the interval is exp(±half)
    low, high = math.exp(-half), math.exp(half)
    rel = [1.0, math.exp(0.03), math.exp(-0.01)]
    assert m["coverage"] == pytest.approx(2 / 3)  # +3% lies above exp(0.0256)
    # CRPS of N(0, 0.02): scale-equivariance of the standard case (2 phi(0) - 1/sqrt(pi) = 0.2336949) and z = 0, 1.5, -0.5
    sd = 2 * scale
    expect_crps = np.mean([sd * metrics.crps_gaussian([z], [0.0], [1.0]) for z in (0.0, 0.03 / sd, -0.01 / sd)])
    assert m["crps"] == pytest.approx(expect_crps, rel=1e-9)
    # CRPS(N(0,1), z) = z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi): z = 1.5 -> 1.2995784 + 0.2590352 - 0.5641896 = 0.9944240;
    # z = -0.5 -> 0.1914625 + 0.7041307 - 0.5641896 = 0.3314036 (sigma = scale would double every z)
    assert m["crps"] / sd == pytest.approx((0.2336949 + 0.9944240 + 0.3314036) / 3, abs=1e-6)
    # pinball at tau 0.1 of the low end: each actual above low costs 0.1 x (rel - low), one below costs 0.9 x (low - rel)
    p10 = np.mean([0.1 * (r - low) if r >= low else 0.9 * (low - r) for r in rel])
    p90 = np.mean([0.9 * (r - high) if r >= high else 0.1 * (high - r) for r in rel])
    p50 = np.mean([0.5 * abs(r - 1.0) for r in rel])
    assert (m["pinball_10"], m["pinball_90"], m["pinball_50"]) == pytest.approx((p10, p90, p50), rel=1e-12)
    assert m["mean_width_pct"] == pytest.approx((high - low) * 100.0)
    # Winkler: width, plus 10 x how far +3% lies above high
    assert m["winkler"] == pytest.approx((3 * (high - low) + 10 * (rel[1] - high)) / 3)


def test_pinball_distinguishes_tau_from_one_minus_tau():
    # quantile 1.0 and actuals 1.2 (above) and 0.7 (below): tau 0.1 costs 0.1 x 0.2 and 0.9 x 0.3 -> mean 0.145;
    # tau 0.9 would cost 0.9 x 0.2 and 0.1 x 0.3 -> 0.105
    assert metrics.pinball([1.2, 0.7], [1.0, 1.0], 0.1) == pytest.approx(0.145)
