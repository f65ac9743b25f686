"""Model: the card the endpoint publishes at GET /model, its figures beside the naive forecast, and runs."""

import streamlit as st

from dashboard import charts, data, sidebar
from dashboard import model_tables as tables
from dashboard.text import feature_name, plain  # endpoint strings are shown as text, never Markdown
from ledger import aci, read
from ledger.store import DEFAULT_DB
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
    f"features ({plain(', '.join(map(feature_name, card['features'])))})."
)
with st.expander("For developers: the features as GET /model names them"):
    st.text(", ".join(map(str, card["features"])))
st.write(
    f"Trained on {plain(', '.join(map(str, card['tickers'])))}; never saw "
    f"{plain(', '.join(map(str, card.get('held_out', []))) or 'nothing held out')}. "
    f"Target: {plain(card.get('target', 'next close'))}."
)
weights = dict(zip(card["ensemble"]["members"], card["ensemble"]["weights"], strict=True))
st.write(
    "Ensemble weights (fitted on validation data): "
    + ", ".join(f"**{plain(tables.MODEL_NAMES.get(k, k))}** {v:.3f}" for k, v in weights.items())
)
cal = card["calibration"]
st.write(
    f"Interval: {plain(cal['method'])}; level {cal['level']}, q = {cal['q']:.3f}. "
    f"Volatility: {plain(card.get('volatility', 'volatility20'))}. Confidence: {plain(card.get('confidence', ''))}."
)

tm = card.get("test_metrics", {})
spans = tm.get("spans", {})
if tm.get("overall"):
    st.subheader("Test period, every ticker pooled")
    st.dataframe(tables.overall_table(tm["overall"]), hide_index=True, width="stretch")
    periods = ", ".join(f"{t} {s['test_from']} to {s['test_to']}" for t, s in spans.items() if t in card["tickers"])
    st.caption(
        f"Test periods: {periods or 'see the per-ticker table'}. MASE = MAE / the naive forecast's MAE: below 1 beats "
        "'tomorrow = today'. R² is not shown: on price levels the naive forecast scores about 0.99 too. The ridge "
        "regression is the ensemble's linear member."
    )


def intervals(title: str, block: dict, goals: dict | None, where: str) -> None:
    st.subheader(title)
    st.dataframe(
        tables.risk_table(block, tm.get("risk_labels", {})),
        hide_index=True,
        width="stretch",
        column_config={"interval": st.column_config.Column(pinned=True)},  # eleven columns scroll: the name stays
    )
    served = block.get("served") or {}
    terciles = [v for v in served.get("coverage_by_vol_tercile") or [] if isinstance(v, int | float)]
    ratios = {k: goals.get(f"winkler_vs_{k}") for k in ("rolling", "garch")} if goals else {}
    ratios = {k: v for k, v in ratios.items() if isinstance(v, int | float)}
    panels = {}
    if len(terciles) == 3:
        panels["coverage (%) by volatility third"] = (
            ["calm", "middle", "stormy"],
            [100 * v for v in terciles],
            80.0,
            "80% level",
        )
    if ratios:
        names = {"rolling": "rolling volatility", "garch": "GARCH"}
        panels["Winkler, x the baseline's (lower is better)"] = (
            [names[k] for k in ratios],
            list(ratios.values()),
            [{"rolling": 0.95, "garch": 1.0}[k] for k in ratios],
            "goal: the tick on each bar",
        )
    if panels:
        st.plotly_chart(charts.bar_panels(panels), width="stretch", key=f"model_goals_{where}")
    if goals:
        # each goal as models.evaluate judged it (manifest.json's test_metrics.goals), with the figure it judged
        served = block.get("served") or {}
        cov = served.get("coverage")
        storm = (served.get("coverage_by_vol_tercile") or [None])[-1]
        cov, storm = (v if isinstance(v, int | float) else None for v in (cov, storm))  # a card's figures, or none
        checks = {
            ("coverage 77–83%" if cov is None else f"coverage {cov:.1%} (goal 77–83%)"): goals.get("coverage_77_83"),
            ("stormy third ≥ 75%" if storm is None else f"stormy third {storm:.1%} (goal ≥ 75%)"): goals.get("top_tercile_75"),
            f"Winkler {goals['winkler_vs_rolling']:.3f}x the rolling volatility's (goal ≤ 0.95)": goals.get(
                "winkler_095_rolling"
            ),
            f"Winkler {goals['winkler_vs_garch']:.3f}x GARCH's (goal ≤ 1)": goals.get("winkler_le_garch"),
        }
        st.caption(
            f"Goals {where}: "
            + "; ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in checks.items())
            + ". Scores are on prices relative to the last close (x last close); lower is better. Every "
            "interval is calibrated on the same validation data."
        )
        missed = [name for name, ok in checks.items() if not ok]
        if missed:
            st.warning(f"Missed {where}: " + "; ".join(missed) + ".")


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
MASE_HELP = {"MASE": st.column_config.Column(help="MAE / the naive forecast's MAE: naive = 1, below 1 beats it")}
if tm.get("per_ticker"):
    st.subheader("Per ticker: ensemble against naive")
    st.dataframe(tables.per_ticker_table(tm["per_ticker"], spans), hide_index=True, width="stretch", column_config=MASE_HELP)
