"""Forecast: market data -> features (the endpoint's scaler) -> POST /predict -> charts."""

import datetime as dt

import pandas as pd
import streamlit as st

from dashboard import charts, data, forecasting, sidebar
from models.client import EndpointError
from dashboard.config import BACKTEST_MAX_DAYS
from models.data import DataError

st.title("Forecast")
url, key, source = sidebar.settings()
client = data.client(url, key)
try:
    card = data.model_card(url, key)
except EndpointError as e:
    st.error(f"Cannot read the model from the endpoint: {e.message}")
    st.stop()
problem = forecasting.contract_problem(card)
if problem:
    st.error(f"Version mismatch: {problem}")
    st.stop()
st.caption(
    f"Endpoint `{url}` serves **{card['name']}** version `{card['version']}`; features are built with the scaler it "
    "publishes at GET /model."
)

known = data.snapshot_tickers()
shared = forecasting.parse_view(st.query_params.to_dict(), known)  # a shared link: /forecast?tickers=AAPL,IBM&end=2012-06-29
if "forecast_tickers" not in st.session_state:
    st.session_state["forecast_tickers"] = shared["tickers"] or ["AAPL", "^GSPC"]
    st.session_state["forecast_extra"] = shared["extra"]
picked = st.multiselect(
    "Tickers",
    known,
    key="forecast_tickers",
    help="The bundled snapshot's tickers; add any symbol yfinance knows below (needs the network).",
)
extra = st.text_input("Another symbol (live data)", key="forecast_extra", placeholder="e.g. NVDA").strip().upper()
tickers = picked + ([extra] if extra and extra not in picked else [])
if not tickers:
    st.info("Pick at least one ticker.")
    st.stop()

loaded, failures = {}, []
for t in tickers:
    try:
        loaded[t] = data.prices(t, source)
    except DataError as e:
        failures.append(f"**{t}**: {e}")
for f in failures:
    st.warning(f)
if not loaded:
    st.stop()
lo = min(df.index.min() for df, _, _ in loaded.values()).date()
hi = max(df.index.max() for df, _, _ in loaded.values()).date()
end_default = min(max(shared["end"] or hi, lo), hi)
dates = st.date_input(
    "Date range (the forecast is for the trading day after its end)",
    value=(max(lo, end_default - dt.timedelta(days=365)), end_default),
    min_value=lo,
    max_value=hi,
    key="forecast_dates",
)
start, end = dates if isinstance(dates, tuple | list) and len(dates) == 2 else (lo, hi)
st.query_params.from_dict(forecasting.view_params(tickers, end))  # the address bar now shares this view

rows, answers, sent = [], {}, {}
for t, (df, used, why) in loaded.items():
    try:
        features = forecasting.request_features(df, card, end=end)
        answer = data.prediction(url, key, card["version"], t, data.window_key(features), features)
    except ValueError as e:
        st.warning(f"**{t}**: {e}")
        continue
    except EndpointError as e:
        if e.kind == "version":
            data.model_card.clear()
        st.error(f"**{t}**: {e.message}")
        if e.kind in ("down", "auth"):
            st.stop()
        continue
    last_day = df[df.index <= pd.Timestamp(end)].index[-1]
    label = data.SOURCE_LABELS.get(used, used) + (" (live unavailable)" if why else "")
    rows.append(forecasting.forecast_row(t, answer, label, last_day))
    answers[t], sent[t] = answer, features
if not rows:
    st.stop()
st.dataframe(
    pd.DataFrame(rows),
    hide_index=True,
    width="stretch",
    column_config={
        "last close": st.column_config.NumberColumn(format="%.2f"),
        "prediction": st.column_config.NumberColumn(format="%.2f"),
        "change %": st.column_config.NumberColumn(format="%+.2f%%"),
        "confidence": st.column_config.ProgressColumn(
            min_value=0.5, max_value=1.0, format="%.3f", help="P(the close moves the predicted way); 0.5 = no idea"
        ),
    },
)
used = sorted({r["data"] for r in rows})
st.caption(
    f"Market data in use: {', '.join(used)}."
    + (" The bundled snapshot ends in 2013 (stocks) and 2018 (indices)." if any("bundled" in u for u in used) else "")
)

