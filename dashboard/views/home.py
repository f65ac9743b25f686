"""The app's root URL: forwards to the Forecast page, so that page has a shareable URL of its own (/forecast)
and any query string (?tickers=AAPL,IBM&end=2012-06-29) goes along."""

import streamlit as st

st.switch_page("views/forecast.py", query_params=st.query_params.to_dict())
