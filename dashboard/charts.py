"""Plotly figures, and the Compare view's Vega-Lite chart. Pure: data in, figure out."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.text import FEATURE_NAMES
from models.features import FEATURES

MOVING_AVERAGES = (20, 50)


# Each snapshot ticker has its own colour, whatever else is shown (adding IBM never recolours MSFT); any other symbol
# takes one of the remaining colours from its name alone, the next free one when two such symbols collide.
PALETTE = (
    *("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2"),  # the snapshot's tickers
    *("#eeca3b", "#9d755d", "#ff9da6", "#17becf", "#7f7f7f", "#bcbd22", "#393b79", "#8c564b", "#d62728", "#637939"),
)
FIXED_COLOURS = {"AAPL": 0, "MSFT": 1, "^IXIC": 2, "IBM": 3, "^GSPC": 4, "GOOG": 5}


def ticker_colours(tickers: list[str]) -> dict[str, str]:
    """A colour per ticker that depends on the ticker, not on which others are shown or in what order."""
    import zlib

    free = list(range(len(FIXED_COLOURS), len(PALETTE)))
    out, taken = {t: PALETTE[FIXED_COLOURS[t]] for t in tickers if t in FIXED_COLOURS}, set()
    for t in sorted(t for t in tickers if t not in FIXED_COLOURS):
        i = zlib.crc32(t.encode()) % len(free)
        while free[i] in taken and len(taken) < len(free):
            i = (i + 1) % len(free)
        taken.add(free[i])
        out[t] = PALETTE[free[i]]
    return {t: out[t] for t in tickers}


def compare(closes: dict[str, pd.Series], forecasts: pd.DataFrame | None = None) -> alt.Chart:
    """Every ticker's close rebased to 100, one line each, run on (dashed) to its forecast on the target day with the
    interval as a bar (`forecasts`: ticker, date, close, low, high, already rebased). The y axis spans the data, not 0
    upward: a 10% move on a scale from 0 is a flat line. Vega-Lite, not Plotly: the first chart a visitor waits for
    needs no 4.7 MB bundle."""
    long = pd.DataFrame(closes).rename_axis("date").reset_index().melt("date", var_name="ticker", value_name="close")
    colours = ticker_colours(list(closes))
    colour = alt.Color(
        "ticker:N", title="ticker", scale=alt.Scale(domain=list(colours), range=list(colours.values())), sort=list(colours)
    )
    y = alt.Y("close:Q", title="close, first day of the range = 100", scale=alt.Scale(zero=False))
    tooltip = ["ticker:N", alt.Tooltip("date:T"), alt.Tooltip("close:Q", format=".1f")]
    history = alt.Chart(long.dropna()).mark_line().encode(x=alt.X("date:T", title=None), y=y, color=colour, tooltip=tooltip)
    if forecasts is None or forecasts.empty:
        return history.properties(height=420)
    last = long.dropna().groupby("ticker").tail(1)
    bridge = pd.concat([last, forecasts[["ticker", "date", "close"]]])
    # each diamond is labelled for screen readers (and the browser test): "forecast AAPL" in the SVG's aria-label
    f = forecasts.assign(mark="forecast " + forecasts["ticker"])
    layers = [
        history,
        alt.Chart(bridge).mark_line(strokeDash=[4, 3]).encode(x="date:T", y=y, color=colour, detail="ticker:N"),
        alt.Chart(f).mark_rule(strokeWidth=3, opacity=0.5).encode(x="date:T", y="low:Q", y2="high:Q", color=colour),
        alt.Chart(f)
        .mark_point(shape="diamond", size=90, filled=True)
        .encode(
            x="date:T",
            y=y,
            color=colour,
            description="mark:N",
            tooltip=[
                "ticker:N",
                alt.Tooltip("date:T", title="target day"),
                alt.Tooltip("close:Q", format=".1f", title="forecast"),
                alt.Tooltip("low:Q", format=".1f", title="80% low"),
                alt.Tooltip("high:Q", format=".1f", title="80% high"),
            ],
        ),
    ]
    # SVG, not canvas: the marks are in the page, so a reader's screen reader (and the browser test) can find them
    return alt.layer(*layers).properties(height=420, usermeta={"embedOptions": {"renderer": "svg"}})


def candlestick(df: pd.DataFrame, ticker: str, answer: dict | None = None, band: pd.DataFrame | None = None) -> go.Figure:
    """Prices with moving averages, the endpoint's one-day-ahead 80% interval over the days shown (`band`: date, low,
    high, each made the day before) and tomorrow's forecast with its interval."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.03)
    if band is not None and not band.empty:
        b = band.sort_values("date")
        if answer is not None:  # the band runs on into tomorrow
            nd = df.index[-1] + pd.tseries.offsets.BDay(1)
            b = pd.concat([b, pd.DataFrame([{"date": nd, **{k: answer["interval"][k] for k in ("low", "high")}}])])
        fig.add_trace(go.Scatter(x=b["date"], y=b["high"], line={"width": 0}, showlegend=False, hoverinfo="skip"), 1, 1)
        fig.add_trace(
            go.Scatter(
                x=b["date"],
                y=b["low"],
                fill="tonexty",
                line={"width": 0},
                name="80% interval (day ahead)",
                fillcolor="rgba(220,20,60,0.12)",
            ),
            1,
            1,
        )
    fig.add_trace(
        go.Candlestick(x=df.index, open=df["Open"], high=df["High"], low=df["Low"], close=df["Close"], name=ticker), 1, 1
    )
    for n in MOVING_AVERAGES:
        fig.add_trace(go.Scatter(x=df.index, y=df["Close"].rolling(n).mean(), name=f"MA {n}", line={"width": 1}), 1, 1)
    if answer is not None:
        nd = df.index[-1] + pd.tseries.offsets.BDay(1)
        iv = answer["interval"]
        fig.add_trace(
            go.Scatter(
                x=[nd],
                y=[answer["prediction"]],
                mode="markers",
                name=f"forecast ({iv['level']:.0%} interval)",
                marker={"size": 11, "symbol": "diamond", "color": "crimson"},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [iv["high"] - answer["prediction"]],
                    "arrayminus": [answer["prediction"] - iv["low"]],
                },
            ),
            1,
            1,
        )
    fig.add_trace(go.Bar(x=df.index, y=df["Volume"], name="volume", marker={"color": "rgba(100,110,140,0.5)"}), 2, 1)
    fig.update_layout(
        height=520,
        xaxis_rangeslider_visible=False,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.06},
    )
    return fig


