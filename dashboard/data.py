"""Cached access to market data, the endpoint and deployment status. Decorators only: nothing runs at import."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import processes
from dashboard.config import MARKET_TTL_S, MODEL_TTL_S, PREDICTION_TTL_S, RUNS_TTL_S
from models import data as market
from models.client import ForecastClient

SOURCES = {"auto (live, else bundled)": "auto", "live (yfinance)": "live", "bundled snapshot": "snapshot"}
SOURCE_LABELS = {"live": "live (yfinance)", "snapshot": "bundled snapshot"}
SOURCE_CHOICES = {"auto": "auto (live, else bundled)", **SOURCE_LABELS}  # the Forecast page's selector: URL value -> label


@st.cache_data(ttl=MARKET_TTL_S, show_spinner=False)
def prices(ticker: str, source: str) -> tuple[pd.DataFrame, str, str]:
    """-> (OHLCV, the source that answered, why live data was not used). Errors are not cached."""
    df = market.load_prices(ticker, source=source)
    return df, df.attrs.get("source", source), df.attrs.get("live_error", "")


@st.cache_data(ttl=MARKET_TTL_S, show_spinner=False)
def snapshot_tickers() -> list[str]:
    return market.snapshot_tickers()


@st.cache_resource(show_spinner=False)
def client(url: str, key: str) -> ForecastClient:
    return ForecastClient(url, key)


@st.cache_data(ttl=MODEL_TTL_S, show_spinner=False)
def model_card(url: str, key: str) -> dict:
    return client(url, key).model()


@st.cache_data(ttl=RUNS_TTL_S, show_spinner=False)
def training_runs() -> pd.DataFrame | None:
    runs = processes.training_runs()
    return None if runs is None else pd.DataFrame(runs)


def window_key(features) -> str:
    """A short, exact key for a window (or a list of them): what the prediction caches are keyed by."""
    import hashlib

    import numpy as np

    return hashlib.sha256(np.asarray(features, dtype=np.float64).tobytes()).hexdigest()[:24]


@st.cache_data(ttl=PREDICTION_TTL_S, show_spinner=False, max_entries=4096)
def prediction(url: str, key: str, version: str, ticker: str, window: str, _features: list[float]) -> dict:
    """One forecast, asked once per endpoint, model version, ticker and window: an unrelated widget change re-runs the
    page, not the request (so the cost monitor counts only real traffic). `window` is window_key(_features)."""
    return client(url, key).predict(ticker, _features, model_version=version)


@st.cache_data(ttl=PREDICTION_TTL_S, show_spinner=False, max_entries=256)
def predictions(url: str, key: str, version: str, ticker: str, windows: str, _features: list[list[float]]) -> list[dict]:
    """Batch forecasts (at most the API's batch size per call), cached like `prediction`."""
    from models.client import MAX_BATCH

    out: list[dict] = []
    for i in range(0, len(_features), MAX_BATCH):
        chunk = _features[i : i + MAX_BATCH]
        out += client(url, key).predict_batch([{"ticker": ticker, "features": f} for f in chunk], version)
    return out


@st.cache_data(ttl=MODEL_TTL_S, show_spinner=False)
def calibration_verdict(db: str) -> dict:
    """The serving rule's verdict on the ledger's replayed record, per model version (ledger.aci.report)."""
    from ledger import aci

    return aci.report(Path(db))
