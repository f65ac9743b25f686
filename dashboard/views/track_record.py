"""Track record: what the served model versions got right after they forecast, from the ledger (read-only)."""

import streamlit as st

from dashboard import track_record as tr
from dashboard import viewstate
from ledger import read, scoring
from ledger.store import DEFAULT_DB

st.title("Track record")
try:
    tickers = read.tickers(DEFAULT_DB)
    versions = read.versions(DEFAULT_DB)
except read.NoLedger as e:
    st.info(f"No track record yet: {e.plain}.")
    with st.expander("For developers: where the ledger is read"):
        st.text(str(e))
    st.stop()
if not tickers:
    st.info("The ledger holds no forecasts yet: run `make ledger`.")
    with st.expander("For developers: where the ledger is read"):
        st.text(str(DEFAULT_DB))
    st.stop()

# the URL is the view's single source: widgets are seeded from it on every run and write it back when changed
version_ids = versions["model_version"].tolist()
view = tr.parse_view(st.query_params.to_dict(), tickers, version_ids, list(read.RECORDS))
for name, value in view.items():
    st.session_state[tr.PREFIX + name] = value


def to_url(name: str) -> None:
    st.query_params[tr.PREFIX + name] = st.session_state[tr.PREFIX + name]


left, middle, right = st.columns([1, 1.3, 2])  # the Record choice is a sentence: it gets the room
ticker = left.selectbox("Ticker", tickers, key="track_ticker", on_change=to_url, args=("ticker",))
version = middle.selectbox("Model version", version_ids, key="track_version", on_change=to_url, args=("version",))
which = right.selectbox(
    "Record", list(read.RECORDS), format_func=read.RECORDS.get, key="track_record", on_change=to_url, args=("record",)
)
# the page's saved view too, so a switch to another page and back restores it
viewstate.publish(
    "track-record",
    {tr.PREFIX + k: v for k, v in {"ticker": ticker, "version": version, "record": which}.items()},
    {tr.PREFIX + k: v for k, v in view.items()},  # what the URL means: a bare /track-record is not rewritten
)

try:
    shown = read.view(DEFAULT_DB, ticker, version, which)
except read.NoLedger as e:  # damage the first queries did not touch
    st.error(e.plain)
    with st.expander("For developers: where the ledger is read"):
        st.text(str(e))
    st.stop()
s, card, alarm, deployed = shown["series"], shown["card"], shown["alarm"], shown["deployed"]
with st.expander("For developers: where the ledger is read"):
    st.text(str(DEFAULT_DB))
st.text(
    f"Model version {version}: "
    + (f"live from {deployed} (its first live forecast's as-of day)" if deployed else "no live forecasts yet")
)
skipped = read.skips(DEFAULT_DB, ticker, version)
if len(skipped):  # the daily job's checks: a day left out is shown with its reason, never silently missing
    st.subheader(f"Days skipped ({len(skipped)})")
    st.dataframe(skipped, hide_index=True, width="stretch")
if card is None:
    st.info("No scored forecasts for this ticker, version and record yet." + (" Run `make ledger`." if which == "replay" else ""))
    st.stop()

last = s.iloc[-1]
cols = st.columns(5)
cols[0].metric("scored forecasts", f"{len(s)}")
cols[1].metric("coverage (80% interval)", f"{s['covered'].mean():.1%}")
cols[2].metric(
    "MASE", f"{last['cum_mase']:.4f}", help="sum |forecast - close| / sum |last close - close|: below 1 beats tomorrow = today"
)
cols[3].metric("Winkler vs rolling", f"{last['cum_winkler'] / last['cum_winkler_rolling']:.4f}x")  # as the scorecard
cols[4].metric("Winkler vs GARCH", f"{last['cum_winkler'] / last['cum_winkler_garch']:.4f}x")

st.text(tr.calibration_note(s))
st.subheader("Alarms")
states = {
    "coverage over 60 days (alarm outside [70%, 90%])": (
        alarm["coverage_alarm"],
        "—" if alarm["coverage_60"] is None else f"{alarm['coverage_60']:.1%}",
    ),
    "Kupiec test on breaches (alarm at p < 5%)": (
        alarm["kupiec_alarm"],
        f"p = {alarm['kupiec_p']:.3f} ({alarm['kupiec_breaches']} of {alarm['kupiec_n']})",
    ),
    "Winkler ratio vs rolling (alarm above 1 for 20 days running)": (
        alarm["winkler_alarm"],
        f"{alarm['winkler_days_above_1']} days running",
    ),
}
plain = s["covered_plain"].astype(bool)
p_plain = scoring.kupiec(len(plain), int((~plain).sum()), float(s["level"].iloc[0]))[1]
states["Kupiec test, had the model's own interval been served"] = (
    p_plain < scoring.KUPIEC_SIZE,
    f"p = {p_plain:.3f} ({int((~plain).sum())} of {len(plain)}; coverage {plain.mean():.1%})",
)
for label, (raised, detail) in states.items():
    (st.error if raised else st.success)(f"{'ALARM' if raised else 'ok'}: {label}: {detail}")
st.text(f"Alarm state on {alarm['as_of']}, over the record shown.")

st.subheader("Forecasts against the realised close")
st.plotly_chart(tr.forecast_figure(s), width="stretch")
st.caption(f"The latest {tr.FIRST_VIEW_DAYS} forecasts first; zoom out (double-click) for the whole record.")
st.subheader("Rolling 60-day coverage")
st.plotly_chart(tr.coverage_figure(s), width="stretch")
st.caption(
    "The green band is [70%, 90%] around the 80% goal: outside it the coverage alarm is raised. The dotted line is the "
    "model's own interval on the same days: where calibration works, the served line holds nearer 80%."
)
st.subheader("Cumulative Winkler score against the baselines")
st.plotly_chart(tr.winkler_figure(s), width="stretch")
st.caption(
    "Relative to the last close, lower is better; the baselines are the naive point with rolling 20-day and "
    "GARCH(1,1) intervals on the same days."
)
st.subheader("Scorecard, as `make ledger` prints it")
st.dataframe(read.scorecard_table([card]), hide_index=True, width="stretch")
