"""The two risk baselines frozen beside each forecast: the naive point with the rolling 20-day and the GARCH(1,1)
volatility intervals, at the served level, with the conformal quantiles models.evaluate calibrated (published by
GET /model) and data up to the forecast's day only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models import metrics
from models.features import feature_frame


def intervals(ohlcv: pd.DataFrame, q: dict, fit_until) -> pd.DataFrame:
    """Per day t of `ohlcv` (rows with complete features): vol20 and the two baseline intervals for day t's next
    session. GARCH's parameters are fitted on the returns up to `fit_until`, then filtered forward with them fixed:
    each day's variance uses returns up to that day only."""
    frame = feature_frame(ohlcv)
    returns = frame["log_return"]
    past = returns[returns.index <= pd.Timestamp(fit_until)].to_numpy()
    if len(past) < 100:
        raise ValueError(f"GARCH(1,1) needs at least 100 daily returns up to {fit_until:%Y-%m-%d}, have {len(past)}")
    g = metrics.fit_garch(past)
    garch = metrics.garch_volatility(returns.to_numpy(), g["omega"], g["alpha"], g["beta"], g["init_var"])
    last = frame["close"].to_numpy()
    vol20 = frame["volatility20"].to_numpy()
    zero = np.zeros(len(frame))  # the naive point: tomorrow = today
    r_low, r_high = metrics.interval(last, zero, vol20, q["rolling20"])
    g_low, g_high = metrics.interval(last, zero, garch, q["garch"])
    return pd.DataFrame(
        {"vol20": vol20, "rolling_low": r_low, "rolling_high": r_high, "garch_low": g_low, "garch_high": g_high},
        index=frame.index,
    )
