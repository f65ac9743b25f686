"""Turn market data into requests and answers into tables. Pure: no Streamlit, no HTTP."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models import metrics
from models.features import FEATURES, VOLATILITY, WINDOW, feature_frame, standardize, window


def contract_problem(card: dict) -> str | None:
    """Why this dashboard cannot build features for the endpoint's model, or None."""
    if card.get("window") != WINDOW or list(card.get("features", [])) != list(FEATURES):
        return (
            f"the endpoint's model expects window {card.get('window')} with features {card.get('features')}, "
            f"but this dashboard computes window {WINDOW} with {list(FEATURES)}: update the dashboard or the endpoint"
        )
    if list(card.get("scaler", {}).get("features", FEATURES)) != list(FEATURES):
        return "the endpoint's scaler lists its features in another order"
    return None


def request_features(ohlcv: pd.DataFrame, card: dict, end=None) -> list[float]:
    return window(ohlcv, card["scaler"], end=end).tolist()


def backtest_requests(ohlcv: pd.DataFrame, card: dict, start, end, max_days: int) -> pd.DataFrame:
    """One row per day in [start, end) that has a next day: its window (standardized), last and next close."""
    frame = feature_frame(ohlcv)
    values = standardize(frame.to_numpy(dtype=np.float64), card["scaler"])
    closes = frame["close"].to_numpy()
    vol20 = frame.iloc[:, VOLATILITY].to_numpy()
    rows = []
    for i in range(WINDOW - 1, len(frame) - 1):
        day = frame.index[i]
        if (start is None or day >= pd.Timestamp(start)) and (end is None or day <= pd.Timestamp(end)):
            rows.append(
                {
                    "date": frame.index[i + 1],
                    "features": values[i - WINDOW + 1 : i + 1].reshape(-1).tolist(),
                    "last_close": closes[i],
                    "actual": closes[i + 1],
                    "vol20": vol20[i],
                }
            )
    return pd.DataFrame(rows[-max_days:])


def interval_comparison(bt: pd.DataFrame, card: dict, ticker: str) -> pd.DataFrame:
    """The served interval beside the rolling-volatility and GARCH intervals: coverage and Winkler score (relative to
    the last close, lower is better) on this backtest where it can be computed here, and on the model's test period
    as models.evaluate measured it (GARCH needs its fitted parameters, so it is shown from the evaluation only)."""
    tm = card.get("test_metrics", {})
    q = tm.get("calibration_q", {})
    evaluated = tm.get("per_ticker_risk", {}).get(ticker, {})
    rel = (bt["actual"] / bt["last_close"]).to_numpy()
    live = {"served": ((bt["low"] / bt["last_close"]).to_numpy(), (bt["high"] / bt["last_close"]).to_numpy())}
    if "rolling20" in q:
        half = q["rolling20"] * np.maximum(bt["vol20"].to_numpy(), metrics.VOL_FLOOR)
        live["rolling20"] = (np.exp(-half), np.exp(half))
    labels = {"served": "served (risk model)", "rolling20": "rolling 20-day volatility", "garch": "GARCH(1,1)"}
    rows = []
    for name, label in labels.items():
        row: dict = {"interval": label}
        if name in live:
            low, high = live[name]
            row["coverage (this backtest)"] = float(np.mean((rel >= low) & (rel <= high)))
            row["Winkler (this backtest)"] = metrics.winkler(rel, low, high)
        if name in evaluated:
            row["coverage (test period)"] = evaluated[name]["coverage"]
            row["Winkler (test period)"] = evaluated[name]["winkler"]
        rows.append(row)
    return pd.DataFrame(rows)


def backtest_summary(bt: pd.DataFrame) -> dict:
    """MAE of the endpoint's predictions and of the naive forecast, and their ratio (MASE)."""
    mae = float(np.mean(np.abs(bt["prediction"] - bt["actual"])))
    naive = float(np.mean(np.abs(bt["last_close"] - bt["actual"])))
    covered = float(np.mean((bt["actual"] >= bt["low"]) & (bt["actual"] <= bt["high"]))) if "low" in bt else float("nan")
    return {"mae": mae, "naive_mae": naive, "mase": mae / naive if naive else float("nan"), "coverage": covered, "n": len(bt)}


def forecast_row(ticker: str, answer: dict, source: str, last_date) -> dict:
    last = answer.get("last_close")
    return {
        "ticker": ticker,
        "last date": pd.Timestamp(last_date).date(),
        "last close": last,
        "prediction": answer["prediction"],
        "change %": (answer["prediction"] / last - 1) * 100 if last else None,
        "confidence": answer["confidence"],
        "interval": f"{answer['interval']['low']:.2f} – {answer['interval']['high']:.2f}",
        "latency ms": round(answer.get("latency_ms", 0.0), 1),
        "model version": answer["model_version"],
        "data": source,
    }


def parse_view(params: dict, known: list[str]) -> dict:
    """A shared Forecast view from its query string: known tickers, one extra symbol, an end date. Bad parts are dropped."""
    import datetime as dt

    from models.data import TICKER_RE

    raw = [t.strip().upper() for t in str(params.get("tickers", "")).split(",") if t.strip()][:8]
    valid = [t for t in raw if TICKER_RE.fullmatch(t)]
    try:
        end = dt.date.fromisoformat(str(params.get("end", "")))
    except ValueError:
        end = None
    extra = next((t for t in valid if t not in known), "")
    return {"tickers": [t for t in valid if t in known], "extra": extra, "end": end}


def view_params(tickers: list[str], end) -> dict:
    return {"tickers": ",".join(tickers), "end": str(end)}
