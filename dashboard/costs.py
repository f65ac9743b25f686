"""What this service costs a month, line by line. Pure functions over dashboard/pricing.json.

    python -m dashboard.costs --requests-per-day 100 --duration-ms 100 --memory-mb 512
    python -m dashboard.costs --requests-per-day 100000 --duration-ms 2 --memory-mb 256 --api http --json

Billing rules: duration is billed in 1 ms units per invocation; a cold start's INIT phase is billed too
(since 2025-08-01); the Lambda free tier is permanent, API Gateway's lasts the first 12 months.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

PRICING_PATH = Path(__file__).resolve().parent / "pricing.json"
FRONT_DOORS = ("rest", "http", "url", "none")  # a Function URL and a direct invoke add no per-request charge


@lru_cache(maxsize=1)
def pricing() -> dict:
    return json.loads(PRICING_PATH.read_text())


@dataclass(frozen=True)
class Usage:
    requests_per_day: float
    duration_ms: float = 100.0  # billed per invocation, rounded up to whole ms
    memory_mb: int = 512
    arch: str = "x86_64"  # or "arm64"
    api: str = "rest"  # front door: "rest", "http", "url" (Function URL) or "none" (direct invoke)
    cold_start_share: float = 0.0  # fraction of invocations that start a new environment
    init_ms: float = 0.0  # INIT duration of a cold start, billed since 2025-08-01
    snapstart: bool = False  # cold starts restore a snapshot (restore + cache charges) instead of INIT
    snapstart_versions: int = 1  # published versions with SnapStart on: each one's snapshot is cached
    free_tier: bool = True
    days: int = 30
    log_bytes_per_request: int = 0  # CloudWatch Logs ingestion (the function's line + START/END/REPORT)
    storage_gb: float = 0.0  # S3 model bucket
    ephemeral_mb: int = 512

    def __post_init__(self):
        if self.arch not in ("x86_64", "arm64"):
            raise ValueError(f"arch must be x86_64 or arm64, not {self.arch!r}")
        if self.api not in FRONT_DOORS:
            raise ValueError(f"api must be one of {', '.join(FRONT_DOORS)}, not {self.api!r}")
        if not 128 <= self.memory_mb <= 10240:
            raise ValueError(f"memory_mb must be 128..10240 (Lambda's range), not {self.memory_mb}")
        for name in ("requests_per_day", "duration_ms", "init_ms", "log_bytes_per_request", "storage_gb", "days"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} cannot be negative")
        if not 0 <= self.cold_start_share <= 1:
            raise ValueError("cold_start_share must be between 0 and 1")


def billed_ms(duration_ms: float) -> int:
    """Lambda bills each invocation's duration in whole milliseconds, rounded up (at least 1)."""
    return max(1, math.ceil(duration_ms - 1e-9))


