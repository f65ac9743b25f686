"""The settings every page shares: endpoint, key, data source. Kept in st.session_state."""
from __future__ import annotations

import streamlit as st

from dashboard import config, data


def _secrets() -> dict:
    try:
        return dict(st.secrets)
    except Exception:  # no secrets.toml: Streamlit raises its own not-found error
        return {}


def render() -> None:
    pending = st.session_state.pop("pending_endpoint", None)  # set by the deploy page, applied before the widgets exist
    if pending:
        st.session_state["sidebar_url"], st.session_state["sidebar_key"] = pending
    if "sidebar_url" not in st.session_state:
        st.session_state["sidebar_url"], st.session_state["sidebar_key"] = config.default_endpoint(_secrets())
    with st.sidebar:
        st.subheader("Endpoint")
        st.text_input("URL", key="sidebar_url", help="The API stage, e.g. http://127.0.0.1:3000/prod (make run) or "
                      "https://<id>.execute-api.<region>.amazonaws.com/prod")
        st.text_input("API key", key="sidebar_key", type="password", help="Sent as X-API-Key. make run prints it; "
                      "deploy.py keeps the AWS one in SSM")
        st.subheader("Market data")
        st.radio("Source", list(data.SOURCES), key="sidebar_source", help="auto tries yfinance, then falls back to the bundled "
                 "snapshot (real data from 1999–2018). The source actually used is shown beside every result.")


def settings() -> tuple[str, str, str]:
    """(url, key, source) as chosen in the sidebar."""
    return (st.session_state.get("sidebar_url", config.DEFAULT_URL).strip().rstrip("/"),
            st.session_state.get("sidebar_key", "").strip(),
            data.SOURCES[st.session_state.get("sidebar_source", next(iter(data.SOURCES)))])
