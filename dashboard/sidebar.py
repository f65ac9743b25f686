"""The settings every page shares: the endpoint and its key.

The chosen values live under their own session keys (endpoint_url, endpoint_key), which stay on the server. The API key
is never a widget's value, so it is in no page's HTML: it comes from the environment, st.secrets or the local API's
state file, and a key the user pastes replaces it for this session only, the field emptying itself at once.
A page that switches the endpoint (Deploy) sets "pending_endpoint", applied here on the next run, before the widgets exist.
"""

from __future__ import annotations

import streamlit as st

from dashboard import config, data
from dashboard.text import plain


def _secrets() -> dict:
    try:
        return dict(st.secrets)
    except Exception:  # no secrets.toml: Streamlit raises its own not-found error
        return {}


def _store_url() -> None:
    st.session_state["endpoint_url"] = st.session_state["sidebar_url"]


def _paste_key() -> None:
    """A pasted key serves this session; the field is emptied so the browser never holds it past this keystroke."""
    ss = st.session_state
    pasted = ss["sidebar_key"].strip()
    ss["sidebar_key"] = ""
    if pasted:
        ss["endpoint_key"], ss["endpoint_key_origin"] = pasted, "pasted for this session"


def _forget_key() -> None:
    ss = st.session_state
    ss["endpoint_key"] = config.default_endpoint(_secrets())[1]
    ss["endpoint_key_origin"] = "the server's configuration"


def render() -> None:
    ss = st.session_state
    if "endpoint_url" not in ss:
        ss["endpoint_url"], ss["endpoint_key"] = config.default_endpoint(_secrets())
    pending = ss.pop("pending_endpoint", None)
    if pending:  # setting a widget's state before it is created makes the browser show the new URL
        ss["endpoint_url"], ss["endpoint_key"] = pending
        ss["sidebar_url"], ss["endpoint_key_origin"] = pending[0], "the deployment just made"
    ss.setdefault("data_source", next(iter(data.SOURCES)))
    ss.setdefault("sidebar_url", ss["endpoint_url"])
    ss.setdefault("endpoint_key_origin", "the server's configuration")
    with st.sidebar:
        st.subheader("Endpoint")
        st.text_input(
            "URL",
            key="sidebar_url",
            on_change=_store_url,
            help="The API stage, e.g. http://127.0.0.1:3000/prod (make run) or "
            "https://<id>.execute-api.<region>.amazonaws.com/prod",
        )
        st.text_input(
            "Use another API key",
            key="sidebar_key",
            type="password",
            on_change=_paste_key,
            placeholder="paste a key for this session",
            help="Sent as X-API-Key. The key in use stays on the server and is never shown here.",
        )
        if ss.get("endpoint_key"):
            st.caption(f"Key in use: from {ss['endpoint_key_origin']} (kept on the server).")
            if ss["endpoint_key_origin"] == "pasted for this session":
                st.button("Forget the pasted key", on_click=_forget_key, key="sidebar_forget_key")
        else:
            st.caption("No API key configured: paste one above, or start the API with `make run`.")
        info = config.local_api_info()
        if info.get("caveat") and info.get("url", "").rstrip("/") == ss["endpoint_url"].rstrip("/"):
            st.warning(f"Local API: {plain(info['caveat'])}", icon="⚠️")


def settings() -> tuple[str, str, str]:
    """(url, key, default data source); stops the page with a hint when no URL is set."""
    ss = st.session_state
    url = ss.get("endpoint_url", "").strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        st.info(
            "Set the endpoint URL in the sidebar: http://127.0.0.1:3000/prod after `make run`, or the URL the deploy printed."
        )
        st.stop()
    return url, ss.get("endpoint_key", "").strip(), data.SOURCES.get(ss.get("data_source"), "auto")