if tm.get("held_out"):
    st.subheader("Held-out tickers (never seen in training)")
    st.dataframe(tables.per_ticker_table(tm["held_out"], spans), hide_index=True, width="stretch", column_config=MASE_HELP)
    st.caption("Never seen in training, so every sample is a test sample.")

st.subheader("Calibrating the served interval from the track record")
st.text("The rule, fixed before anything was measured: " + aci.rule_text() + ".")
try:
    verdicts = data.calibration_verdict(str(DEFAULT_DB))
except read.NoLedger as e:
    st.info(f"No verdict yet: {e.plain}.")
except ValueError as e:  # too little held-out record to judge
    st.info(f"No verdict yet: {plain(e)}")
else:
    version = card["version"] if card["version"] in verdicts else sorted(verdicts)[-1]
    v = verdicts[version]
    st.dataframe(tables.calibration_rows(v), hide_index=True, width="stretch")
    st.text(
        f"Served for {version}: "
        + (v["serve"] or "none. No calibrator meets the rule, so the API serves the model's own interval, labelled 'none'.")
        + f" Source: python -m ledger.aci on {DEFAULT_DB}."
    )

st.subheader("Training runs")
runs = data.training_runs()
summary = tables.read_runs_summary() if runs is None or runs.empty else None
if runs is not None and not runs.empty:
    records, source = runs.to_dict(orient="records"), "the MLflow tracking store (browse it with `make mlflow`)"
elif summary:
    records = summary["runs"]
    source = (
        f"the committed summary of the runs, exported by `make experiments` on {summary['exported']} (no tracking store here)"
    )
else:
    records, source = [], ""
if not records:
    st.info(
        "No experiment tracking store yet, and no committed summary of runs. Create one with `make experiments` (runs A, A0, B "
        "and C) or `make train`; browse it with `make mlflow`."
    )
else:
    shown = tables.runs_table(records)
    st.dataframe(shown, hide_index=True, width="stretch", column_config={"run": st.column_config.Column(pinned=True)})
    st.caption(f"Source: {source}. A is the served configuration; A0 is A with the old interval.")
    latest = {}
    for r in records:
        latest.setdefault(r["run"], r)
    order = sorted(n for n in latest if all(latest[n].get(k) is not None for k in ("model_bytes", "latency_p50_us")))
    if order:  # the figures the table scrolls out of sight, which decide between runs
        wr = [n for n in order if latest[n].get("test_winkler_vs_rolling") is not None]
        st.plotly_chart(
            charts.bar_panels(
                {
                    "Winkler, x rolling volatility's": (wr, [latest[n]["test_winkler_vs_rolling"] for n in wr], 0.95, "goal"),
                    "ONNX size (kB)": (order, [latest[n]["model_bytes"] / 1e3 for n in order], None, ""),
                    "p50 latency (µs)": (order, [latest[n]["latency_p50_us"] for n in order], None, ""),
                },
                height=280,
            ),
            width="stretch",
            key="model_runs_panels",
        )
    metric = st.selectbox("Metric", [label for label, _ in tables.RUN_COLUMNS.values()], key="model_metric")
    key = next(k for k, (label, _) in tables.RUN_COLUMNS.items() if label == metric)
    newest = {}
    for r in records:
        newest.setdefault(r["run"], r)
    names = sorted(n for n in newest if newest[n].get(key) is not None)
    values = [float(newest[n][key]) for n in names]
    if values:
        import plotly.graph_objects as go

        fmt = dict(tables.RUN_COLUMNS.values())[metric]
        fig = go.Figure(go.Bar(x=names, y=values, text=[fmt(v) for v in values], textposition="outside"))
        if key == "test_mase":
            fig.add_hline(y=1.0, line_dash="dash", annotation_text="naive forecast")
        lo, hi = min([*values, 1.0]) if key == "test_mase" else min(values), max(values)
        pad = max((hi - lo) * 0.5, abs(hi) * 0.05) or 1.0  # never less than 5% of the value: 0.0007 must look small
        fig.update_layout(
            height=320, yaxis_range=[lo - pad, hi + pad], yaxis_title=metric, margin={"l": 10, "r": 10, "t": 30, "b": 10}
        )
        st.plotly_chart(fig, width="stretch", key="model_runs_chart")
