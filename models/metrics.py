"""Forecast metrics, conformal calibration, the per-request confidence, and the risk baselines. Pure numpy, no I/O.

All of it is judged beside the naive forecast (tomorrow's close = today's): R² on price levels is
near 1 for the naive forecast too, so MASE (MAE / naive MAE) and directional accuracy carry the news.
Intervals are judged beside the textbook risk estimates (rolling 20-day volatility, EWMA, GARCH(1,1)) with
the Winkler interval score, CRPS, pinball losses and coverage, overall and per volatility tercile.
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


def calibrate(
    y_ret: np.ndarray, pred_ret: np.ndarray, vol: np.ndarray, level: float = LEVEL, scale_name: str = "volatility20"
) -> dict:
    """Locally adaptive split conformal on log returns: scores are |residual| / scale (a volatility forecast).
    `sigma` (std of the signed normalized residual) drives the confidence."""
    z = (np.asarray(y_ret) - np.asarray(pred_ret)) / np.maximum(np.asarray(vol), VOL_FLOOR)
    return {
        "method": f"split conformal on |log-return residual| / {scale_name}, validation set",
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


# --- interval and distribution scores ---------------------------------------------------------------------------

Z90 = 1.2815515655446004  # the standard normal's 0.9 quantile: an 80% central interval is ±Z90 sigma


def winkler(actual, low, high, level: float = LEVEL) -> float:
    """Mean Winkler interval score: width, plus 2/alpha times how far an actual falls outside. Lower is better.
    Give relative prices (actual / last close) so tickers of any price level add up."""
    actual, low, high = (np.asarray(a, dtype=np.float64) for a in (actual, low, high))
    alpha = 1.0 - level
    score = (high - low) + (2.0 / alpha) * (np.maximum(low - actual, 0.0) + np.maximum(actual - high, 0.0))
    return float(np.mean(score))


def pinball(actual, quantile, tau: float) -> float:
    """Mean pinball (quantile) loss of a `tau` quantile forecast."""
    diff = np.asarray(actual, dtype=np.float64) - np.asarray(quantile, dtype=np.float64)
    return float(np.mean(np.maximum(tau * diff, (tau - 1.0) * diff)))


def crps_gaussian(y, mu, sigma) -> float:
    """Mean CRPS of Normal(mu, sigma) forecasts (closed form, Gneiting and Raftery 2007). Lower is better."""
    y, mu, sigma = (np.asarray(a, dtype=np.float64) for a in (y, mu, sigma))
    z = (y - mu) / sigma
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)
    cdf = 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))
    return float(np.mean(sigma * (z * (2.0 * cdf - 1.0) + 2.0 * pdf - 1.0 / math.sqrt(math.pi))))


def tercile_edges(vol) -> tuple[float, float]:
    """Cut points splitting forecast-time volatility into calm, middle and stormy thirds."""
    lo, hi = np.quantile(np.asarray(vol, dtype=np.float64), [1 / 3, 2 / 3])
    return float(lo), float(hi)


def coverage_by_tercile(actual, low, high, vol, edges: tuple[float, float] | None = None) -> list[float]:
    """Coverage in each third of the volatility known when the forecast was made (calm, middle, stormy)."""
    actual, low, high, vol = (np.asarray(a, dtype=np.float64) for a in (actual, low, high, vol))
    lo, hi = edges or tercile_edges(vol)
    inside = (actual >= low) & (actual <= high)
    groups = [vol <= lo, (vol > lo) & (vol <= hi), vol > hi]
    return [float(np.mean(inside[g])) if g.any() else float("nan") for g in groups]


def risk_metrics(actual, last, mu, scale, q: float, vol_known, level: float = LEVEL, edges=None) -> dict:
    """Everything the served interval is judged by, for forecasts centred at log return `mu` with volatility
    `scale` and conformal quantile `q`: coverage (overall and per volatility tercile), Winkler score, CRPS and
    pinball losses, all on prices relative to the last close."""
    actual, last, mu, scale = (np.asarray(a, dtype=np.float64) for a in (actual, last, mu, scale))
    scale = np.maximum(scale, VOL_FLOOR)
    rel = actual / last
    low, high = np.exp(mu - q * scale), np.exp(mu + q * scale)
    sigma = q * scale / Z90  # the Normal whose 80% interval is the conformal one
    return {
        "n": int(len(actual)),
        "coverage": float(np.mean((rel >= low) & (rel <= high))),
        "coverage_by_vol_tercile": coverage_by_tercile(rel, low, high, vol_known, edges),
        "winkler": winkler(rel, low, high, level),
        "crps": crps_gaussian(np.log(rel), mu, sigma),
        "pinball_10": pinball(rel, low, 0.1),
        "pinball_50": pinball(rel, np.exp(mu), 0.5),
        "pinball_90": pinball(rel, high, 0.9),
        "mean_width_pct": float(np.mean(high - low) * 100.0),
    }


# --- risk baselines: each sees only the past -------------------------------------------------------------------


def ewma_volatility(returns, lam: float = 0.94, init_days: int = 20) -> np.ndarray:
    """RiskMetrics: out[t] = sigma_{t+1|t}, with sigma^2_{t+1|t} = lam sigma^2_{t|t-1} + (1 - lam) r_t^2, started at the
    variance of the first `init_days` returns. NaN where the start-up window is not yet complete."""
    r = np.asarray(returns, dtype=np.float64)
    out = np.full(len(r), np.nan)
    if len(r) < init_days:
        return out
    var = float(np.mean(r[:init_days] ** 2))
    for t in range(len(r)):
        var = lam * var + (1.0 - lam) * r[t] ** 2
        if t >= init_days - 1:
            out[t] = math.sqrt(var)
    return out


def garch_volatility(returns, omega: float, alpha: float, beta: float, init_var: float) -> np.ndarray:
    """GARCH(1,1) filtered forward with fixed parameters: out[t] = sigma_{t+1|t},
    sigma^2_{t+1|t} = omega + alpha r_t^2 + beta sigma^2_{t|t-1}, with sigma^2_{0|-1} = init_var."""
    r = np.asarray(returns, dtype=np.float64)
    out = np.empty(len(r))
    var = init_var
    for t in range(len(r)):
        var = omega + alpha * r[t] ** 2 + beta * var
        out[t] = math.sqrt(var)
    return out


def fit_garch(train_returns) -> dict:
    """GARCH(1,1) with zero mean, fitted with the `arch` package on training returns only (in percent, as arch
    prefers; omega is converted back to raw units)."""
    from arch import arch_model

    r = np.asarray(train_returns, dtype=np.float64) * 100.0
    res = arch_model(r, mean="Zero", vol="GARCH", p=1, q=1, dist="normal", rescale=False).fit(disp="off")
    p = res.params
    return {
        "omega": float(p["omega"]) / 1e4,
        "alpha": float(p["alpha[1]"]),
        "beta": float(p["beta[1]"]),
        "init_var": float(np.var(r / 100.0)),
    }
