"""The Cost monitor's settings in the URL, as the Forecast page's view is (DESIGN, "The dashboard's state"). Pure.

/costs?per_day=10000&batch=8&door=url opens the calculator with those settings; a missing or bad part takes its
default, so a hand-edited link never breaks the page.
"""

from __future__ import annotations

import math

# URL key -> the widget's session key; every setting of the calculator
WIDGETS = {
    "per_day": "cost_requests",
    "batch": "cost_batch",
    "ms": "cost_duration",
    "memory": "cost_memory",
    "arch": "cost_arch",
    "door": "cost_api",
    "snapstart": "cost_snapstart",
    "cold": "cost_cold",
    "init": "cost_init",
    "free": "cost_free",
    "budget": "cost_budget",
}
URL_KEYS = tuple(WIDGETS)


def _number(text: str, lo: float, hi: float) -> float | None:
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) and lo <= x <= hi else None


def parse(params: dict, defaults: dict, choices: dict, ranges: dict) -> dict:
    """Widget values from a query string: `choices` lists what a select takes, `ranges` (lo, hi) what a number may be;
    anything else, or nothing, is the default."""
    out = {}
    for name, widget in WIDGETS.items():
        raw, value = params.get(name), defaults[widget]
        if raw is not None:
            raw = str(raw)
            if widget in choices:
                match = [c for c in choices[widget] if str(c) == raw]
                value = match[0] if match else value
            elif isinstance(value, bool):
                value = {"1": True, "0": False}.get(raw, value)
            else:
                x = _number(raw, *ranges[widget])
                value = value if x is None else x
        out[widget] = value
    return out


def params(values: dict) -> dict[str, str]:
    """The canonical query string of these settings: every key written, booleans as 1/0, numbers as typed."""
    out = {}
    for name, widget in WIDGETS.items():
        v = values[widget]
        out[name] = ("1" if v else "0") if isinstance(v, bool) else f"{v:.10g}" if isinstance(v, float) else str(v)
    return out
