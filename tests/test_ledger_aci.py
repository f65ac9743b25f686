"""The serving rule (ledger/aci.py): its clauses one by one, the plain interval recovered exactly, and a verdict
computed on the held-out series alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ledger import aci, calibration
from models import metrics


def record(ticker: str, n: int, seed: int, df_t: float = 4.0) -> pd.DataFrame:
    """A scored record whose model interval (q 1.1 x vol) under-covers heavy-tailed moves."""
    rng = np.random.default_rng(seed)
    last = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    mu, vol, q = rng.normal(0, 0.001, n), np.full(n, 0.01), 1.1
    close = last * np.exp(mu + rng.standard_t(df_t, n) * 0.01)
    return pd.DataFrame({
        "ticker": ticker, "target_date": pd.bdate_range("2012-01-02", periods=n).strftime("%Y-%m-%d"), "level": 0.8,
        "last_close": last, "prediction": last * np.exp(mu), "low": last * np.exp(mu - q * vol),
        "high": last * np.exp(mu + q * vol), "volatility": vol, "close": close,
        "plain_low": last * np.exp(mu - q * vol), "plain_high": last * np.exp(mu + q * vol),
        "rolling_low": last * np.exp(-1.4 * vol), "rolling_high": last * np.exp(1.4 * vol),
        "garch_low": last * np.exp(-1.35 * vol), "garch_high": last * np.exp(1.35 * vol),
    })  # fmt: skip


def test_the_plain_interval_and_scores_are_recovered_from_the_record():
    g = record("^IXIC", 300, 1)
    d = aci.prepare(g)
    assert d["q0"].to_numpy() == pytest.approx(1.1, rel=1e-9)
    f = aci.series_figures(g, "qt")
    rows = g.iloc[calibration.WARMUP :]
    rel = rows["close"] / rows["last_close"]
    covered = np.mean((rows["close"] >= rows["low"]) & (rows["close"] <= rows["high"]))
    assert f["n"] == 250 and f["coverage_plain"] == pytest.approx(covered)
    assert f["winkler_plain"] == pytest.approx(
        metrics.winkler(rel, rows["low"] / rows["last_close"], rows["high"] / rows["last_close"])
    )


BASE = {
    "n": 800,
    "coverage_calibrated": 0.80,
    "winkler_calibrated": 1.0,
    "winkler_plain": 1.0,
    "winkler_rolling": 1.1,
    "winkler_garch": 1.05,
}


@pytest.mark.parametrize(
    "change, failed",
    [
        ({}, []),
        ({"coverage_calibrated": 0.786}, []),  # 1.4 points off, long series
        ({"coverage_calibrated": 0.784}, ["coverage"]),  # 1.6 points off, long series
        ({"coverage_calibrated": 0.784, "n": 749}, []),  # a short series gets ± 2.5
        ({"coverage_calibrated": 0.774, "n": 749}, ["coverage"]),
        ({"winkler_calibrated": 1.0099}, []),  # 0.99% dearer than plain
        ({"winkler_calibrated": 1.0101}, ["vs_plain"]),
        ({"winkler_rolling": 1.0527}, []),  # 0.9499x rolling
        ({"winkler_rolling": 1.0520}, ["vs_baselines"]),  # 0.9506x rolling
        ({"winkler_rolling": 1.04}, ["vs_baselines"]),  # 0.96x rolling
        ({"winkler_garch": 0.999}, ["vs_baselines"]),  # worse than GARCH
    ],
)
def test_the_rule_clause_by_clause(change, failed):
    f = {**BASE, **change}
    got = aci.checks(f)
    assert [k for k, ok in got.items() if not ok] == failed


def test_the_verdict_is_computed_on_the_held_out_series_alone():
    held = record("^IXIC", 900, 5)
    test = pd.concat([record("AAPL", 400, 6), record("IBM", 300, 7)])
    before = aci.verdict(pd.concat([test, held]))
    worse = test.assign(close=test["close"] * np.exp(np.random.default_rng(8).normal(0, 0.05, len(test))))
    after = aci.verdict(pd.concat([worse, held]))
    assert after == before
    assert set(before["candidates"]["qt"]["series"]) == {"^IXIC"}
    moved = aci.verdict(pd.concat([test, held.assign(close=held["close"] * 1.01)]))
    assert moved != before  # the held-out figures do move it


def test_a_candidate_that_passes_is_served_and_none_when_none_does():
    held = record("^IXIC", 900, 5)
    v = aci.verdict(held)
    passing = [m for m, c in v["candidates"].items() if c["passes"]]
    assert v["serve"] in passing if passing else v["serve"] is None
    # a rolling baseline that knew every close (Winkler 0): the third clause fails for all, nothing is served
    sharp = held.assign(rolling_low=held["close"], rolling_high=held["close"])
    strict = aci.verdict(sharp)
    assert strict["serve"] is None and not any(c["passes"] for c in strict["candidates"].values())


def test_no_held_out_record_is_one_clear_error():
    with pytest.raises(ValueError, match="held-out series"):
        aci.verdict(record("AAPL", 100, 1))


def test_a_recorded_verdict_applies_to_its_model_version_only(tmp_path):
    p = tmp_path / "serving.json"
    p.write_text('{"model_version": "v1", "method": "qt"}')
    assert aci.served_method("v1", p) == "qt" and aci.served_method("v2", p) == "none"
    p.write_text("{broken")
    assert aci.served_method("v1", p) == "none"
