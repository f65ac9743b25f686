"""The URL is the single source of a page's view (DESIGN, "The dashboard's state").

A page's widgets take their values from st.query_params whenever the URL changed from outside the page's own widgets
(a shared link, Back/Forward, a switch to another page and back) and write the URL after every run that changed the
view, so the address bar always shares the view. Streamlit forgets a keyed widget's state once a run does not draw it
(another page ran), so the last query string of each page is kept server-side and given to that page's link in the
navigation. No Streamlit call runs at import.

One history entry per page switch: Streamlit 1.67's browser pushes an entry for every st.query_params message outside
a Back/Forward run, and it updates the path only after the first such message of a switching run, so a page switch
that also wrote the URL (a restored view, defaults written out) left two entries ("/costs?tickers=..." then
"/forecast?tickers=...") and Back needed two presses. So the view travels with the navigation click (nav_links), a
page does not rewrite a URL that already means the view it drew (publish's `implied`), and a foreign query string is
dropped with one message, not one per key.
"""

from __future__ import annotations

import streamlit as st

# the query-string keys each page owns; any other key on a page's URL is another page's and is dropped
PAGE_KEYS: dict[str, tuple[str, ...]] = {
    "forecast": ("tickers", "range", "end", "chart", "source"),
    "track-record": ("track_ticker", "track_version", "track_record"),
    "costs": ("per_day", "batch", "ms", "memory", "arch", "door", "snapstart", "cold", "init", "free", "budget"),
}
PASS_THROUGH = ("", "home")  # the root forwards its query string to the Forecast page


def _written(page: str) -> str:
    return f"url_written_{page}"


def route(page: str) -> None:
    """Before a page runs: drop another page's query string; on a switch, let the URL (the link's view) seed its widgets."""
    if page in PASS_THROUGH:
        return
    ss = st.session_state
    own = PAGE_KEYS.get(page, ())
    current = st.query_params.to_dict()
    if any(k not in own for k in current):  # one message, so one history entry at most
        st.query_params.from_dict({k: v for k, v in current.items() if k in own})
    switched = ss.get("url_page") != page
    ss["url_page"] = page
    if not switched:
        return
    ss.pop(_written(page), None)  # the widgets were forgotten while another page ran: seed them from the URL again


def saved_view(page: str) -> dict[str, str]:
    """The query string this page last showed ({} before its first run, or when bare): its navigation link opens it."""
    return dict(st.session_state.get("url_views", {}).get(page, {}))


def follows_url(page: str) -> bool:
    """True when the URL changed from outside this page's widgets: they must take the URL's values this run."""
    return st.session_state.get(_written(page)) != st.query_params.to_dict()


def publish(page: str, params: dict[str, str], implied: dict[str, str] | None = None) -> None:
    """The view this run drew becomes the URL unless the URL already means it; that URL is the page's saved view.

    `implied` is the full view the URL stands for (its missing parts filled with their defaults): a bare /forecast
    already shares the default view, so writing it out would only push a second history entry for the same view.
    """
    ss = st.session_state
    if st.query_params.to_dict() != params and implied != params:
        st.query_params.from_dict(params)
    ss[_written(page)] = st.query_params.to_dict()
    ss.setdefault("url_views", {})[page] = st.query_params.to_dict()  # the link back opens this very URL


def nav_links(pages: list, current: str) -> None:
    """The sidebar's page list: each link carries its page's saved view, so a switch is one history entry.

    The page being shown is listed but not a link: its saved view is written later in this run, so a link drawn now
    could carry the view before this run's change and undo it.
    """
    for p in pages:
        if p.url_path in PASS_THROUGH:
            continue
        st.page_link(p, query_params=saved_view(p.url_path) or None, disabled=p.url_path == current)
