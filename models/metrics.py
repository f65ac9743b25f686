"""Forecast metrics, conformal calibration and the per-request confidence. Pure numpy, no I/O.

All of it is judged beside the naive forecast (tomorrow's close = today's): R² on price levels is
near 1 for the naive forecast too, so MASE (MAE / naive MAE) and directional accuracy carry the news.
"""

from __future__ import annotations

import math

import numpy as np

LEVEL = 0.8  # nominal coverage of the served prediction interval
VOL_FLOOR = 1e-4  # volatility20 below this (a flat series) is treated as this


def conformal_quantile(scores: np.ndarray, level: float = LEVEL) -> float:
    """Split-conformal quantile: the ceil((n+1)·level)-th smallest score, so that a new exchangeable
    point falls at or below it with probability ≥ level."""
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    n = len(scores)
    if n == 0:
        raise ValueError("conformal calibration needs at least one residual")
    k = min(n, math.ceil((n + 1) * level))
    return float(scores[k - 1])


def calibrate(y_ret: np.ndarray, pred_ret: np.ndarray, vol: np.ndarray, level: float = LEVEL) -> dict:
    """Locally adaptive split conformal on log returns: scores are |residual| / volatility20.
    `sigma` (std of the signed normalized residual) drives the confidence."""
    z = (np.asarray(y_ret) - np.asarray(pred_ret)) / np.maximum(np.asarray(vol), VOL_FLOOR)
    return {
        "method": "split conformal on |log-return residual| / volatility20, validation set",
        "level": level,
        "q": conformal_quantile(np.abs(z), level),
        "sigma": float(np.std(z)),
        "n": int(len(z)),
        "vol_floor": VOL_FLOOR,
    }


def interval(last_close, pred_ret, vol, q: float):
    """Price interval: last_close · exp(pred_ret ± q · vol)."""
    half = q * np.maximum(vol, VOL_FLOOR)
    return last_close * np.exp(pred_ret - half), last_close * np.exp(pred_ret + half)


def confidence(pred_ret, vol, sigma: float):
    """P(next close moves the predicted way) = Φ(|pred_ret| / (sigma · vol)), in [0.5, 1).
    0.5 means the model has no idea which way; it grows with the predicted move against its noise."""
    z = np.abs(pred_ret) / (sigma * np.maximum(vol, VOL_FLOOR))
    return 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))


def _erf(x):
    if np.ndim(x) == 0:
        return math.erf(float(x))
    return np.vectorize(math.erf, otypes=[float])(x)


def price_metrics(actual, pred, last, low=None, high=None, naive_mae: float | None = None) -> dict:
    """MAE, RMSE, MAPE (%), R² on price levels, R² on returns, MASE, directional accuracy, coverage."""
    actual, pred, last = (np.asarray(a, dtype=np.float64) for a in (actual, pred, last))
    err = pred - actual
    mae = float(np.mean(np.abs(err)))
    naive = float(np.mean(np.abs(last - actual))) if naive_mae is None else naive_mae
    ss_tot = float(np.sum((actual - actual.mean()) ** 2))
    true_ret, pred_ret = actual / last - 1.0, pred / last - 1.0
    ss_ret = float(np.sum((true_ret - true_ret.mean()) ** 2))
    moved = np.sign(pred - last)
    out = {
        "n": int(len(actual)),
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mape": float(np.mean(np.abs(err) / np.abs(actual)) * 100.0),
        "r2": 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan"),
        "r2_return": 1.0 - float(np.sum((pred_ret - true_ret) ** 2)) / ss_ret if ss_ret > 0 else float("nan"),
        "mase": mae / naive if naive > 0 else float("nan"),
        # the naive forecast never calls a direction: reported as None, not as a fake 50%
        "directional_accuracy": float(np.mean(moved == np.sign(actual - last))) if np.any(moved) else None,
    }
    if low is not None and high is not None:
        out["interval_coverage"] = float(np.mean((actual >= np.asarray(low)) & (actual <= np.asarray(high))))
        out["interval_mean_width_pct"] = float(np.mean((np.asarray(high) - np.asarray(low)) / last) * 100.0)
    return out


def pooled_metrics(actual, pred, last, low=None, high=None) -> dict:
    """Overall figures across tickers of very different price levels: computed on prices relative to
    the last close (so ^GSPC near 2,000 does not drown AAPL near 20); MASE against pooled naive."""
    actual, pred, last = (np.asarray(a, dtype=np.float64) for a in (actual, pred, last))
    rel = price_metrics(
        actual / last,
        pred / last,
        np.ones_like(last),
        None if low is None else np.asarray(low) / last,
        None if high is None else np.asarray(high) / last,
    )
    rel["mae_pct"] = rel.pop("mae") * 100.0
    rel["rmse_pct"] = rel.pop("rmse") * 100.0
    rel.pop("r2")  # R² of relative prices is R² of returns, already reported
    return rel
