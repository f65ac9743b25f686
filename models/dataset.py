"""Windows, targets and chronological splits per ticker. numpy/pandas only (no torch).

A sample is the window of 60 feature rows ending on day t and the target ln(C_{t+1} / C_t).
Windows are built per ticker, so none spans two tickers; each ticker's samples are split in time
order into train / validation / test, and the scaler sees training rows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.data import load_prices
from models.features import FEATURES, VOLATILITY, WINDOW, feature_frame, windows

TRAIN_TICKERS = ("^GSPC", "AAPL", "MSFT", "IBM", "GOOG")  # the model is fitted on these
HELD_OUT_TICKERS = ("^IXIC",)  # never seen in training: a fresh market
SPLIT = (0.70, 0.15, 0.15)  # train / validation / test, per ticker, in time order


@dataclass
class TickerData:
    ticker: str
    dates: pd.DatetimeIndex  # (N,) the day each window ends on (the forecast is for the next day)
    X: np.ndarray  # (N, T, F) unstandardized windows
    y: np.ndarray  # (N,) next-day log return
    last_close: np.ndarray  # (N,)
    next_close: np.ndarray  # (N,)

    @property
    def vol(self) -> np.ndarray:
        return self.X[:, -1, VOLATILITY]

    def take(self, part: slice) -> TickerData:
        return TickerData(self.ticker, self.dates[part], self.X[part], self.y[part], self.last_close[part], self.next_close[part])

    def __len__(self) -> int:
        return len(self.y)


def build(ticker: str, ohlcv: pd.DataFrame | None = None, window_len: int = WINDOW, start=None, end=None) -> TickerData:
    """All samples of one ticker (snapshot data unless `ohlcv` is given)."""
    if ohlcv is None:
        ohlcv = load_prices(ticker, start=start, end=end, source="snapshot")
    frame = feature_frame(ohlcv)
    X = windows(frame, window_len)[:-1]  # the last window has no next day yet
    close = frame["close"].to_numpy()
    last = close[window_len - 1 : -1]
    nxt = close[window_len:]
    return TickerData(ticker, frame.index[window_len - 1 : -1], X, np.log(nxt / last), last, nxt)


def split_slices(n: int, fractions=SPLIT) -> tuple[slice, slice, slice]:
    """Chronological train / validation / test slices of n samples."""
    a = int(round(n * fractions[0]))
    b = a + int(round(n * fractions[1]))
    return slice(0, a), slice(a, b), slice(b, n)


def fit_scaler(train_parts: list[TickerData]) -> dict:
    """Mean and scale per feature over the rows that training windows contain, pooled over tickers."""
    rows = []
    for part in train_parts:
        # rows of the first window, then the newest row of each following window: each day once
        rows.append(np.concatenate([part.X[0], part.X[1:, -1]], axis=0))
    stacked = np.concatenate(rows, axis=0)
    scale = stacked.std(axis=0)
    scale[scale == 0] = 1.0
    return {"features": list(FEATURES), "mean": stacked.mean(axis=0).tolist(), "scale": scale.tolist()}


def standardize_windows(X: np.ndarray, scaler: dict) -> np.ndarray:
    return ((X - np.asarray(scaler["mean"])) / np.asarray(scaler["scale"])).astype(np.float32)