def backtest(bt: pd.DataFrame, ticker: str) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=bt["date"], y=bt["high"], line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(
            x=bt["date"], y=bt["low"], fill="tonexty", line={"width": 0}, name="80% interval", fillcolor="rgba(220,20,60,0.12)"
        )
    )
    fig.add_trace(go.Scatter(x=bt["date"], y=bt["actual"], name="actual close", line={"color": "black"}))
    fig.add_trace(go.Scatter(x=bt["date"], y=bt["last_close"], name="naive (yesterday's close)", line={"dash": "dot"}))
    fig.add_trace(go.Scatter(x=bt["date"], y=bt["prediction"], name="endpoint's forecast", line={"color": "crimson"}))
    fig.update_layout(
        height=380,
        title=f"{ticker}: one-day-ahead forecasts",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def window_heatmap(features: list[float]) -> go.Figure:
    z = np.asarray(features).reshape(-1, len(FEATURES)).T
    fig = go.Figure(
        go.Heatmap(
            z=z,
            y=[FEATURE_NAMES[f] for f in FEATURES],
            x=list(range(-z.shape[1] + 1, 1)),
            colorscale="RdBu",
            zmid=0,
            colorbar={"title": "z-score"},
        )
    )
    fig.update_layout(height=360, xaxis_title="trading day (0 = last)", margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def cost_curves(
    curves: dict[str, tuple[list[float], list[float]]], breakpoints: dict[str, float], current: float | None
) -> alt.Chart:
    """Monthly cost against calls per day on log axes, free-tier breakpoints and the current traffic as vertical rules.
    A month inside the free tier costs $0, which a log axis cannot draw: that stretch is left out rather than drawn as
    a flat line at a made-up floor (the page's caption names it). Vega-Lite, like the Forecast
    page's first chart: the page's first chart waits for no Plotly bundle."""
    rows = [
        {"front door": name, "calls a day": x, "USD a month": y}
        for name, (xs, ys) in curves.items()
        for x, y in zip(xs, ys, strict=True)
        if y > 0
    ]
    data = pd.DataFrame(rows, columns=["front door", "calls a day", "USD a month"])
    x = alt.X("calls a day:Q", scale=alt.Scale(type="log"), title="calls per day")
    lines = (
        alt.Chart(data)
        .mark_line()
        .encode(
            x=x,
            y=alt.Y("USD a month:Q", scale=alt.Scale(type="log"), title="USD per month (list prices)"),
            color=alt.Color("front door:N", legend=alt.Legend(orient="bottom", columns=3)),
            strokeDash=alt.StrokeDash("front door:N", legend=None),
            tooltip=["front door:N", alt.Tooltip("calls a day:Q", format=",.0f"), alt.Tooltip("USD a month:Q", format="$,.4f")],
        )
    )
    marks = {**breakpoints, **({"your traffic": current} if current else {})}
    rules = alt.Chart(pd.DataFrame([{"mark": k, "calls a day": v} for k, v in marks.items()])).mark_rule(strokeDash=[4, 3])
    rules = rules.encode(
        x=x,
        color=alt.condition(alt.datum.mark == "your traffic", alt.value("crimson"), alt.value("gray")),
        tooltip=["mark:N", alt.Tooltip("calls a day:Q", format=",.0f")],
    )
    return alt.layer(lines, rules).properties(height=420)


def memory_tradeoff(df: pd.DataFrame) -> go.Figure:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(x=df["memory_mb"], y=df["duration_ms"], name="duration (ms)", mode="lines+markers"), secondary_y=False
    )
    fig.add_trace(
        go.Scatter(x=df["memory_mb"], y=df["usd_per_million"], name="USD per million requests", mode="lines+markers"),
        secondary_y=True,
    )
    fig.update_layout(height=340, xaxis_title="memory (MB)", margin={"l": 10, "r": 10, "t": 30, "b": 10})
    fig.update_yaxes(title_text="duration (ms)", secondary_y=False)
    fig.update_yaxes(title_text="USD / 1M requests", secondary_y=True)
    return fig


def bar_panels(panels: dict[str, tuple[list[str], list[float], float | list[float] | None, str]], height: int = 300) -> go.Figure:
    """Small bar charts side by side, each on an axis from 0 (a bar's length is its value) with its goal as a dashed
    line: {title: (names, values, goal or None, goal label)}. What a wide table hid, at a glance."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels), horizontal_spacing=0.08)
    for i, (names, values, goal, label) in enumerate(panels.values(), start=1):
        fig.add_trace(
            go.Bar(x=names, y=values, text=[f"{v:.3g}" for v in values], textposition="outside", showlegend=False), 1, i
        )
        goals = goal if isinstance(goal, list) else None  # one goal per bar: a crimson tick on each
        top = max([*values, *(goals or [goal or 0])]) * 1.2 or 1.0
        fig.update_yaxes(range=[0, top], row=1, col=i)
        if goals:
            tick = {"symbol": "line-ew", "size": 60, "line": {"width": 3, "color": "crimson"}}
            fig.add_trace(go.Scatter(x=names, y=goals, mode="markers", marker=tick, name=label, showlegend=False), 1, i)
            fig.add_annotation(text=label, showarrow=False, xref="paper", x=1, y=top, row=1, col=i, font={"color": "crimson"})
        elif goal is not None:
            fig.add_hline(y=goal, line_dash="dash", line_color="crimson", annotation_text=label, row=1, col=i)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig
