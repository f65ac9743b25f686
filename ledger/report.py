"""The replay's printed report: the scorecard, the alarms and the served interval against the model's own, as
Markdown tables (`make ledger` prints them; --json prints the same figures as one object)."""

from __future__ import annotations

import math

from ledger import aci, calibration, read


def format_scorecard(cards: list[dict]) -> str:
    cols = list(read.SCORECARD_COLUMNS)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(row.values()) + " |" for row in read.scorecard_table(cards)]
    return "\n".join(lines)


def format_alarms(rows: list[dict]) -> str:
    lines = [
        "| ticker | model version | rolling 60-day coverage | Kupiec p (breaches / n) | Winkler ratio 60 d (days > 1) | alarms |",
        "|---|---|---|---|---|---|",
    ]
    for a in rows:
        raised = [k for k in ("coverage", "kupiec", "winkler") if a[f"{k}_alarm"]]
        lines.append(
            f"| {a['ticker']} | {a['model_version']} | {read.fmt(a['coverage_60'], True)} | "
            f"{a['kupiec_p']:.3f} ({a['kupiec_breaches']} / {a['kupiec_n']}) | {read.fmt(a['winkler_ratio_60'])} "
            f"({a['winkler_days_above_1']}) | {', '.join(raised) or 'none'} |"
        )
    return "\n".join(lines)


def format_calibration(rows: list[dict], method: str, override: bool = False) -> str:
    why = "--method, overriding the recorded verdict" if override else f"the verdict in ledger/{aci.SERVING_FILE.name}"
    lines = [
        f"Calibration served: {method} ({why}; the rule is in README). After the first "
        f"{calibration.WARMUP} forecasts of each ticker:",
        "",
        "| ticker | model version | n | served coverage | plain coverage | Kupiec p served / plain | Winkler served / plain |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['ticker']} | {r['model_version']} | {r['n']} | {read.fmt(r['coverage_served'], True)} | "
            f"{read.fmt(r['coverage_plain'], True)} | {r['kupiec_p_served']:.3f} / {r['kupiec_p_plain']:.3f} | "
            f"{read.fmt(r['winkler_served_vs_plain'])} |"
        )
    return "\n".join(lines)


def clean(obj):
    """The report as JSON can hold it: NaN and infinities become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [clean(v) for v in obj]
    return obj
