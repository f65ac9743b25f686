"""One JSON line per request that is both the structured log and CloudWatch Embedded Metric Format.

Written by hand rather than with aws-lambda-powertools: BENCHMARKS.md has the measurement (its import
alone costs more cold-start time than the rest of the function's own code). Never logs features or keys.
"""

from __future__ import annotations

import os
import sys
import time

from .jsonio import dumps

NAMESPACE = os.environ.get("METRICS_NAMESPACE", "FinancialForecasting")
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "financial-forecasting")


# the directives never change: built once, not per request
_REQUEST_METRICS = {
    "Namespace": NAMESPACE,
    "Dimensions": [["Service", "Route"]],
    "Metrics": [
        {"Name": "Latency", "Unit": "Milliseconds"},
        {"Name": "Predictions", "Unit": "Count"},
        {"Name": "ColdStart", "Unit": "Count"},
    ],
}
_ERROR_METRICS = {
    "Namespace": NAMESPACE,
    "Dimensions": [["Service", "ErrorCode"]],
    "Metrics": [{"Name": "Errors", "Unit": "Count"}],
}


def emit(
    *,
    request_id: str,
    route: str,
    method: str,
    path: str = "",
    status: int,
    latency_ms: float,
    model_version: str,
    ticker: str | None,
    predictions: int,
    cold_start: bool,
    code: str | None = None,
    source: str = "",
    out=None,
) -> dict:
    directives = [_REQUEST_METRICS]
    record = {
        "level": "INFO" if status < 400 else ("WARNING" if status < 500 else "ERROR"),
        "message": "request",
        "request_id": request_id,
        "route": route,
        "path": path[:200],  # the raw path, capped: log text only, never a dimension
        "method": method,
        "source": source,
        "ticker": ticker,
        "status": status,
        "latency_ms": round(latency_ms, 3),
        "model_version": model_version,
        "Service": SERVICE,
        "Route": route,
        "Latency": round(latency_ms, 3),
        "Predictions": predictions,
        "ColdStart": 1 if cold_start else 0,
    }
    if code:
        record["code"] = code
        record["ErrorCode"] = code
        record["Errors"] = 1
        directives.append(_ERROR_METRICS)
    record["_aws"] = {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives}
    (out or sys.stdout).write(dumps(record) + "\n")
    return record