def monthly_cost(u: Usage, p: dict | None = None) -> dict:
    """{"total_usd", "lines": [{"item", "usd", "detail"}], "inputs", "quantities"} for one month of `u.days` days."""
    p = p or pricing()
    lam, api, cw, s3, rules = p["lambda"], p["api_gateway"], p["cloudwatch"], p["s3"], p["billing_rules"]
    requests = u.requests_per_day * u.days
    gb = u.memory_mb / 1024
    run_gbs = requests * billed_ms(u.duration_ms) / 1000 * gb
    colds = requests * u.cold_start_share
    init_gbs = 0.0 if u.snapstart else colds * (billed_ms(u.init_ms) if u.init_ms > 0 else 0) / 1000 * gb
    lines = []

    free_req = lam["free_tier"]["requests"] if u.free_tier else 0
    lines.append(
        {
            "item": "Lambda requests",
            "usd": max(0.0, requests - free_req) * lam["request_usd"]["value"],
            "detail": f"{requests:,.0f} requests" + (f", first {free_req:,} free" if free_req else ""),
        }
    )
    price_gbs = lam["gb_second_usd"][u.arch]["value"]
    free_gbs = lam["free_tier"]["gb_seconds"] if u.free_tier else 0
    # the free GB-seconds cover invocation time first, then INIT
    run_free = min(run_gbs, free_gbs)
    init_free = min(init_gbs, free_gbs - run_free)
    lines.append(
        {
            "item": f"Lambda compute ({u.arch})",
            "usd": (run_gbs - run_free) * price_gbs,
            "detail": f"{run_gbs:,.2f} GB-s = {requests:,.0f} x {billed_ms(u.duration_ms)} ms x {gb:g} GB",
        }
    )
    if init_gbs > 0:
        lines.append(
            {
                "item": "Lambda INIT (cold starts)",
                "usd": (init_gbs - init_free) * price_gbs,
                "detail": f"{init_gbs:,.2f} GB-s = {colds:,.0f} cold starts x {billed_ms(u.init_ms)} ms x {gb:g} GB",
            }
        )
    if u.snapstart:
        snap = lam["snapstart"]
        cache_gbs = gb * u.days * 86400 * u.snapstart_versions
        lines.append(
            {
                "item": "SnapStart cache",
                "usd": cache_gbs * snap["cache_gb_second_usd"]["value"],
                "detail": f"{u.snapstart_versions} version(s) x {gb:g} GB x {u.days} days, always on",
            }
        )
        lines.append(
            {
                "item": "SnapStart restores",
                "usd": colds * gb * snap["restore_gb_usd"]["value"],
                "detail": f"{colds:,.0f} restores x {gb:g} GB (instead of INIT)",
            }
        )
    if u.ephemeral_mb > rules["ephemeral_free_mb"]:
        extra_gbs = (requests * billed_ms(u.duration_ms) / 1000) * (u.ephemeral_mb - rules["ephemeral_free_mb"]) / 1024
        lines.append(
            {
                "item": "Lambda ephemeral storage",
                "usd": extra_gbs * lam["ephemeral_gb_second_usd"]["value"],
                "detail": f"{u.ephemeral_mb - rules['ephemeral_free_mb']} MB above 512 MB",
            }
        )
    if u.api in ("rest", "http"):
        free_api = api["free_tier"][f"{u.api}_requests"] if u.free_tier else 0
        lines.append(
            {
                "item": f"API Gateway {u.api.upper()} API",
                "usd": max(0.0, requests - free_api) * api[f"{u.api}_request_usd"]["value"],
                "detail": f"{requests:,.0f} calls" + (f", first {free_api:,} free (12 months)" if free_api else ""),
            }
        )
    if u.log_bytes_per_request:
        gb_logs = requests * u.log_bytes_per_request / 1e9
        free_logs = cw["free_tier"]["logs_gb"] if u.free_tier else 0
        lines.append(
            {
                "item": "CloudWatch Logs ingestion",
                "usd": max(0.0, gb_logs - free_logs) * cw["logs_ingestion_gb_usd"]["value"],
                "detail": f"{gb_logs:.4f} GB",
            }
        )
    if u.storage_gb:
        free_s3 = s3["free_tier"]["gb"] if u.free_tier else 0
        lines.append(
            {
                "item": "S3 model storage",
                "usd": max(0.0, u.storage_gb - free_s3) * s3["standard_gb_month_usd"]["value"] * u.days / 30,
                "detail": f"{u.storage_gb:g} GB",
            }
        )
    total = sum(line["usd"] for line in lines)
    return {
        "total_usd": total,
        "lines": lines,
        "inputs": asdict(u),
        "quantities": {"requests": requests, "gb_seconds": run_gbs + init_gbs, "cold_starts": colds},
    }


def snapstart_breakeven(init_ms: float, memory_mb: int, arch: str = "x86_64") -> dict:
    """Per cold start: the INIT that SnapStart saves against the restore it charges (the cache fee comes on top)."""
    p = pricing()["lambda"]
    gb = memory_mb / 1024
    init_usd = billed_ms(init_ms) / 1000 * gb * p["gb_second_usd"][arch]["value"]
    restore_usd = gb * p["snapstart"]["restore_gb_usd"]["value"]
    cache_month = gb * 30 * 86400 * p["snapstart"]["cache_gb_second_usd"]["value"]
    return {
        "init_usd": init_usd,
        "restore_usd": restore_usd,
        "cache_usd_month": cache_month,
        "pays": init_usd > restore_usd,
        "init_ms_to_break_even": restore_usd / (gb * p["gb_second_usd"][arch]["value"]) * 1000,
    }


def cpu_scale(memory_mb: int) -> float:
    """How much slower than a full core Lambda runs at `memory_mb` (1,769 MB = one vCPU)."""
    return max(1.0, pricing()["billing_rules"]["vcpu_full_at_mb"] / memory_mb)


def cost_per_prediction(u: Usage, batch: int = 1) -> float:
    """Paid cost of one prediction when `batch` predictions share each request (no free tier)."""
    paid = Usage(**{**asdict(u), "free_tier": False})
    month = monthly_cost(paid)
    return month["total_usd"] / max(1.0, month["quantities"]["requests"] * batch)


