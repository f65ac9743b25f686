"""Where the dashboard finds its endpoint, key and files. No Streamlit calls at import time."""

from __future__ import annotations

import json
import os
from pathlib import Path

from models.client import REQUEST_TIMEOUT_S  # noqa: F401  (one definition, beside the client)
from models.local import LOCAL_DIR  # noqa: F401  (the local run's folder: defined once, below dashboard and lambda/)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = "http://127.0.0.1:3000/prod"
MARKET_TTL_S = 3600  # market data: a daily bar does not change within the hour
MODEL_TTL_S = 60  # GET /model: short, so a redeploy shows up within a minute
PREDICTION_TTL_S = 3600  # a forecast for a given model version and window never changes; an hour bounds the memory
RUNS_TTL_S = 60  # the training runs table: a finished `make experiments` shows up within a minute
BACKTEST_MAX_DAYS = 256  # four batch calls at most


def local_api_info(local_dir: Path = LOCAL_DIR) -> dict:
    """What the running local API wrote about itself (url, pid, key), if anything."""
    try:
        return json.loads((local_dir / "local_api.json").read_text())
    except (OSError, ValueError):
        return {}


def dashboard_switch(local_dir: Path = LOCAL_DIR) -> dict:
    """The local API the Deploy page started and made the dashboard's endpoint, while that very process runs
    (its pid and start time both match, so a recycled pid does not count): {url, key, ...} or {}."""
    try:
        record = json.loads((local_dir / "dashboard_api.json").read_text())
        stat = Path(f"/proc/{int(record['pid'])}/stat").read_text()
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    start = stat[stat.rindex(")") + 2 :].split()[19]  # field 22: the process's start time
    return record if start == record.get("start") and record.get("url") else {}


def default_endpoint(secrets: dict | None = None) -> tuple[str, str]:
    """The Deploy page's switch first (the newest deliberate choice, for every session), then the environment (make
    run sets it), then .streamlit/secrets.toml, then the local API's own file."""
    switch = dashboard_switch()
    if switch:
        return switch["url"].rstrip("/"), switch.get("key", "")
    secrets = secrets or {}
    info = local_api_info()
    url = os.environ.get("FORECAST_API_URL") or secrets.get("FORECAST_API_URL") or info.get("url") or DEFAULT_URL
    key = (
        os.environ.get("FORECAST_API_KEY")
        or secrets.get("FORECAST_API_KEY")
        or os.environ.get("LOCAL_API_KEY")
        or info.get("api_key")
        or ""
    )
    return url.rstrip("/"), key
