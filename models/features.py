"""The ten daily features and the 60-day model window. Pure functions: no I/O, no torch.

Every feature of day t uses data up to and including day t only (tests/test_features.py proves it).
Feature 0 is the day's Close, so a window carries its own price level: the function recovers the last
close from the request and answers in price units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

WINDOW = 60  # trading days in one model input
FEATURES = (
    "close",  # Close, price units
    "log_return",  # ln(C_t / C_{t-1})
    "range_hl",  # (H_t - L_t) / C_t
    "body_oc",  # ln(C_t / O_t)
    "volume_ratio20",  # ln((V_t + 1) / mean(V_{t-19..t} + 1))
    "sma10_gap",  # C_t / SMA10_t - 1
    "sma50_gap",  # C_t / SMA50_t - 1
    "rsi14",  # Wilder's RSI(14) / 100
    "volatility20",  # sample std of log_return over t-19..t
    "momentum20",  # ln(C_t / C_{t-20})
)
CLOSE = FEATURES.index("close")
VOLATILITY = FEATURES.index("volatility20")
WARMUP = 50  # rows before the first complete feature row (SMA50 needs 50 closes)


def rsi(close: pd.Series, period: int = 14) -> pd.Series:
    """Wilder's RSI in [0, 100]: the first average is a simple mean of `period` changes, then
    avg_t = (avg_{t-1} * (period - 1) + x_t) / period. NaN until `period` changes exist."""
    delta = close.diff().to_numpy()
    gain = np.where(delta > 0, delta, 0.0)
    loss = np.where(delta < 0, -delta, 0.0)
    out = np.full(len(close), np.nan)
    if len(close) <= period:
        return pd.Series(out, index=close.index)
    avg_g = gain[1 : period + 1].mean()
    avg_l = loss[1 : period + 1].mean()
    for t in range(period, len(close)):
        if t > period:
            avg_g = (avg_g * (period - 1) + gain[t]) / period
            avg_l = (avg_l * (period - 1) + loss[t]) / period
        out[t] = 100.0 if avg_l == 0 else 100.0 - 100.0 / (1.0 + avg_g / avg_l)
    return pd.Series(out, index=close.index)


def feature_frame(ohlcv: pd.DataFrame) -> pd.DataFrame:
    """One row per day with the FEATURES columns; the first WARMUP-1 days (incomplete) are dropped."""
    missing = [c for c in ("Open", "High", "Low", "Close", "Volume") if c not in ohlcv.columns]
    if missing:
        raise ValueError(f"OHLCV frame lacks columns {missing}")
    o, h, lo, c = (ohlcv[k].astype(float) for k in ("Open", "High", "Low", "Close"))
    v = ohlcv["Volume"].astype(float).fillna(0.0).clip(lower=0.0)
    lr = np.log(c / c.shift(1))
    f = pd.DataFrame(index=ohlcv.index)
    f["close"] = c
    f["log_return"] = lr
    f["range_hl"] = (h - lo) / c
    f["body_oc"] = np.log(c / o)
    f["volume_ratio20"] = np.log((v + 1.0) / (v + 1.0).rolling(20).mean())
    f["sma10_gap"] = c / c.rolling(10).mean() - 1.0
    f["sma50_gap"] = c / c.rolling(WARMUP).mean() - 1.0
    f["rsi14"] = rsi(c, 14) / 100.0
    f["volatility20"] = lr.rolling(20).std()
    f["momentum20"] = np.log(c / c.shift(20))
    assert tuple(f.columns) == FEATURES, "feature_frame columns drifted from FEATURES"
    return f.replace([np.inf, -np.inf], np.nan).dropna()


def standardize(values: np.ndarray, scaler: Mapping) -> np.ndarray:
    """(x - mean) / scale per feature, with the manifest's scaler entry."""
    mean = np.asarray(scaler["mean"], dtype=np.float64)
    scale = np.asarray(scaler["scale"], dtype=np.float64)
    return (values - mean) / scale


def check_scaler(scaler: Mapping, features: Sequence[str] = FEATURES) -> None:
    """The scaler must describe exactly our features, in our order."""
    names = tuple(scaler.get("features", features))
    if names != tuple(features):
        raise ValueError(f"scaler features {names} differ from this code's {tuple(features)}")
    for key in ("mean", "scale"):
        if len(scaler[key]) != len(features):
            raise ValueError(f"scaler[{key!r}] has {len(scaler[key])} values, expected {len(features)}")


def window(ohlcv: pd.DataFrame, scaler: Mapping, end=None, window_len: int = WINDOW) -> np.ndarray:
    """The 600 numbers for the `window_len` days ending at `end` (inclusive; default: the last day):
    oldest day first, flattened day-major, standardized with `scaler`."""
    check_scaler(scaler)
    frame = feature_frame(ohlcv)
    if end is not None:
        frame = frame[frame.index <= pd.Timestamp(end)]
    if len(frame) < window_len:
        raise ValueError(
            f"need {window_len} days of complete features (about {window_len + WARMUP - 1} trading days of data)"
            f", have {len(frame)}{f' up to {end}' if end is not None else ''}"
        )
    block = frame.to_numpy(dtype=np.float64)[-window_len:]
    return standardize(block, scaler).reshape(-1)


def windows(frame: pd.DataFrame, window_len: int = WINDOW) -> np.ndarray:
    """Every complete window of a feature frame: (N, window_len, F), N = len(frame) - window_len + 1.
    Window i ends at row i + window_len - 1. Unstandardized."""
    values = frame.to_numpy(dtype=np.float64)
    if len(values) < window_len:
        return np.empty((0, window_len, values.shape[1]))
    view = np.lib.stride_tricks.sliding_window_view(values, (window_len, values.shape[1]))
    return view[:, 0].copy()
