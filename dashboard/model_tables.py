"""The Model page's tables, readable: named models, percentages, test periods, a unit in every header, no None cells.

Pure functions from the model card (GET /model) or the runs summary to DataFrames of display strings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dashboard.config import ROOT

RUNS_SUMMARY = ROOT / "models" / "runs.json"  # written by `make experiments` (models/tracking.py), committed
MISSING = "—"
# the README's names: the linear member is a ridge regression
MODEL_NAMES = {"ensemble": "ensemble (served)", "lstm": "LSTM", "linear": "ridge", "naive": "naive (tomorrow = today)"}


def pct(value) -> str:
    return MISSING if value is None or value != value else f"{value * 100:.1f}%"


def num(value, digits: int = 4) -> str:
    return MISSING if value is None or value != value else f"{value:,.{digits}f}"


def points(value, digits: int = 3) -> str:
    """A figure already in percent (the metrics' *_pct)."""
    return MISSING if value is None or value != value else f"{value:,.{digits}f}%"


def direction(value) -> str:
    return "no call" if value is None or value != value else pct(value)  # the naive forecast never calls a direction


def coverage(value) -> str:
    return "no interval" if value is None or value != value else pct(value)  # members have no interval of their own


def drop_empty(df: pd.DataFrame) -> pd.DataFrame:
    """Columns the card did not publish at all are left out rather than shown as a column of dashes."""
    return df[[c for c in df.columns if not (df[c] == MISSING).all()]]


def overall_table(overall: dict) -> pd.DataFrame:
    """Every model pooled over the test period; errors as a percentage of the last close (scale-free)."""
    rows = [
        {
            "model": MODEL_NAMES.get(name, name),
            "forecasts": f"{m.get('n', 0):,}",
            "MAE (% of last close)": points(m.get("mae_pct")),
            "RMSE (% of last close)": points(m.get("rmse_pct")),
            "MASE (naive = 1)": num(m.get("mase")),
            "direction right": direction(m.get("directional_accuracy")),
            "80% interval coverage": coverage(m.get("interval_coverage")),
        }
        for name, m in overall.items()
    ]
    return drop_empty(pd.DataFrame(rows))


def risk_table(block: dict, labels: dict) -> pd.DataFrame:
    """Each interval's coverage (overall and by volatility third) and its scores, in units of the last close."""
    rows = []
    for name, m in block.items():
        calm, middle, stormy = m["coverage_by_vol_tercile"]
        rows.append(
            {
                "interval": labels.get(name, name),
                "coverage": pct(m["coverage"]),
                "calm third": pct(calm),
                "middle third": pct(middle),
                "stormy third": pct(stormy),
                "Winkler (x last close)": num(m["winkler"], 5),
                "CRPS (x last close)": num(m["crps"], 6),
                "pinball 10% (x last close)": num(m["pinball_10"], 6),
                "pinball 50% (x last close)": num(m["pinball_50"], 6),
                "pinball 90% (x last close)": num(m["pinball_90"], 6),
                "mean width (% of price)": points(m["mean_width_pct"], 2),
            }
        )
    return pd.DataFrame(rows)


def period(spans: dict, ticker: str) -> str:
    s = spans.get(ticker)
    return f"{s['test_from']} to {s['test_to']} ({s['n_test']:,} days)" if s else MISSING


def per_ticker_table(per_ticker: dict, spans: dict) -> pd.DataFrame:
    """Ensemble against naive for each ticker over its own test period; MAE in the ticker's price units."""
    rows = [
        {
            "ticker": ticker,
            "test period": period(spans, ticker),
            "model": MODEL_NAMES.get(name, name),
            "MAE (price)": num(m.get("mae"), 3),  # short headers, so all seven columns fit a 1280 px window
            "MASE": num(m.get("mase")),  # the view gives it the help "naive = 1"
            "direction right": direction(m.get("directional_accuracy")),
            "80% coverage": coverage(m.get("interval_coverage")),
        }
        for ticker, models in per_ticker.items()
        for name, m in models.items()
    ]
    return drop_empty(pd.DataFrame(rows))


def read_runs_summary(path: Path | None = None) -> dict | None:
    """models/runs.json: the committed summary of the runs behind the served model (a fresh clone has no mlruns/)."""
    try:
        doc = json.loads((path or RUNS_SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("runs") else None


RUN_COLUMNS = {  # tracking's metric name -> (header with its unit, formatter)
    "test_mase": ("MASE (naive = 1)", num),
    "test_mae_pct": ("MAE (% of last close)", lambda v: points(v, 4)),
    "test_directional_accuracy": ("direction right", pct),
    "test_interval_coverage": ("80% coverage", pct),
    "test_coverage_stormy": ("stormy-third coverage", pct),
    "test_winkler": ("Winkler (x last close)", lambda v: num(v, 5)),
    "test_winkler_vs_rolling": ("Winkler vs rolling volatility", lambda v: num(v, 3) + "x"),
    "model_bytes": ("ONNX size (kB)", lambda v: num(v / 1e3, 0)),
    "latency_p50_us": ("p50 latency (µs)", lambda v: num(v, 0)),
}


def runs_table(records: list[dict]) -> pd.DataFrame:
    """The newest run of each name: its LSTM, its interval, and the test metrics, each header with its unit."""
    newest = {}
    for r in records:  # records come newest first from the store
        newest.setdefault(r["run"], r)
    rows = []
    for name in sorted(newest):
        r = newest[name]
        row = {
            "run": name,
            "LSTM (layers x units)": f"{r['layers']} x {r['hidden']}" if r.get("layers") and r.get("hidden") else MISSING,
            "interval": {"risk": "risk model", "vol20": "q x volatility20"}.get(r.get("interval"), r.get("interval") or MISSING),
        }
        row.update(
            {label: fmt(r[k]) if r.get(k) is not None and r[k] == r[k] else MISSING for k, (label, fmt) in RUN_COLUMNS.items()}
        )
        row["trained"] = str(r.get("started") or MISSING)[:10]
        rows.append(row)
    return pd.DataFrame(rows)


def calibration_rows(verdict: dict) -> list[dict]:
    """One row per candidate calibrator and held-out series: the figures `python -m ledger.aci` prints."""
    rows = []
    for method, c in verdict["candidates"].items():
        for ticker, f in c["series"].items():
            failed = [k for k, ok in f["checks"].items() if not ok]
            rows.append({
                "calibrator": method, "held-out series": ticker, "n after warm-up": f["n"],
                "coverage": pct(f["coverage_calibrated"]), "model's own": pct(f["coverage_plain"]),
                "Winkler vs own": num(f["winkler_calibrated"] / f["winkler_plain"]),
                "vs rolling": num(f["winkler_calibrated"] / f["winkler_rolling"]),
                "vs GARCH": num(f["winkler_calibrated"] / f["winkler_garch"]),
                "rule": "passes" if not failed else "fails: " + ", ".join(failed),
            })  # fmt: skip
    return rows
