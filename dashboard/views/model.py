"""Model: the card the endpoint publishes at GET /model, its figures beside the naive forecast, and runs."""

import pandas as pd
import streamlit as st

from dashboard import data, sidebar
from dashboard.text import plain  # endpoint strings are shown as text, never Markdown
from models.client import EndpointError

st.title("Model")
url, key, _ = sidebar.settings()
try:
    card = data.model_card(url, key)
except EndpointError as e:
    st.error(f"Cannot read the model card: {plain(e.message)}")
    st.stop()

st.markdown(
    f"**{plain(card['name'])}**, version {plain(card['version'])}: {card['window']} trading days x {card['n_features']} "
    f"features ({plain(', '.join(map(str, card['features'])))})."
)
st.write(
    f"Trained on {plain(', '.join(map(str, card['tickers'])))}; never saw "
    f"{plain(', '.join(map(str, card.get('held_out', []))) or 'nothing held out')}. "
    f"Target: {plain(card.get('target', 'next close'))}."
)
weights = dict(zip(card["ensemble"]["members"], card["ensemble"]["weights"], strict=True))
st.write("Ensemble weights (fitted on validation data): " + ", ".join(f"**{plain(k)}** {v:.3f}" for k, v in weights.items()))
cal = card["calibration"]
st.write(
    f"Interval: {plain(cal['method'])}; level {cal['level']}, q = {cal['q']:.3f}. "
    f"Volatility: {plain(card.get('volatility', 'volatility20'))}. Confidence: {plain(card.get('confidence', ''))}."
)

tm = card.get("test_metrics", {})
if tm.get("overall"):
    st.subheader("Test period, every ticker pooled (relative to the last close)")
    overall = pd.DataFrame(tm["overall"]).T
    st.dataframe(overall, width="stretch")
    st.caption(
        "MASE = MAE / the naive forecast's MAE: below 1 beats 'tomorrow = today'. R² on price levels is left out on "
        "purpose: the naive forecast scores about 0.99 too."
    )


def risk_table(block: dict) -> pd.DataFrame:
    labels = tm.get("risk_labels", {})
    rows = []
    for name, m in block.items():
        calm, middle, stormy = m["coverage_by_vol_tercile"]
        rows.append(
            {
                "interval": labels.get(name, name),
                "coverage": m["coverage"],
                "calm third": calm,
                "middle third": middle,
                "stormy third": stormy,
                "Winkler": m["winkler"],
                "CRPS": m["crps"],
                "pinball 10": m["pinball_10"],
                "pinball 50": m["pinball_50"],
                "pinball 90": m["pinball_90"],
                "width %": m["mean_width_pct"],
            }
        )
    return pd.DataFrame(rows)


def intervals(title: str, block: dict, goals: dict | None, where: str) -> None:
    st.subheader(title)
    st.dataframe(risk_table(block), hide_index=True, width="stretch")
    if goals:
        met = {k: "met" if goals[k] else "NOT met" for k in ("coverage_77_83", "top_tercile_75")}
        st.caption(
            f"Goals {where}: coverage 77–83% {met['coverage_77_83']}; stormy third ≥ 75% {met['top_tercile_75']}; Winkler "
            f"{goals['winkler_vs_rolling']:.3f}x the rolling volatility's (goal ≤ 0.95) and {goals['winkler_vs_garch']:.3f}x "
            "GARCH's (goal ≤ 1). Scores are on prices relative to the last close; lower is better. Every interval is "
            "calibrated on the same validation data."
        )


all_goals = tm.get("goals") or {}
if tm.get("risk"):
    intervals(
        "80% intervals beside the textbook risk estimates (test period, pooled)",
        tm["risk"],
        all_goals.get("test"),
        "on the test period",
    )
if tm.get("held_out_risk"):
    intervals(
        "Intervals on the held-out ticker (never seen in training)",
        tm["held_out_risk"],
        all_goals.get("held_out"),
        "on the held-out ticker",
    )
if tm.get("per_ticker"):
    st.subheader("Per ticker: ensemble against naive")
    rows = [{"ticker": t, "model": m, **v} for t, r in tm["per_ticker"].items() for m, v in r.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
if tm.get("held_out"):
    st.subheader("Held-out tickers (never seen in training)")
    rows = [{"ticker": t, "model": m, **v} for t, r in tm["held_out"].items() for m, v in r.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

st.subheader("Training runs")
runs = data.training_runs()
if runs is None or runs.empty:
    st.info(
        "No experiment tracking store yet. Create one with `make experiments` (runs A, A0, B and C) or `make train`; "
        "browse it with `make mlflow`."
    )
else:
    st.dataframe(runs, hide_index=True, width="stretch")
    metric = st.selectbox("Metric", [c for c in runs.columns if c.startswith("test_")], key="model_metric")
    import plotly.graph_objects as go

    shown = runs.drop_duplicates("run").sort_values("run")  # the newest run of each name
    fig = go.Figure(go.Bar(x=shown["run"], y=shown[metric], text=[f"{v:.6g}" for v in shown[metric]], textposition="outside"))
    if metric == "test_mase":
        fig.add_hline(y=1.0, line_dash="dash", annotation_text="naive forecast")
    lo, hi = float(shown[metric].min()), float(shown[metric].max())
    pad = (hi - lo) * 0.5 or abs(hi) * 0.01 or 1.0
    fig.update_layout(height=320, yaxis_range=[lo - pad, hi + pad], margin={"l": 10, "r": 10, "t": 30, "b": 10})
    st.plotly_chart(fig, width="stretch", key="model_runs_chart")
