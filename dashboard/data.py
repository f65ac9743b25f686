"""Cached access to market data, the endpoint and deployment status. Decorators only: nothing runs at import."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import processes
from dashboard.client import ForecastClient
from dashboard.config import MARKET_TTL_S, MODEL_TTL_S, RUNS_TTL_S
from models import data as market

SOURCES = {"auto (live, else bundled)": "auto", "live (yfinance)": "live", "bundled snapshot": "snapshot"}
SOURCE_LABELS = {"live": "live (yfinance)", "snapshot": "bundled snapshot"}


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
