"""Forecast: market data -> features (the endpoint's scaler) -> POST /predict -> charts.

The view (tickers, range, end, chart, data source) lives in the URL: /forecast?tickers=AAPL,IBM&range=1Y&end=2012-06-29
opens exactly that view, and every change to it is one browser history entry (dashboard/viewstate.py).
"""

import pandas as pd
import streamlit as st

from dashboard import charts, data, forecasting, sidebar, viewstate
from dashboard.config import BACKTEST_MAX_DAYS
from dashboard.text import plain
from models.client import EndpointError
from models.data import DataError

PAGE = "forecast"
ss = st.session_state
st.title("Forecast")
url, key, default_source = sidebar.settings()
try:
    card = data.model_card(url, key)
except EndpointError as e:
    st.error(f"Cannot read the model from the endpoint: {plain(e.message)}")
    st.stop()
problem = forecasting.contract_problem(card)
if problem:
    st.error(f"Version mismatch: {plain(problem)}")
    st.stop()
known = data.snapshot_tickers()
view = forecasting.parse_view(st.query_params.to_dict(), default_source)
seed = viewstate.follows_url(PAGE)  # a link, Back/Forward or a return to this page: the widgets take the URL's view
if seed:
    ss["forecast_tickers"], ss["forecast_range"], ss["forecast_source"] = view["tickers"], view["range"], view["source"]
c1, c2, c3 = st.columns([3, 1, 1])
tickers = c1.multiselect(
    "Tickers",
    sorted(set(known) | set(ss.get("forecast_tickers", []))),
    key="forecast_tickers",
    accept_new_options=True,
    max_selections=forecasting.MAX_TICKERS,
    help="The bundled snapshot's tickers; type any other symbol yfinance knows (needs the network).",
)
source = c2.selectbox("Market data", list(data.SOURCE_CHOICES), key="forecast_source", format_func=data.SOURCE_CHOICES.get)
tickers = [t.strip().upper() for t in tickers]
if not tickers:
    empty = {**view, "tickers": [], "chart": forecasting.COMPARE}
    viewstate.publish(PAGE, forecasting.view_params({**empty, "source": source}), forecasting.view_params(empty))
    st.info("Pick at least one ticker.")
    st.stop()

loaded, failures = {}, []
for t in tickers:
    try:
        loaded[t] = data.prices(t, source)
    except DataError as e:
        failures.append(f"{plain(t)}: {plain(e)}")
for f in failures:
    st.warning(f)
if not loaded:
    st.stop()
first = min(df.index[0] for df, _, _ in loaded.values()).date()
last = max(df.index[-1] for df, _, _ in loaded.values()).date()
common_end = min(df.index[-1] for df, _, _ in loaded.values()).date()  # the last day every ticker has
if seed or "forecast_end" not in ss:
    ss["forecast_end"] = view["end"] or common_end
ss["forecast_end"] = min(max(ss["forecast_end"], first), last)
end = c3.date_input(
    "As of", key="forecast_end", min_value=first, max_value=last, help="The forecast is for the next trading day after it"
)

rows, details, answers, sent, fell_back = [], [], {}, {}, []
for t, (df, used, why) in loaded.items():
    try:
        features = forecasting.request_features(df, card, end=end)
        answer = data.prediction(url, key, card["version"], t, data.window_key(features), features)
    except ValueError as e:
        st.warning(f"{plain(t)}: {plain(e)}")
        continue
    except EndpointError as e:
        if e.kind == "version":
            data.model_card.clear()
        st.error(f"{plain(t)}: {plain(e.message)}")
        if e.kind in ("down", "auth"):
            st.stop()
        continue
    last_day = df[df.index <= pd.Timestamp(end)].index[-1]
    fell_back += [t] if why else []
    rows.append(forecasting.forecast_row(t, answer, used, last_day))
    rows[-1] = forecasting.card_row(rows[-1], answer, *forecasting.target_day(df, last_day))
    details.append(forecasting.request_details(t, answer))
    answers[t], sent[t] = answer, features
if not rows:
    st.stop()

# the answer first: one card per ticker, above the fold at 1280 x 800
per_row = 3 if len(rows) <= 3 else 4
for i in range(0, len(rows), per_row):
    for j, (col, row) in enumerate(zip(st.columns(per_row), rows[i : i + per_row], strict=False)):
        label, value, change, detail, actual = forecasting.card_lines(row)
        box = col.container(border=True, key=f"forecast_card_{i + j}")
        box.metric(plain(label), value, change)
        box.caption(plain(detail))
        if actual:
            box.caption(plain(actual))
stale = [f"{r['Ticker']} ({r['As of']})" for r in rows if r["As of"] < str(end)]
if stale:
    st.warning(plain(f"Data ends before the as-of day {end} for {', '.join(stale)}: those cards are as of that day."))
noise = forecasting.within_noise(rows)
st.caption((plain(noise) + " " if noise else "") + f"Forecasts by {plain(card['name'])}, version {plain(card['version'])}.")

c1, c2 = st.columns([1, 1])
preset = c1.segmented_control("Range", list(forecasting.RANGES), key="forecast_range", required=True)
start = forecasting.range_start(end, preset, first)
options = [forecasting.COMPARE, *loaded]
if seed or ss.get("forecast_chart") not in options:
    ss["forecast_chart"] = view["chart"] if view["chart"] in options else forecasting.COMPARE
chosen = c2.segmented_control(
    "Chart", options, key="forecast_chart", required=True, help="All tickers on one scale, or one ticker's candlesticks"
)
# what the URL already means: a bare /forecast or a partial link is the default view, and is not rewritten
implied = {**view, "end": view["end"] or common_end, "chart": view["chart"] if view["chart"] in options else forecasting.COMPARE}
viewstate.publish(
    PAGE,
    forecasting.view_params({"tickers": tickers, "range": preset, "end": end, "chart": chosen, "source": source}),
    forecasting.view_params(implied),
)