chosen = st.selectbox("Chart", list(answers), key="forecast_chart")
df = loaded[chosen][0]
view = df[(df.index >= pd.Timestamp(start)) & (df.index <= pd.Timestamp(end))]
if len(view) < 2:  # the range lies outside this ticker's data (the snapshot's stocks end in 2013)
    view = df[df.index > df.index[-1] - pd.Timedelta(days=365)]
    st.caption(f"{chosen} has no data in the chosen range; showing its last year, up to {df.index[-1]:%Y-%m-%d}.")
view_bt = forecasting.backtest_requests(df, card, view.index[0], view.index[-1], BACKTEST_MAX_DAYS)
band = None
if not view_bt.empty:
    try:
        got = data.predictions(
            url, key, card["version"], chosen, data.window_key(list(view_bt["features"])), list(view_bt["features"])
        )
        band = pd.DataFrame(
            {"date": view_bt["date"], "low": [p["interval"]["low"] for p in got], "high": [p["interval"]["high"] for p in got]}
        )
    except EndpointError as e:
        st.warning(f"The interval band over the chart could not be fetched: {e.message}")
st.plotly_chart(charts.candlestick(view, chosen, answers[chosen], band), width="stretch", key="forecast_candles")
if "volatility" in answers[chosen]:
    st.caption(
        f"Tomorrow's predicted volatility (daily std of the log return): {answers[chosen]['volatility']:.2%}; the band shows "
        "each day's interval as the endpoint gave it the day before."
    )

st.subheader("Backtest")
span = card.get("test_metrics", {}).get("spans", {}).get(chosen)
bt_start, bt_end = (span["test_from"], span["test_to"]) if span else (start, end)
period = "the model's test period" if span else "the chosen range (not a test period: this ticker was not in training)"
st.caption(
    f"Batch requests over {period} ({bt_start} to {bt_end}; at most {BACKTEST_MAX_DAYS} days), against the actual close "
    "and the naive forecast."
)
bt = forecasting.backtest_requests(df, card, bt_start, bt_end, BACKTEST_MAX_DAYS)
if bt.empty:
    st.info("Not enough data in that period for a backtest.")
else:
    try:
        preds = data.predictions(url, key, card["version"], chosen, data.window_key(list(bt["features"])), list(bt["features"]))
    except EndpointError as e:
        st.error(f"Backtest failed: {e.message}")
        st.stop()
    bt["prediction"] = [p["prediction"] for p in preds]
    bt["low"] = [p["interval"]["low"] for p in preds]
    bt["high"] = [p["interval"]["high"] for p in preds]
    s = forecasting.backtest_summary(bt)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("MAE", f"{s['mae']:.3f}")
    c2.metric("naive MAE", f"{s['naive_mae']:.3f}")
    c3.metric("MASE", f"{s['mase']:.3f}", help="MAE / naive MAE: below 1 beats tomorrow = today")
    c4.metric("interval coverage", f"{s['coverage']:.0%}", help="share of actual closes inside the 80% interval")
    st.plotly_chart(charts.backtest(bt, chosen), width="stretch", key="forecast_backtest")
    st.markdown(
        "**The interval beside the textbook risk estimates** (Winkler score on prices relative to the last close: "
        "lower is better)"
    )
    st.dataframe(
        forecasting.interval_comparison(bt, card, chosen),
        hide_index=True,
        width="stretch",
        column_config={
            c: st.column_config.NumberColumn(format="%.3f" if "coverage" in c else "%.5f")
            for c in ("coverage (this backtest)", "Winkler (this backtest)", "coverage (test period)", "Winkler (test period)")
        },
    )

with st.expander("What was sent: the 60 x 10 input window"):
    st.plotly_chart(charts.window_heatmap(sent[chosen]), width="stretch", key="forecast_heatmap")
