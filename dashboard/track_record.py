"""The Track record page's figures and view state. Pure: frames in (from ledger.read), figures out; no Streamlit."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ledger.scoring import COVERAGE_BAND

PREFIX = "track_"  # the page's widget keys and query parameters


def parse_view(params: dict, tickers: list[str], versions: list[str], records: list[str]) -> dict:
    """The view a URL names; anything the ledger does not hold falls back to the first choice."""

    def pick(name: str, options: list[str]) -> str | None:
        value = params.get(PREFIX + name)
        return value if value in options else (options[0] if options else None)

    return {"ticker": pick("ticker", tickers), "version": pick("version", versions), "record": pick("record", records)}


FIRST_VIEW_DAYS = 250  # the forecast chart opens on the latest year, where the band is visible; zoom out for the rest


def forecast_figure(s: pd.DataFrame) -> go.Figure:
    """Forecasts against the realised close, with the interval band each forecast carried."""
    x = pd.to_datetime(s["target_date"])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=s["high"], line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(x=x, y=s["low"], fill="tonexty", line={"width": 0}, name="80% interval", fillcolor="rgba(220,20,60,0.15)")
    )
    if "plain_low" in s and not (s["plain_low"].equals(s["low"]) and s["plain_high"].equals(s["high"])):
        # where calibration served another band, the model's own is drawn beside it
        for col, legend in (("plain_low", True), ("plain_high", False)):
            fig.add_trace(go.Scatter(x=x, y=s[col], name="model's own 80% interval", showlegend=legend,
                                     line={"color": "gray", "width": 1, "dash": "dot"}))  # fmt: skip
    fig.add_trace(go.Scatter(x=x, y=s["close"], name="realised close", line={"color": "black", "width": 1}))
    fig.add_trace(go.Scatter(x=x, y=s["prediction"], name="forecast", line={"color": "crimson", "width": 1}))
    fig.update_layout(height=380, margin={"t": 30, "b": 10}, yaxis_title="price", legend={"orientation": "h"})
    recent = s.iloc[-FIRST_VIEW_DAYS:]
    lo, hi = float(recent[["low", "close"]].min().min()), float(recent[["high", "close"]].max().max())
    pad = (hi - lo) * 0.05
    fig.update_xaxes(range=[pd.to_datetime(recent["target_date"].iloc[0]), x.iloc[-1]])
    fig.update_yaxes(range=[lo - pad, hi + pad])
    return fig


def coverage_figure(s: pd.DataFrame) -> go.Figure:
    x = pd.to_datetime(s["target_date"])
    fig = go.Figure()
    fig.add_hrect(y0=COVERAGE_BAND[0], y1=COVERAGE_BAND[1], fillcolor="green", opacity=0.1, line_width=0)
    fig.add_trace(go.Scatter(x=x, y=s["coverage_rolling60"], name="served interval", line={"color": "navy"}))
    if "coverage_plain_rolling60" in s:
        fig.add_trace(
            go.Scatter(x=x, y=s["coverage_plain_rolling60"], name="model's own interval", line={"color": "gray", "dash": "dot"})
        )
    fig.add_hline(y=0.8, line_dash="dot", line_color="gray")
    fig.update_layout(
        height=300, margin={"t": 30, "b": 10}, yaxis={"range": [0.4, 1.0], "tickformat": ".0%"}, legend={"orientation": "h"}
    )
    return fig


def calibration_note(s: pd.DataFrame) -> str:
    """What the latest forecast's interval was: the calibration label the API sent, as text."""
    import json

    raw = s["calibration"].iloc[-1] if "calibration" in s else None
    if raw is None or (isinstance(raw, float) and pd.isna(raw)):
        return "Served interval: the model's own (no calibration applied on the latest forecast)."
    try:
        c = json.loads(raw)
        return (
            f"Served interval: calibrated by {c['method']}, factor {float(c['factor']):.3f}, "
            f"learned from {c['n']} scored forecasts up to {c['as_of']}."
        )
    except (ValueError, KeyError, TypeError):
        return "Served interval: calibrated (its label is unreadable)."


def winkler_figure(s: pd.DataFrame) -> go.Figure:
    """Cumulative mean Winkler score of the served interval and both baselines (relative prices; lower is better)."""
    x = pd.to_datetime(s["target_date"])
    fig = go.Figure()
    names = {"cum_winkler": "served", "cum_winkler_rolling": "rolling 20-day volatility", "cum_winkler_garch": "GARCH(1,1)"}
    for col, name in names.items():
        fig.add_trace(go.Scatter(x=x, y=s[col], name=name))
    fig.update_layout(height=300, margin={"t": 30, "b": 10}, yaxis_title="mean Winkler so far", legend={"orientation": "h"})
    return fig
