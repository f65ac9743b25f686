"""The ledger's own Lambda function (not the predict function's package): the daily job on AWS.

EventBridge Scheduler invokes it after the US close (America/New_York). It reads the API key from SSM Parameter
Store, runs ledger.live against the DynamoDB table, and writes the three alarms as CloudWatch metrics (embedded
metric format lines on stdout), which the template's alarms watch: per ticker and for the served model version only
(a retired version's record never keeps an alarm up), and, last, RunsCompleted = 1, the heartbeat whose absence
alarms (a day without a completed run). A malformed event never raises: it is answered with its error, and as the
run did not complete, no heartbeat is written for it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

from ledger import live, scoring
from ledger.dynamo import DynamoStore
from models.client import ForecastClient

NAMESPACE = os.environ.get("LEDGER_METRICS_NAMESPACE", "FinancialForecasting/Ledger")
MARKET_CACHE = Path("/tmp/ledger_market")  # the only writable path on Lambda; lives as long as the sandbox
ALARM_METRICS = {"coverage_alarm": "CoverageAlarms", "kupiec_alarm": "KupiecAlarms", "winkler_alarm": "WinklerAlarms"}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def api_key() -> str:
    import boto3

    name = os.environ["API_KEY_PARAMETER"]
    return boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def metric_lines(alarms: list[dict], function: str, now_ms: int) -> list[dict]:
    """EMF records: per function, how many tickers raise each alarm (what the CloudWatch alarms watch); per ticker,
    the figures behind them."""

    def emf(dims: dict, metrics: dict, units: dict) -> dict:
        return {
            "_aws": {
                "Timestamp": now_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [list(dims)],
                        "Metrics": [{"Name": k, "Unit": units[k]} for k in metrics],
                    }
                ],
            },
            **dims,
            **metrics,
        }

    totals = {name: sum(bool(a[key]) for a in alarms) for key, name in ALARM_METRICS.items()}
    lines = [emf({"FunctionName": function}, totals, dict.fromkeys(totals, "Count"))]
    for a in alarms:
        version = {"ModelVersion": a["model_version"]} if a.get("model_version") else {}
        figures = {"Coverage60": a["coverage_60"], "KupiecP": a["kupiec_p"], "WinklerDaysAbove1": a["winkler_days_above_1"]}
        figures = {k: v for k, v in figures.items() if v is not None}
        units = {"Coverage60": "None", "KupiecP": "None", "WinklerDaysAbove1": "Count"}
        lines.append(emf({"FunctionName": function, "Ticker": a["ticker"], **version}, figures, units))
    return lines


def heartbeat(function: str, now_ms: int) -> dict:
    """RunsCompleted = 1: written only at the end of a completed run; the LedgerMissedRun alarm treats its absence
    over a day as breaching."""
    return {
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": [{"Name": "RunsCompleted", "Unit": "Count"}],
                }
            ],
        },
        "FunctionName": function,
        "RunsCompleted": 1,
    }


def event_watchlist(event) -> str | None:
    """The watchlist an event names ({"watchlist": "AAPL,MSFT"}), None for the default; ValueError if malformed."""
    if event is None or event == {} or event == "":
        return None
    if not isinstance(event, dict):
        raise ValueError(f'the event must be a JSON object such as {{"watchlist": "AAPL,MSFT"}}, got {type(event).__name__}')
    got = event.get("watchlist")
    if got is not None and not isinstance(got, str):
        raise ValueError(f'watchlist must be a comma-separated string such as "AAPL,MSFT", got {type(got).__name__}')
    return got


def handler(event, context) -> dict:
    """One daily run; an event may name its own watchlist ({"watchlist": "AAPL,MSFT"}). A malformed event is
    answered {"error": ..., "code": "bad_event"} (logged); anything else that fails raises, so Lambda counts an
    error, retries, and hands the event to the on-failure destination."""
    try:
        watchlist = live.parse_watchlist(event_watchlist(event) or os.environ.get("WATCHLIST"))
    except ValueError as exc:
        print(json.dumps({"error": str(exc), "code": "bad_event"}))
        return {"error": str(exc), "code": "bad_event"}
    store = DynamoStore(os.environ["LEDGER_TABLE"])
    client = ForecastClient(os.environ["FORECAST_API_URL"], api_key(), timeout=30)
    out = live.run(
        client,
        store,
        watchlist,
        now(),
        live.LastGood(MARKET_CACHE),
        concurrency=int(os.environ.get("LEDGER_CONCURRENCY", "4")),
    )
    joined = store.joined(watchlist)
    if len(joined):  # the served version's record only: a retired version's alarms never stay up
        joined = joined[joined["model_version"] == out["model_version"]]
    alarms = scoring.alarms(scoring.score_rows(joined)) if len(joined) else []
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "ledger")
    stamp = int(time.time() * 1000)
    for line in [*metric_lines(alarms, function, stamp), heartbeat(function, stamp)]:
        print(json.dumps(line))
    return {**out, "alarms": alarms}
