"""Turn market data into requests and answers into tables. Pure: no Streamlit, no HTTP."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from models import metrics
from models.features import FEATURES, VOLATILITY, WINDOW, feature_frame, standardize, window

# The default view has data for every default ticker and lies inside each one's test period (stocks 2011-04 to
# 2013-02 in models/metrics.json; ^IXIC was never trained on), so its backtest is out of sample.
DEFAULT_TICKERS = ("AAPL", "MSFT", "^IXIC")
DEFAULT_END = dt.date(2013, 2, 28)
RANGES = {"1M": {"months": 1}, "6M": {"months": 6}, "1Y": {"years": 1}, "5Y": {"years": 5}, "Max": None}
DEFAULT_RANGE = "1Y"
COMPARE = "Compare"
MAX_TICKERS = 8
NOISE_CONFIDENCE = 0.55  # below this the direction is about a coin toss (the README: mean confidence 0.516)
NA = "n/a"
CSV_DECIMALS = 4  # prices to 1/100 of a cent: 57.5627, never 57.56270000000001
COVERAGE_HERE, WINKLER_HERE = "Coverage, this backtest (%)", "Winkler, this backtest"
COVERAGE_TEST, WINKLER_TEST = "Coverage, test period (%)", "Winkler, test period"


def _pct(x: float) -> str:
    return f"{100 * float(x):.1f}"


def contract_problem(card: dict) -> str | None:
    """Why this dashboard cannot build features for the endpoint's model, or None."""
    if card.get("window") != WINDOW or list(card.get("features", [])) != list(FEATURES):
        return (
            f"the endpoint's model expects window {card.get('window')} with features {card.get('features')}, "
            f"but this dashboard computes window {WINDOW} with {list(FEATURES)}: update the dashboard or the endpoint"
        )
    if list(card.get("scaler", {}).get("features", FEATURES)) != list(FEATURES):
        return "the endpoint's scaler lists its features in another order"
    return None


def request_features(ohlcv: pd.DataFrame, card: dict, end=None) -> list[float]:
    return window(ohlcv, card["scaler"], end=end).tolist()


def backtest_requests(ohlcv: pd.DataFrame, card: dict, start, end, max_days: int) -> pd.DataFrame:
    """One row per day in [start, end) that has a next day: its window (standardized), last and next close."""
    frame = feature_frame(ohlcv)
    values = standardize(frame.to_numpy(dtype=np.float64), card["scaler"])
    closes = frame["close"].to_numpy()
    vol20 = frame.iloc[:, VOLATILITY].to_numpy()
    rows = []
    for i in range(WINDOW - 1, len(frame) - 1):
        day = frame.index[i]
        if (start is None or day >= pd.Timestamp(start)) and (end is None or day <= pd.Timestamp(end)):
            rows.append(
                {
                    "as_of": day,  # the window's last day: where models.evaluate's test spans are measured
                    "date": frame.index[i + 1],
                    "features": values[i - WINDOW + 1 : i + 1].reshape(-1).tolist(),
                    "last_close": closes[i],
                    "actual": closes[i + 1],
                    "vol20": vol20[i],
                }
            )
    return pd.DataFrame(rows[-max_days:])


def interval_comparison(bt: pd.DataFrame, card: dict, ticker: str) -> pd.DataFrame:
    """The served interval beside the rolling-volatility and GARCH intervals: coverage (%) and Winkler score (relative to
    the last close, lower is better) on this backtest where it can be computed here, and on the model's test period
    as models.evaluate measured it (GARCH needs its fitted parameters, so it is shown from the evaluation only).
    A figure that does not exist reads "n/a", never None."""
    tm = card.get("test_metrics", {})
    q = tm.get("calibration_q", {})
    evaluated = tm.get("per_ticker_risk", {}).get(ticker, {})
    rel = (bt["actual"] / bt["last_close"]).to_numpy()
    live = {"served": ((bt["low"] / bt["last_close"]).to_numpy(), (bt["high"] / bt["last_close"]).to_numpy())}
    if "rolling20" in q:
        half = q["rolling20"] * np.maximum(bt["vol20"].to_numpy(), metrics.VOL_FLOOR)
        live["rolling20"] = (np.exp(-half), np.exp(half))
    labels = {"served": "served (risk model)", "rolling20": "rolling 20-day volatility", "garch": "GARCH(1,1)"}
    rows = []
    for name, label in labels.items():
        row = {"Interval": label}
        low_high = live.get(name)
        row[COVERAGE_HERE] = _pct(np.mean((rel >= low_high[0]) & (rel <= low_high[1]))) if low_high else NA
        row[WINKLER_HERE] = f"{metrics.winkler(rel, *low_high):.4f}" if low_high else NA
        row[COVERAGE_TEST] = _pct(evaluated[name]["coverage"]) if name in evaluated else NA
        row[WINKLER_TEST] = f"{evaluated[name]['winkler']:.4f}" if name in evaluated else NA
        rows.append(row)
    return pd.DataFrame(rows)


def backtest_summary(bt: pd.DataFrame) -> dict:
    """MAE of the endpoint's predictions and of the naive forecast, and their ratio (MASE)."""
    mae = float(np.mean(np.abs(bt["prediction"] - bt["actual"])))
    naive = float(np.mean(np.abs(bt["last_close"] - bt["actual"])))
    covered = float(np.mean((bt["actual"] >= bt["low"]) & (bt["actual"] <= bt["high"]))) if "low" in bt else float("nan")
    return {"mae": mae, "naive_mae": naive, "mase": mae / naive if naive else float("nan"), "coverage": covered, "n": len(bt)}


def backtest_row(ticker: str, bt: pd.DataFrame, span: dict | None) -> dict:
    """One line of the backtest table: the summary's figures with their units, and where the days lie against the
    model's test period (`span`, from the card)."""
    s = backtest_summary(bt)
    return {
        "Ticker": ticker,
        "Days": s["n"],
        "MAE (price)": s["mae"],
        "Naive MAE (price)": s["naive_mae"],
        "MASE": s["mase"],
        "Coverage of the 80% interval (%)": 100 * s["coverage"],
        "Test period": test_period(bt["as_of"].iloc[0], bt["as_of"].iloc[-1], span),
    }


def forecast_row(ticker: str, answer: dict, source: str, last_date) -> dict:
    """One line of the forecasts table: readable headers with units, no developer columns (see request_details)."""
    last = answer.get("last_close")
    iv = answer["interval"]
    return {
        "Ticker": ticker,
        "As of": pd.Timestamp(last_date).date().isoformat(),
        "Last close": last,
        "Forecast (next close)": answer["prediction"],
        "Change (%)": (answer["prediction"] / last - 1) * 100 if last else float("nan"),
        "Confidence (%)": answer["confidence"] * 100,
        f"Low ({iv.get('level', 0.8):.0%})": iv["low"],
        f"High ({iv.get('level', 0.8):.0%})": iv["high"],
        "Data": source,  # a short key ("live", "snapshot"): data_note says the rest under the table, which fits 1280 px
    }


SNAPSHOT_ENDS = "The bundled snapshot ends in 2013 (stocks) and 2018 (indices)."


def data_note(rows: list[dict], end, fell_back: list[str], labels: dict[str, str]) -> str:
    """The line under the forecasts table: which market data each row used, the tickers whose live data was not
    available, and which rows' last day falls before the chosen date. Plain text: tickers are escaped by the caller."""
    used = sorted({r["Data"] for r in rows})
    stale = [f"{r['Ticker']} ({r['As of']})" for r in rows if r["As of"] < str(end)]
    return (
        f"Data: {', '.join(f'{u} = {labels.get(u, u)}' for u in used)}."
        + (f" Live data unavailable for {', '.join(fell_back)}: the bundled snapshot is used." if fell_back else "")
        + (f" {SNAPSHOT_ENDS}" if "snapshot" in used else "")
        + (f" Last day with data before {end}: {', '.join(stale)}." if stale else "")
    )


def request_details(ticker: str, answer: dict) -> dict:
    """The developer's view of one answer: what the main table leaves out."""
    return {
        "Ticker": ticker,
        "Latency (ms)": round(float(answer.get("latency_ms", 0.0)), 1),
        "Model version": str(answer.get("model_version", "")),
        "Request id": str(answer.get("request_id", "")),
    }


def within_noise(rows: list[dict], threshold: float = NOISE_CONFIDENCE) -> str | None:
    """One plain sentence naming the tickers whose forecast is no better than "tomorrow = today", or None."""
    weak = [r for r in rows if r["Confidence (%)"] < threshold * 100]
    if not weak:
        return None
    names = ", ".join(f"{r['Ticker']} ({r['Confidence (%)']:.0f}%)" for r in weak)
    return (
        f'For {names} the forecast is within noise of "tomorrow = today": a confidence near 50% means the model is '
        "barely surer of the direction than a coin toss, so read the interval, not the point."
    )


def parse_view(params: dict, source: str = "auto") -> dict:
    """A Forecast view from its query string; a part that is missing takes its default, a bad part is dropped.
    `?tickers=NVDA` is exactly NVDA (the defaults are not added); no `end` means the last day every ticker has."""

    from models.data import SOURCES, TICKER_RE

    has_tickers = "tickers" in params
    raw = [t.strip().upper() for t in str(params.get("tickers", "")).split(",") if t.strip()]
    tickers = (
        list(dict.fromkeys(t for t in raw if TICKER_RE.fullmatch(t)))[:MAX_TICKERS] if has_tickers else list(DEFAULT_TICKERS)
    )
    try:
        end = dt.date.fromisoformat(str(params.get("end", "")))
    except ValueError:
        end = DEFAULT_END if not has_tickers else None
    rng = str(params.get("range", DEFAULT_RANGE))
    chart = str(params.get("chart", COMPARE)).upper()
    chart = COMPARE if chart == COMPARE.upper() or chart not in tickers else chart
    src = str(params.get("source", source))
    return {
        "tickers": tickers,
        "range": rng if rng in RANGES else DEFAULT_RANGE,
        "end": end,
        "chart": chart,
        "source": src if src in SOURCES else source,
    }


def view_params(view: dict) -> dict:
    """The canonical query string of a view: every part written, so a link restores exactly this view. A view with
    no tickers has no end date yet: the link leaves it out rather than writing end=None."""
    params = {
        "tickers": ",".join(view["tickers"]),
        "range": view["range"],
        "end": "" if view["end"] is None else str(view["end"]),
        "chart": view["chart"],
        "source": view["source"],
    }
    return {k: v for k, v in params.items() if k != "end" or v}


def range_start(end, preset: str, first):
    """The first day of a preset range ending on `end` (Max: the first day there is data)."""
    if RANGES[preset] is None:
        return first
    return max(first, (pd.Timestamp(end) - pd.DateOffset(**RANGES[preset])).date())


def test_period(start, end, span: dict | None) -> str:
    """Where the forecasts made on [start, end] lie against the model's test period: a short label for a table."""
    if not span:
        return "not evaluated"
    if span.get("note"):
        return "never trained on"
    lo, hi = pd.Timestamp(span["test_from"]), pd.Timestamp(span["test_to"])
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    if s >= lo and e <= hi:
        return "inside"
    return "outside" if e < lo or s > hi else "partly outside"


def period_note(ticker: str, start, end, span: dict | None) -> str:
    """Says plainly where the forecasts made on [start, end] lie against the model's test period for this ticker."""
    where = test_period(start, end, span)
    if where == "not evaluated":
        return f"{ticker} was not in the model's evaluation: every day here is out of sample, but no test period was measured."
    if where == "never trained on":
        return f"{ticker}: {span['note']}."
    period = f"{ticker}'s test period ({span['test_from']} to {span['test_to']})"
    days = f"{ticker}'s backtested days ({pd.Timestamp(start):%Y-%m-%d} to {pd.Timestamp(end):%Y-%m-%d})"
    return {
        "inside": f"{days} lie inside {period}: these are out-of-sample forecasts.",
        "outside": f"{days} lie outside {period}: the model saw them in training or validation, so this flatters it.",
        "partly outside": f"{days} lie partly outside {period}: only the days inside it are out of sample.",
    }[where]


def normalised_closes(frames: dict[str, pd.DataFrame], start, end) -> dict[str, pd.Series]:
    """Each ticker's close over [start, end] rebased to 100 on its first day there: one scale for every ticker."""
    out = {}
    for t, df in frames.items():
        close = df["Close"][(df.index >= pd.Timestamp(start)) & (df.index <= pd.Timestamp(end))]
        if len(close) >= 2:
            out[t] = close / close.iloc[0] * 100
    return out


def backtest_table(bt: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """The backtest as the CSV download and the reader see it: one row per forecast, made as of one day for the next
    (the target day), prices in the ticker's units rounded to CSV_DECIMALS."""
    return pd.DataFrame(
        {
            "Ticker": ticker,
            "As of": pd.to_datetime(bt["as_of"]).dt.date.astype(str),
            "Target day": pd.to_datetime(bt["date"]).dt.date.astype(str),
            "Close as of": bt["last_close"],
            "Forecast": bt["prediction"],
            "Interval low": bt["low"],
            "Interval high": bt["high"],
            "Actual close": bt["actual"],
        }
    ).round(CSV_DECIMALS)


def target_day(ohlcv: pd.DataFrame, last_day) -> tuple[pd.Timestamp, float | None]:
    """The day a forecast made as of `last_day` is for, and its actual close when the data has it. The data's own next
    row is the target (its own calendar, DESIGN "Calendars"); past the data's end it is the next weekday."""
    from models.data import next_day

    target = next_day(ohlcv, last_day)
    return target, (float(ohlcv.loc[target, "Close"]) if target in ohlcv.index else None)


def outcome(answer: dict, actual: float | None) -> dict:
    """What the card says about a forecast: direction, how sure, and, once the target day's close is known, whether it
    fell inside the interval (a hit) and whether the direction was right."""
    last, pred, iv = answer.get("last_close"), answer["prediction"], answer["interval"]
    up = pred >= last if last else None
    out = {"direction": NA if up is None else ("up" if up else "down"), "sure": 100 * answer["confidence"]}
    if actual is not None:
        out["hit"] = iv["low"] <= actual <= iv["high"]
        out["direction_right"] = None if up is None or actual == last else (actual > last) == up
    return out


def card_lines(row: dict) -> tuple[str, str, str, str, str | None]:
    """A forecast card's text: (label, value, change, detail, actual-or-None). Plain text; tickers escaped by the caller."""
    level = row["Interval level (%)"]
    label = f"{row['Ticker']} · target {row['Target day']}"  # short: four cards a row at 1280 px
    detail = (
        f"{level:.0f}% range {row['Interval low']:,.2f} to {row['Interval high']:,.2f} · {row['Direction']}, "
        f"{row['Confidence (%)']:.0f}% sure · as of {row['As of']}, close {row['Last close']:,.2f}"
    )
    actual = None
    if row.get("Actual close") is not None:
        verdict = "hit (inside the range)" if row["Hit"] else "miss (outside the range)"
        right = {True: "direction right", False: "direction wrong", None: "no move"}[row["Direction right"]]
        actual = f"Actual close {row['Actual close']:,.2f}: {verdict}, {right}"
    return label, f"{row['Forecast (next close)']:,.2f}", f"{row['Change (%)']:+.2f}%", detail, actual


def card_row(row: dict, answer: dict, target, actual: float | None) -> dict:
    """forecast_row plus what the card shows: the target day, the interval level, and the outcome once known."""
    o = outcome(answer, actual)
    iv = answer["interval"]
    return {
        **row,
        "Target day": pd.Timestamp(target).date().isoformat(),
        "Direction": o["direction"],
        "Interval level (%)": 100 * iv.get("level", 0.8),
        "Interval low": iv["low"],
        "Interval high": iv["high"],
        "Actual close": actual,
        "Hit": o.get("hit"),
        "Direction right": o.get("direction_right"),
    }


def forecasts_csv(rows: list[dict]) -> str:
    """The forecasts as the CSV download holds them: as-of and target day named, floats rounded."""
    cols = ["Ticker", "As of", "Target day", "Last close", "Forecast (next close)", "Change (%)", "Confidence (%)"]
    cols += ["Interval level (%)", "Interval low", "Interval high", "Actual close", "Data"]
    return pd.DataFrame(rows)[cols].round(CSV_DECIMALS).to_csv(index=False)


def rebased_forecasts(frames: dict[str, pd.DataFrame], start, rows: list[dict]) -> pd.DataFrame:
    """Each card's forecast and interval on the comparison chart's scale (the close on its first day = 100)."""
    out = []
    for r in rows:
        close = frames[r["Ticker"]]["Close"]
        shown = close[close.index >= pd.Timestamp(start)]
        if shown.empty or pd.Timestamp(r["As of"]) < shown.index[0]:
            continue
        k = 100 / float(shown.iloc[0])
        out.append(
            {
                "ticker": r["Ticker"],
                "date": pd.Timestamp(r["Target day"]),
                "close": r["Forecast (next close)"] * k,
                "low": r["Interval low"] * k,
                "high": r["Interval high"] * k,
            }
        )
    return pd.DataFrame(out, columns=["ticker", "date", "close", "low", "high"])
