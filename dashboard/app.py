"""Financial forecasting dashboard: `streamlit run dashboard/app.py` from the repository root."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: models/ and dashboard/

import streamlit as st  # noqa: E402

from dashboard import sidebar, viewstate  # noqa: E402

# The pages live in views/, not pages/: Streamlit runs a pages/ folder as a v1 multipage app when a
# fresh server's first visit is to a page URL (/deploy), skipping this file and its sidebar.
st.set_page_config(page_title="Financial forecasting", page_icon=":chart_with_upwards_trend:", layout="wide")
links = st.sidebar.container(key="sidebar_nav")  # the page list, first in the sidebar; filled once the pages are known
sidebar.render()
# Every page has a URL of its own; the root forwards to /forecast (Streamlit serves a default page only at the root).
pages = [
    st.Page("views/home.py", title="Home", url_path="home", default=True, visibility="hidden"),
    st.Page("views/forecast.py", title="Forecast", icon=":material/show_chart:", url_path="forecast"),
    st.Page("views/cost_monitor.py", title="Cost monitor", icon=":material/payments:", url_path="costs"),
    st.Page("views/deploy.py", title="Deploy", icon=":material/rocket_launch:", url_path="deploy"),
    st.Page("views/model.py", title="Model", icon=":material/model_training:", url_path="model"),
    st.Page("views/track_record.py", title="Track record", icon=":material/fact_check:", url_path="track-record"),
]
# Streamlit's own page list would switch pages without their views (viewstate.py: two history entries a switch)
nav = st.navigation(pages, position="hidden")
viewstate.route(nav.url_path)  # the URL holds each page's view; another page's query string never leaks onto this one
with links:
    viewstate.nav_links(pages, nav.url_path)
nav.run()
