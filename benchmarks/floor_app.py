"""The floor of the first-paint benchmark: the least a Streamlit page can cost on this machine, one 250-point line chart.

streamlit run benchmarks/floor_app.py       # benchmarks/first_paint.py starts it beside the dashboard
"""

import numpy as np
import streamlit as st

st.line_chart(np.cumsum(np.random.default_rng(0).normal(size=250)))