def front_door_costs(duration_ms: float, memory_mb: int, arch: str = "x86_64") -> dict:
    """USD per million predictions for each front door at a measured duration, beside the guide's design (paid list
    prices, no free tier, warm requests)."""
    g = pricing()["guide_claim"]["per_million"]

    def per_million(api: str, dur: float, mem: int, a: str) -> float:
        return monthly_cost(Usage(requests_per_day=1e6 / 30, duration_ms=dur, memory_mb=mem, arch=a, api=api, free_tier=False))[
            "total_usd"
        ]

    guide = per_million(g["api"], g["duration_ms"], g["memory_mb"], "x86_64")
    doors = {api: per_million(api, duration_ms, memory_mb, arch) for api in ("rest", "http", "url")}
    return {
        "guide_usd": guide,
        "doors": doors,
        "times_cheaper": {k: guide / v for k, v in doors.items()},
        "inputs": {"duration_ms": duration_ms, "billed_ms": billed_ms(duration_ms), "memory_mb": memory_mb, "arch": arch},
    }


def guide_claim() -> dict:
    """The guide's $0.35 for 100 predictions a day, recomputed with the real prices."""
    g = pricing()["guide_claim"]
    real = monthly_cost(
        Usage(
            requests_per_day=g["requests_per_day"],
            duration_ms=g["duration_ms"],
            memory_mb=g["memory_mb"],
            api="rest",
            free_tier=False,
        )
    )
    return {
        "claimed_usd": g["monthly_usd"],
        "real_usd": real["total_usd"],
        "ratio": g["monthly_usd"] / real["total_usd"],
        "lines": real["lines"],
        "mistake": g["mistake"],
    }


def format_table(result: dict) -> str:
    rows = [(line["item"], f"${line['usd']:.6f}", line["detail"]) for line in result["lines"]]
    w = max(len(r[0]) for r in rows + [("TOTAL", "", "")])
    out = [f"{'item':<{w}}  {'USD/month':>12}  detail", "-" * (w + 40)]
    out += [f"{a:<{w}}  {b:>12}  {c}" for a, b, c in rows]
    out += ["-" * (w + 40), f"{'TOTAL':<{w}}  {'$' + format(result['total_usd'], '.6f'):>12}"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m dashboard.costs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--requests-per-day", type=float, default=None, help="required unless --front-doors")
    p.add_argument("--duration-ms", type=float, default=100.0, help="billed duration per invocation (default 100)")
    p.add_argument("--memory-mb", type=int, default=512)
    p.add_argument("--arch", choices=["x86_64", "arm64"], default="x86_64")
    p.add_argument("--api", choices=list(FRONT_DOORS), default="rest", help="front door: rest, http, url (Function URL) or none")
    p.add_argument("--front-doors", action="store_true", help="per million predictions for rest, http and url beside the guide")
    p.add_argument("--cold-start-share", type=float, default=0.0, help="fraction of requests that are cold starts (0..1)")
    p.add_argument("--init-ms", type=float, default=0.0, help="INIT duration of a cold start, billed since 2025-08-01")
    p.add_argument("--snapstart", action="store_true", help="price SnapStart: restores instead of INIT, plus the snapshot cache")
    p.add_argument("--log-bytes", type=int, default=0, help="CloudWatch log bytes per request")
    p.add_argument("--free-tier", dest="free_tier", action="store_true", default=True)
    p.add_argument("--no-free-tier", dest="free_tier", action="store_false")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--json", action="store_true", help='print {"total_usd", "lines", "inputs"}')
    args = p.parse_args(argv)
    if args.requests_per_day is None and not args.front_doors:
        p.error("--requests-per-day is required (or pass --front-doors)")
    try:
        u = Usage(
            requests_per_day=args.requests_per_day or 0.0,
            duration_ms=args.duration_ms,
            memory_mb=args.memory_mb,
            arch=args.arch,
            api=args.api,
            cold_start_share=args.cold_start_share,
            init_ms=args.init_ms,
            snapstart=args.snapstart,
            free_tier=args.free_tier,
            days=args.days,
            log_bytes_per_request=args.log_bytes,
        )
    except ValueError as e:
        p.error(str(e))
    if args.front_doors:
        fd = front_door_costs(args.duration_ms, args.memory_mb, args.arch)
        if args.json:
            print(json.dumps(fd, indent=1))
        else:
            print(
                f"per million predictions at {args.duration_ms:g} ms ({fd['inputs']['billed_ms']} ms billed), "
                f"{args.memory_mb} MB, {args.arch}:"
            )
            print(f"  the guide's design (512 MB, 100 ms, REST)  ${fd['guide_usd']:.2f}")
            for k, v in fd["doors"].items():
                print(f"  {k:4s}  ${v:.3f}  ({fd['times_cheaper'][k]:.1f}x cheaper than the guide)")
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
