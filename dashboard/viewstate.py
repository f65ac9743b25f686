"""The URL is the single source of a page's view (DESIGN, "The dashboard's state").

A page's widgets take their values from st.query_params whenever the URL changed from outside the page's own widgets
(a shared link, Back/Forward, a switch to another page and back) and write the URL after every run, so the address
bar always shares the view. Streamlit forgets a keyed widget's state once a run does not draw it (another page ran),
so the last query string of each page is kept server-side and put back when the page is opened again from the
navigation. No Streamlit call runs at import.
"""

from __future__ import annotations

import streamlit as st

# the query-string keys each page owns; any other key on a page's URL is another page's and is dropped
PAGE_KEYS: dict[str, tuple[str, ...]] = {
    "forecast": ("tickers", "range", "end", "chart", "source"),
    "track-record": ("track_ticker", "track_version", "track_record"),
}
PASS_THROUGH = ("", "home")  # the root forwards its query string to the Forecast page


def _written(page: str) -> str:
    return f"url_written_{page}"


def route(page: str) -> None:
    """Before a page runs: drop another page's query string, and restore this page's last view on a return to it."""
    if page in PASS_THROUGH:
        return
    ss = st.session_state
    own = PAGE_KEYS.get(page, ())
    for k in [k for k in st.query_params if k not in own]:
        del st.query_params[k]
    switched = ss.get("url_page") != page
    ss["url_page"] = page
    if not switched:
        return
    ss.pop(_written(page), None)  # the widgets were forgotten while another page ran: seed them again
    saved = ss.get("url_views", {}).get(page)
    if saved and not any(k in st.query_params for k in own):
        st.query_params.from_dict(saved)


def follows_url(page: str) -> bool:
    """True when the URL changed from outside this page's widgets: they must take the URL's values this run."""
    return st.session_state.get(_written(page)) != st.query_params.to_dict()


def publish(page: str, params: dict[str, str]) -> None:
    """The view this run drew becomes the URL (one history entry when it changed) and the page's saved view."""
    ss = st.session_state
    ss[_written(page)] = dict(params)
    ss.setdefault("url_views", {})[page] = dict(params)
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
