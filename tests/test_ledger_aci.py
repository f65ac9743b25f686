"""Adaptive conformal inference: the update by hand, long-run coverage where the plain interval under-covers, and
the plain interval recovered exactly from the served one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ledger import aci
from models import metrics


def test_the_alpha_update_by_hand():
    # warm-up 2: the first two use the plain q (1.0); then q = the (1 - alpha_t) conformal quantile of the past scores
    scores = np.array([2.0, 0.5, 3.0, 0.1])
    q = aci.aci_q(scores, np.ones(4), level=0.8, gamma=0.1, window=10, warmup=2)
    # t0: q 1.0, 2.0 misses -> alpha 0.2 + 0.1 (0.2 - 1) = 0.12; t1: q 1.0, covered -> alpha 0.12 + 0.02 = 0.14
    # t2: quantile at 0.86 of [2.0, 0.5]: ceil(3 x 0.86) = 3 > 2 -> the largest, 2.0; 3.0 misses -> alpha 0.06
    # t3: quantile at 0.94 of [2.0, 0.5, 3.0]: ceil(4 x 0.94) = 4 > 3 -> 3.0
    assert q.tolist() == [1.0, 1.0, 2.0, 3.0]
    assert q[2] == metrics.conformal_quantile([2.0, 0.5], 0.86)


def test_aci_restores_long_run_coverage_where_the_plain_interval_under_covers():
    rng = np.random.default_rng(7)
    scores = np.abs(rng.standard_t(4, size=6000))
    q_plain = np.full(len(scores), metrics.conformal_quantile(np.abs(rng.normal(size=5000)), 0.8))  # too narrow for t(4)
    q = aci.aci_q(scores, q_plain, level=0.8)
    plain, adaptive = np.mean(scores <= q_plain), np.mean(scores[1000:] <= q[1000:])
    assert plain < 0.77 and abs(adaptive - 0.8) < 0.015


def test_compare_recovers_the_served_interval(tmp_path):
    rng = np.random.default_rng(1)
    n = 300
    last = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    mu, vol, q = rng.normal(0, 0.001, n), np.full(n, 0.01), 1.1
    close = last * np.exp(rng.normal(0, 0.012, n))
    frame = pd.DataFrame({
        "ticker": "AAPL", "target_date": pd.bdate_range("2012-01-02", periods=n).strftime("%Y-%m-%d"), "level": 0.8,
        "last_close": last, "prediction": last * np.exp(mu), "low": last * np.exp(mu - q * vol),
        "high": last * np.exp(mu + q * vol), "volatility": vol, "close": close, "vol20": rng.uniform(0.005, 0.02, n),
    })  # fmt: skip
    out = aci.compare(frame)
    covered = np.mean((close >= frame["low"]) & (close <= frame["high"]))
    assert out["plain"]["coverage"] == pytest.approx(covered)
    assert out["plain"]["winkler"] == pytest.approx(metrics.winkler(close / last, frame["low"] / last, frame["high"] / last))
    assert out["n"] == n and len(out["aci"]["coverage_by_vol_tercile"]) == 3


@pytest.mark.parametrize(
    "aci_cov, aci_w, win",
    [(0.80, 0.99, True), (0.80, 1.01, False), (0.70, 0.90, False)],
)
def test_aci_is_served_only_when_it_wins(aci_cov, aci_w, win):
    result = {"plain": {"coverage": 0.76, "winkler": 1.0}, "aci": {"coverage": aci_cov, "winkler": aci_w}}
    assert aci.wins(result) is win
