"""Measured usage of this deployment: the local API's invocation log, or CloudWatch. Pure apart from reading."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np

from models.cloudwatch import cloudwatch_usage  # noqa: F401  (the one reader; the cost monitor calls usage.cloudwatch_usage)

MIN_SPAN_H = 1.0  # never project a month from less than an hour of traffic


def read_invocations(path: Path, limit: int = 200_000) -> list[dict]:
    if not path.exists():
        return []
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a crash: skip it, keep the rest
    return out[-limit:]


def _p50(xs: list[float]) -> float | None:
    return float(np.percentile(xs, 50)) if xs else None


def summarize(records: list[dict], days: int = 30) -> dict | None:
    """Counts, durations, billed ms, cold starts and a monthly projection from invocation records.

    A record's "predictions" says how many forecasts the call carried (1 single, N a batch, 0 /health, /model and
    errors). Records written before that field existed are counted as calls but left out of every per-prediction
    figure ("unlabelled"), since a 64-window batch and a single forecast cannot be told apart without it.
    """
    recs = [r for r in records if r.get("billed_ms")]
    if not recs:
        return None
    ts = [datetime.fromisoformat(r["ts"].replace("Z", "+00:00")) for r in recs]
    span_h = max(MIN_SPAN_H, (max(ts) - min(ts)).total_seconds() / 3600)
    dur = np.array([r["duration_ms"] for r in recs])
    billed = np.array([r["billed_ms"] for r in recs])
    colds = [r for r in recs if r.get("cold_start")]
    init = [r["init_ms"] for r in colds if r.get("init_ms")]
    mem = [r["max_memory_used_mb"] for r in recs if r.get("max_memory_used_mb")]
    labelled = [r for r in recs if isinstance(r.get("predictions"), int) and not isinstance(r.get("predictions"), bool)]
    predicting = [r for r in labelled if r["predictions"] > 0]
    singles = [r for r in predicting if r["predictions"] == 1]
    batches = [r for r in predicting if r["predictions"] > 1]
    n_pred = sum(r["predictions"] for r in predicting)
    return {
        "invocations": len(recs),
        "errors": sum(1 for r in recs if r.get("status", 200) >= 500),
        "client_errors": sum(1 for r in recs if 400 <= r.get("status", 200) < 500),
        "span_hours": span_h,
        "logged_minutes": (max(ts) - min(ts)).total_seconds() / 60,  # what the log covers; span_hours is at least MIN_SPAN_H
        "first": min(ts).isoformat(),
        "last": max(ts).isoformat(),
        "duration_p50_ms": float(np.percentile(dur, 50)),
        "duration_p99_ms": float(np.percentile(dur, 99)),
        "billed_mean_ms": float(billed.mean()),
        "cold_starts": len(colds),
        "cold_start_share": len(colds) / len(recs),
        "init_ms_mean": float(np.mean(init)) if init else 0.0,
        "max_memory_mb": max(mem) if mem else None,
        "memory_mb": recs[-1].get("memory_mb"),
        "projected_requests_per_day": len(recs) / span_h * 24,
        "projected_month_requests": len(recs) / span_h * 24 * days,
        # per prediction: only records that say how many predictions they carried
        "unlabelled": len(recs) - len(labelled),
        "predictions": n_pred,
        "predict_calls": len(predicting),
        "single_calls": len(singles),
        "batch_calls": len(batches),
        "single_p50_ms": _p50([r["duration_ms"] for r in singles]),
        "batch_p50_ms": _p50([r["duration_ms"] for r in batches]),
        "batch_mean_size": sum(r["predictions"] for r in batches) / len(batches) if batches else None,
        "duration_per_prediction_ms": sum(r["duration_ms"] for r in predicting) / n_pred if n_pred else None,
        "billed_per_prediction_ms": sum(r["billed_ms"] for r in predicting) / n_pred if n_pred else None,
        "projected_predictions_per_day": n_pred / span_h * 24,
    }
