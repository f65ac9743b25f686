"""What this service costs a month, line by line. Pure functions over dashboard/pricing.json.

    python -m dashboard.costs --requests-per-day 100 --duration-ms 100 --memory-mb 512
    python -m dashboard.costs --requests-per-day 100000 --duration-ms 2 --memory-mb 256 --api http --json
    python -m dashboard.costs --front-doors --memory-mb 256     # the handler's benchmarked time, scaled to 256 MB

Billing rules: duration is billed in 1 ms units per invocation (models/billing.py); a cold start's INIT phase is
billed too (since 2025-08-01); the Lambda free tier is permanent, API Gateway's lasts the first 12 months.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from dashboard.cost_model import (
    DOOR_NAMES,
    FRONT_DOORS,
    PRICED_ACCESS,
    ROOT,
    Usage,
    billed_ms,
    cost_per_prediction,
    cpu_scale,
    door_price_text,
    front_door_costs,
    guide_claim,
    handler_ms,
    monthly_cost,
    paid_per_million,
    pricing,
    request_usd,
    snapstart_breakeven,
    spend_cap,
)
from models.client import MAX_BATCH

# what the pages and tests reach as `costs.NAME`: the model's functions, and the measured durations and money text here
__all__ = [
    "DOOR_NAMES",
    "FRONT_DOORS",
    "PRICED_ACCESS",
    "Usage",
    "benchmark_durations",
    "billed_ms",
    "cli_args",
    "cost_per_prediction",
    "cpu_scale",
    "door_price_text",
    "front_door_costs",
    "guide_claim",
    "handler_ms",
    "main",
    "money",
    "monthly_cost",
    "paid_per_million",
    "pricing",
    "request_usd",
    "snapstart_breakeven",
    "spend_cap",
]

BENCHMARK_PATH = ROOT / "benchmarks" / "results.json"


def benchmark_durations(path: Path = BENCHMARK_PATH) -> dict | None:
    """The handler's measured time on a full core (benchmarks/results.json, `make bench`): single, batch of 32, INIT."""
    try:
        bench = json.loads(path.read_text())
        ours = bench["warm"]["ours"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731 - five runs: the middle one
    single, batch32 = median([r["p50_us"] for r in ours]) / 1000, median([r["batch32_p50_ms"] for r in ours])
    return {
        "single_ms": single,
        "batch32_ms": batch32,
        "per_window_ms": (batch32 - single) / 31,  # what each window past the first adds to a call
        "init_ms": bench.get("cold", {}).get("median_answer_s", {}).get("ours", 0.0) * 1000,
        "date": bench.get("machine", {}).get("date", "?"),
        "source": "benchmarks/results.json, the handler's warm p50 on a full core from `make bench`",
    }


def money(usd: float) -> str:
    """Dollars a reader can compare: thousands separated, cents from $0.10 up, two significant figures below, and "$0"
    only for nothing at all (never "$0.0000")."""
    if usd < 0:
        return "-" + money(-usd)
    if usd == 0:
        return "$0"
    if usd >= 1000:
        return f"${usd:,.0f}"
    if usd >= 0.0995:  # rounds to $0.10 or more
        return f"${usd:,.2f}"
    return f"${usd:.{1 - math.floor(math.log10(usd))}f}"


def cli_args(u: Usage) -> list[str]:
    """The `python -m dashboard.costs` arguments that price `u`, so a page can name the command behind its figure."""
    args = [
        f"--requests-per-day {u.requests_per_day:.12g}",  # 12 digits: no rounding crosses a billed-ms boundary
        f"--duration-ms {u.duration_ms:.12g}",
        f"--memory-mb {u.memory_mb}",
        f"--arch {u.arch}",
        f"--api {u.api}",
    ]
    if u.cold_start_share:
        args += [f"--cold-start-share {u.cold_start_share:.12g}", f"--init-ms {u.init_ms:.12g}"]
    args += ["--snapstart"] if u.snapstart else []
    args += [f"--log-bytes {u.log_bytes_per_request}"] if u.log_bytes_per_request else []
    args += [f"--storage-gb {u.storage_gb:g}"] if u.storage_gb else []
    args += [f"--ephemeral-mb {u.ephemeral_mb}"] if u.ephemeral_mb != 512 else []
    args += [f"--days {u.days}"] if u.days != 30 else []
    args += [] if u.free_tier else ["--no-free-tier"]
    return " ".join(args).split()


def format_table(result: dict) -> str:
    rows = [(line["item"], money(line["usd"]), line["detail"]) for line in result["lines"]]
    w = max(len(r[0]) for r in rows + [("TOTAL", "", "")])
    out = [f"{'item':<{w}}  {'USD/month':>12}  detail", "-" * (w + 40)]
    out += [f"{a:<{w}}  {b:>12}  {c}" for a, b, c in rows]
    out += ["-" * (w + 40), f"{'TOTAL':<{w}}  {money(result['total_usd']):>12}"]
    return "\n".join(out)


def format_front_doors(fd: dict, source: str) -> str:
    """The front-door table as the README prints it."""
    i = fd["inputs"]
    calls = "single calls" if i["batch"] == 1 else f"calls of {i['batch']} predictions"
    out = [
        f"per million predictions, {calls} of {i['duration_ms']:.2f} ms ({i['billed_ms']} ms billed), {i['memory_mb']} MB, "
        f"{i['arch']}; duration from {source}:",
        f"  the guide's design (512 MB, 100 ms, REST)  {money(fd['guide_usd'])}",
    ]
    out += [f"  {k:4s}  {money(v)}  ({fd['times_cheaper'][k]:.1f}x cheaper than the guide)" for k, v in fd["doors"].items()]
    return "\n".join(out)


def finite(text: str) -> float:
    """argparse type: a finite number (NaN and infinity would price as NaN or overflow)."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return x


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m dashboard.costs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--requests-per-day", type=finite, default=None, help="required unless --front-doors")
    p.add_argument(
        "--duration-ms",
        type=finite,
        default=None,
        help="duration per invocation at --memory-mb (default: 100; with --front-doors, the handler's benchmarked time "
        "on a full core scaled to --memory-mb by Lambda's CPU share)",
    )
    p.add_argument("--memory-mb", type=int, default=512)
    p.add_argument("--arch", choices=["x86_64", "arm64"], default="x86_64")
    p.add_argument(
        "--api", choices=list(PRICED_ACCESS), default="rest", help="front door: rest, http, url (Function URL) or none"
    )
    p.add_argument("--front-doors", action="store_true", help="per million predictions for each front door beside the guide")
    p.add_argument("--batch", type=int, default=1, help=f"with --front-doors: predictions per call (1..{MAX_BATCH})")
    p.add_argument("--cold-start-share", type=finite, default=0.0, help="fraction of requests that are cold starts (0..1)")
    p.add_argument("--init-ms", type=finite, default=0.0, help="INIT duration of a cold start, billed since 2025-08-01")
    p.add_argument("--snapstart", action="store_true", help="price SnapStart: restores instead of INIT, plus the snapshot cache")
    p.add_argument("--log-bytes", type=int, default=0, help="CloudWatch log bytes per request")
    p.add_argument("--ephemeral-mb", type=int, default=512, help="ephemeral storage (/tmp), 512 MB free")
    p.add_argument("--storage-gb", type=finite, default=0.0, help="the S3 model bucket's size (GB)")
    p.add_argument("--free-tier", dest="free_tier", action="store_true", default=True)
    p.add_argument("--no-free-tier", dest="free_tier", action="store_false")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--json", action="store_true", help='print {"total_usd", "lines", "inputs"}')
    args = p.parse_args(argv)
    if not 128 <= args.memory_mb <= 10240:  # before the CPU share divides by it
        p.error(f"--memory-mb must be 128..10240 (Lambda's range), not {args.memory_mb}")
    if args.days < 1:
        p.error(f"--days must be at least 1, not {args.days}")
    if args.requests_per_day is None and not args.front_doors:
        p.error("--requests-per-day is required (or pass --front-doors)")
    source = "--duration-ms"
    if args.duration_ms is None and args.front_doors:
        bench = benchmark_durations()
        if bench is None:
            p.error("no benchmarks/results.json to read the handler's time from: run `make bench` or pass --duration-ms")
        try:
            args.duration_ms = handler_ms(args.batch, bench) * cpu_scale(args.memory_mb)
        except ValueError as e:
            p.error(f"--batch: {e}")
        source = f"{bench['source']} x {cpu_scale(args.memory_mb):.2f} (the CPU share at {args.memory_mb} MB)"
    try:
        u = Usage(
            requests_per_day=args.requests_per_day or 0.0,
            duration_ms=100.0 if args.duration_ms is None else args.duration_ms,
            memory_mb=args.memory_mb,
            arch=args.arch,
            api=args.api,
            cold_start_share=args.cold_start_share,
            init_ms=args.init_ms,
            snapstart=args.snapstart,
            free_tier=args.free_tier,
            days=args.days,
            log_bytes_per_request=args.log_bytes,
            ephemeral_mb=args.ephemeral_mb,
            storage_gb=args.storage_gb,
        )
        if not 1 <= args.batch <= MAX_BATCH:
            raise ValueError(f"--batch must be 1..{MAX_BATCH} predictions a call, not {args.batch}")
    except ValueError as e:
        p.error(str(e))
    if args.front_doors:
        fd = front_door_costs(u.duration_ms, args.memory_mb, args.arch, args.batch)
        print(json.dumps({**fd, "source": source}, indent=1) if args.json else format_front_doors(fd, source))
        return 0
    result = monthly_cost(u)
    if args.json:
        print(
            json.dumps(
                {
                    "total_usd": result["total_usd"],
                    "lines": [{"item": x["item"], "usd": x["usd"]} for x in result["lines"]],
                    "inputs": result["inputs"],
                },
                indent=1,
            )
        )
    else:
        print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
