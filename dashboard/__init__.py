"""The Streamlit dashboard and the cost model. Reaches the function over HTTP only."""