if chosen == forecasting.COMPARE:
    closes = forecasting.normalised_closes({t: df for t, (df, _, _) in loaded.items()}, start, end)
    if closes:
        marks = forecasting.rebased_forecasts({t: df for t, (df, _, _) in loaded.items()}, start, rows)
        st.altair_chart(charts.compare(closes, marks[marks["ticker"].isin(list(closes))]), width="stretch")
    missing = [t for t in loaded if t not in closes]
    if missing:
        st.caption(f"No data between {start} and {end} for {plain(', '.join(missing))}: pick an earlier date or the range Max.")
else:  # the candlestick draws now; the backtest's day-ahead band joins it once the backtest is in
    df = loaded[chosen][0]
    shown = df[(df.index >= pd.Timestamp(start)) & (df.index <= pd.Timestamp(end))]
    candles = st.empty()
    if len(shown) >= 2:
        quick = charts.candlestick(shown, chosen, answers.get(chosen))
        candles.plotly_chart(quick, width="stretch", key="forecast_candles_quick")
    else:
        candles.caption(f"{plain(chosen)} has no data between {start} and {end}; its data runs to {df.index[-1]:%Y-%m-%d}.")
st.caption(plain(forecasting.data_note(rows, end, fell_back, data.SOURCE_LABELS)))
st.download_button(
    "Download the forecasts (CSV)", forecasting.forecasts_csv(rows), "forecasts.csv", "text/csv", on_click="ignore"
)

box = st.expander("For developers: the endpoint, latency, model version", key="forecast_details_open", on_change="rerun")
with box:
    if box.open:
        st.caption(
            f"Endpoint {plain(url)} serves {plain(card['name'])}, version {plain(card['version'])}; features are built "
            "with the scaler it publishes at GET /model."
        )
        st.dataframe(pd.DataFrame(details), hide_index=True, width="stretch")

st.subheader("Backtest over the range")
st.caption(
    f"The last {BACKTEST_MAX_DAYS} trading days up to {end} (all of them if the range holds fewer) are each forecast "
    "from the 60 days before it (walk-forward, batch requests), against the actual close and the naive forecast "
    "(tomorrow = today); the note under the table gives each ticker's days."
)
bts, summary, notes = {}, [], []
for t in [chosen] if chosen in loaded else list(answers):
    bt = forecasting.backtest_requests(loaded[t][0], card, start, end, BACKTEST_MAX_DAYS)
    if bt.empty:
        st.caption(f"{plain(t)}: not enough data between {start} and {end} for a backtest.")
        continue
    try:
        preds = data.predictions(url, key, card["version"], t, data.window_key(list(bt["features"])), list(bt["features"]))
    except EndpointError as e:
        st.error(f"Backtest of {plain(t)} failed: {plain(e.message)}")
        continue
    bt["prediction"] = [p["prediction"] for p in preds]
    bt["low"], bt["high"] = [p["interval"]["low"] for p in preds], [p["interval"]["high"] for p in preds]
    bts[t] = bt
    span = card.get("test_metrics", {}).get("spans", {}).get(t)
    summary.append(forecasting.backtest_row(t, bt, span))
    notes.append(forecasting.period_note(t, bt["as_of"].iloc[0], bt["as_of"].iloc[-1], span))
money = st.column_config.NumberColumn(format="%.2f")
if summary:
    st.dataframe(
        pd.DataFrame(summary),
        hide_index=True,
        width="stretch",
        column_config={
            "MAE (price)": money,
            "Naive MAE (price)": money,
            "MASE": st.column_config.NumberColumn(format="%.3f", help="MAE / naive MAE: below 1 beats tomorrow = today"),
            "Coverage of the 80% interval (%)": st.column_config.NumberColumn(format="%.0f"),
        },
    )
    st.caption(plain(" ".join(notes)))
    csv = pd.concat([forecasting.backtest_table(bt, t) for t, bt in bts.items()]).to_csv(index=False)
    st.download_button("Download the backtest (CSV)", csv, "backtest.csv", "text/csv", on_click="ignore")

if chosen in loaded:
    bt = bts.get(chosen)
    if len(shown) >= 2 and bt is not None:  # the same chart again, now with each day's day-ahead band
        full = charts.candlestick(shown, chosen, answers.get(chosen), bt[["date", "low", "high"]])
        candles.plotly_chart(full, width="stretch", key="forecast_candles")
    if "volatility" in answers.get(chosen, {}):
        st.caption(
            f"Tomorrow's predicted volatility (daily std of the log return): {answers[chosen]['volatility']:.2%}; the band "
            "shows each day's interval as the endpoint gave it the day before."
        )
    if bt is not None:
        st.plotly_chart(charts.backtest(bt, chosen), width="stretch", key="forecast_backtest")
        st.markdown(
            "**The interval beside the textbook risk estimates** (Winkler score relative to the last close: lower is better)"
        )
        st.dataframe(forecasting.interval_comparison(bt, card, chosen), hide_index=True, width="stretch")
        st.caption("n/a: GARCH needs its fitted parameters, which only the model's evaluation has (see the Model page).")

box = st.expander("What was sent: the 60 x 10 input window", key="forecast_window_open", on_change="rerun")
with box:
    if box.open:  # drawn only once opened: a closed expander costs nothing
        which = chosen if chosen in sent else next(iter(sent))
        st.caption(f"The window sent for {plain(which)}.")
        st.plotly_chart(charts.window_heatmap(sent[which]), width="stretch", key="forecast_heatmap")
