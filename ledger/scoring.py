"""Scores, scorecards and alarms, derived from forecasts joined with outcomes. Pure: numpy and pandas, no I/O.

Every interval score comes from models.metrics, the functions models/evaluate.py uses, on prices relative to the
last close (so ^GSPC near 2,000 and AAPL near 20 add up). The baselines are intervals frozen beside each forecast
(naive point, rolling 20-day or GARCH(1,1) volatility, the same level, the same data), so all three are judged on
the same days.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from models import metrics

COVERAGE_BAND = (0.70, 0.90)  # rolling coverage of the 80% interval outside this raises the coverage alarm
ROLLING_DAYS = 60  # the rolling window of the coverage and Winkler-ratio alarms
WINKLER_RUN_DAYS = 20  # the Winkler ratio against rolling volatility above 1 this many scored days running
KUPIEC_SIZE = 0.05  # the Kupiec test's significance level
INTERVALS = {
    "served": ("low", "high"),
    "plain": ("plain_low", "plain_high"),  # the model's own band, whatever calibration served
    "rolling": ("rolling_low", "rolling_high"),
    "garch": ("garch_low", "garch_high"),
}


def _winkler_rows(rel, low, high, level) -> np.ndarray:
    """Each row's Winkler score, through metrics.winkler (its mean over rows is the group's score)."""
    return np.array([metrics.winkler([a], [lo], [hi], lev) for a, lo, hi, lev in zip(rel, low, high, level, strict=True)])


def score_rows(joined: pd.DataFrame) -> pd.DataFrame:
    """Per forecast: absolute error and the naive one, coverage, Winkler of the served and baseline intervals, direction."""
    df = joined.sort_values(["ticker", "model_version", "target_date"]).reset_index(drop=True)
    last, close = df["last_close"].to_numpy(float), df["close"].to_numpy(float)
    rel = close / last
    out = df.copy()
    out["abs_error"] = np.abs(df["prediction"].to_numpy(float) - close)
    out["naive_abs_error"] = np.abs(last - close)
    for name, (lo, hi) in INTERVALS.items():
        if lo not in df:  # a frame from before schema v2 (or a hand-built one) has no plain band
            continue
        low, high = df[lo].to_numpy(float), df[hi].to_numpy(float)
        suffix = "" if name == "served" else f"_{name}"
        out[f"covered{suffix}"] = (close >= low) & (close <= high)
        out[f"winkler{suffix}"] = _winkler_rows(rel, low / last, high / last, df["level"].to_numpy(float))
    called = np.sign(df["prediction"].to_numpy(float) - last)
    # a forecast of exactly no change calls no direction: NaN, not a miss
    out["direction_hit"] = np.where(called == 0, np.nan, (called == np.sign(close - last)).astype(float))
    return out


def _group_card(g: pd.DataFrame) -> dict:
    naive = float(g["naive_abs_error"].sum())
    w = {
        name: metrics.winkler(
            g["close"] / g["last_close"], g[lo] / g["last_close"], g[hi] / g["last_close"], float(g["level"].iloc[0])
        )
        for name, (lo, hi) in INTERVALS.items()
        if lo in g
    }
    hits = g["direction_hit"].dropna()
    return {
        "n": int(len(g)),
        "from": str(g["target_date"].iloc[0]),
        "to": str(g["target_date"].iloc[-1]),
        "coverage": float(g["covered"].mean()),
        "mase": float(g["abs_error"].sum()) / naive if naive > 0 else None,
        "mae": float(g["abs_error"].mean()),
        "naive_mae": float(g["naive_abs_error"].mean()),
        "winkler": w["served"],
        "winkler_rolling": w["rolling"],
        "winkler_garch": w["garch"],
        "winkler_vs_rolling": w["served"] / w["rolling"],
        "winkler_vs_garch": w["served"] / w["garch"],
        "coverage_plain": float(g["covered_plain"].mean()) if "covered_plain" in g else None,
        "winkler_plain": w.get("plain"),
        "coverage_rolling": float(g["covered_rolling"].mean()),
        "coverage_garch": float(g["covered_garch"].mean()),
        "direction_hit": float(hits.mean()) if len(hits) else None,
    }


def scorecard(scored: pd.DataFrame) -> list[dict]:
    """One row per ticker and model version: n scored forecasts, coverage, MASE (sum |pred - close| over
    sum |last_close - close| on the same rows), Winkler against both baselines, direction hits."""
    cards = []
    for (ticker, version), g in scored.groupby(["ticker", "model_version"], sort=True):
        cards.append({"ticker": ticker, "model_version": version, **_group_card(g)})
    return cards


# --- alarms -------------------------------------------------------------------------------------------------------


def kupiec(n: int, breaches: int, level: float = metrics.LEVEL) -> tuple[float, float]:
    """Kupiec's proportion-of-failures test: (likelihood ratio, p-value) of `breaches` in `n` against the
    nominal breach rate 1 - level; the LR is chi-squared with one degree of freedom under a calibrated interval."""
    if n == 0:
        return 0.0, 1.0
    p, x = 1.0 - level, breaches
    phat = x / n

    def loglik(rate: float) -> float:
        # 0 · log 0 = 0: an interval never (or always) breached is a limit, not an error
        return (n - x) * (math.log(1.0 - rate) if x < n else 0.0) + (x * math.log(rate) if x > 0 else 0.0)

    lr = max(0.0, -2.0 * (loglik(p) - loglik(phat)))
    return lr, math.erfc(math.sqrt(lr / 2.0))  # chi-squared(1) survival function


def rolling_series(scored: pd.DataFrame, days: int = ROLLING_DAYS) -> pd.DataFrame:
    """Per ticker and model version, day by day: rolling coverage, rolling Winkler ratio against rolling volatility,
    cumulative Winkler of each interval and cumulative MASE (NaN until `days` forecasts are scored)."""
    parts = []
    for _, g in scored.groupby(["ticker", "model_version"], sort=True):
        g = g.sort_values("target_date").copy()
        g["coverage_rolling60"] = g["covered"].astype(float).rolling(days).mean()
        if "covered_plain" in g:
            g["coverage_plain_rolling60"] = g["covered_plain"].astype(float).rolling(days).mean()
        g["winkler_ratio_rolling60"] = g["winkler"].rolling(days).mean() / g["winkler_rolling"].rolling(days).mean()
        n = np.arange(1, len(g) + 1)
        for col in ("winkler", "winkler_plain", "winkler_rolling", "winkler_garch"):
            if col not in g:
                continue
            g[f"cum_{col}"] = g[col].cumsum() / n
        g["cum_mase"] = g["abs_error"].cumsum() / g["naive_abs_error"].cumsum()
        parts.append(g)
    return pd.concat(parts, ignore_index=True) if parts else scored.assign(coverage_rolling60=[])


def _run_above_one(ratio: pd.Series) -> int:
    """How many of the latest days in a row the ratio stayed above 1."""
    run = 0
    for v in ratio.to_numpy()[::-1]:
        if not (v > 1.0):
            break
        run += 1
    return run


def alarms(scored: pd.DataFrame, days: int = ROLLING_DAYS, run_days: int = WINKLER_RUN_DAYS) -> list[dict]:
    """The three alarms per ticker and model version, on its latest scored day. None where too few days are scored."""
    out = []
    series = rolling_series(scored, days)
    for (ticker, version), g in series.groupby(["ticker", "model_version"], sort=True):
        cov = g["coverage_rolling60"].iloc[-1]
        breaches = int((~g["covered"].astype(bool)).sum())
        lr, p = kupiec(len(g), breaches, float(g["level"].iloc[0]))
        run = _run_above_one(g["winkler_ratio_rolling60"])
        ratio = g["winkler_ratio_rolling60"].iloc[-1]
        out.append(
            {
                "ticker": ticker,
                "model_version": version,
                "as_of": str(g["target_date"].iloc[-1]),
                "coverage_60": None if np.isnan(cov) else float(cov),
                "coverage_alarm": bool(not np.isnan(cov) and not (COVERAGE_BAND[0] <= cov <= COVERAGE_BAND[1])),
                "kupiec_n": int(len(g)),
                "kupiec_breaches": breaches,
                "kupiec_lr": lr,
                "kupiec_p": p,
                "kupiec_alarm": bool(p < KUPIEC_SIZE),
                "winkler_ratio_60": None if np.isnan(ratio) else float(ratio),
                "winkler_days_above_1": run,
                "winkler_alarm": run >= run_days,
            }
        )
    return out


def calibration_rows(scored: pd.DataFrame, warmup: int) -> list[dict]:
    """Per ticker and model version, after its first `warmup` forecasts (the calibrator's warm-up): the served
    interval's coverage and Winkler beside the model's own, and Kupiec's p for each."""
    out = []
    for (ticker, version), g in scored.groupby(["ticker", "model_version"], sort=True):
        g = g.sort_values("target_date").iloc[warmup:]
        if not len(g):
            continue
        level = float(g["level"].iloc[0])
        row = {"ticker": ticker, "model_version": version, "n": int(len(g))}
        for name, col in (("served", "covered"), ("plain", "covered_plain")):
            covered = g[col].astype(bool)
            row[f"coverage_{name}"] = float(covered.mean())
            row[f"kupiec_p_{name}"] = kupiec(len(g), int((~covered).sum()), level)[1]
        row["winkler_served_vs_plain"] = float(g["winkler"].mean() / g["winkler_plain"].mean())
        out.append(row)
    return out
