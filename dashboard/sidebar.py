"""The settings every page shares: endpoint, key, data source.

The chosen values live under their own session keys (endpoint_url, endpoint_key, data_source); the widgets
only edit them. A page that switches the endpoint (Deploy) sets "pending_endpoint", applied here on the next
run, before the widgets exist.
"""

from __future__ import annotations

import streamlit as st

from dashboard import config, data


def _secrets() -> dict:
    try:
        return dict(st.secrets)
    except Exception:  # no secrets.toml: Streamlit raises its own not-found error
        return {}


def _store(widget: str, target: str) -> None:
    st.session_state[target] = st.session_state[widget]


def render() -> None:
    ss = st.session_state
    if "endpoint_url" not in ss:
        ss["endpoint_url"], ss["endpoint_key"] = config.default_endpoint(_secrets())
    pending = ss.pop("pending_endpoint", None)
    if pending:  # setting a widget's state before it is created makes the browser show the new value
        ss["endpoint_url"], ss["endpoint_key"] = ss["sidebar_url"], ss["sidebar_key"] = pending
    ss.setdefault("data_source", next(iter(data.SOURCES)))
    ss.setdefault("sidebar_url", ss["endpoint_url"])
    ss.setdefault("sidebar_key", ss["endpoint_key"])
    ss.setdefault("sidebar_source", ss["data_source"])
    with st.sidebar:
        st.subheader("Endpoint")
        st.text_input(
            "URL",
            key="sidebar_url",
            on_change=_store,
            args=("sidebar_url", "endpoint_url"),
            help="The API stage, e.g. http://127.0.0.1:3000/prod (make run) or "
            "https://<id>.execute-api.<region>.amazonaws.com/prod",
        )
        st.text_input(
            "API key",
            key="sidebar_key",
            type="password",
            on_change=_store,
            args=("sidebar_key", "endpoint_key"),
            help="Sent as X-API-Key. make run prints it; deploy.py keeps the AWS one in SSM",
        )
        info = config.local_api_info()
        if info.get("caveat") and info.get("url", "").rstrip("/") == ss["endpoint_url"].rstrip("/"):
            st.warning(f"Local API: {info['caveat']}", icon="⚠️")
        st.subheader("Market data")
        st.radio(
            "Source",
            list(data.SOURCES),
            key="sidebar_source",
            on_change=_store,
            args=("sidebar_source", "data_source"),
            help="auto tries yfinance, then falls back to the bundled snapshot (real data from 1999–2018). "
            "The source actually used is shown beside every result.",
        )


def settings() -> tuple[str, str, str]:
    """(url, key, source) as chosen in the sidebar; stops the page with a hint when no URL is set."""
    ss = st.session_state
    url = ss.get("endpoint_url", "").strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        st.info("Set the endpoint URL in the sidebar: http://127.0.0.1:3000/prod after `make run`, or the URL deploy.py printed.")
        st.stop()
    return url, ss.get("endpoint_key", "").strip(), data.SOURCES.get(ss.get("data_source"), "auto")
