"""The cost model: a month of Usage priced line by line from dashboard/pricing.json, in pure functions (the only file
they read is the price list, and the template's front doors once). `python -m dashboard.costs` is its command line."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from models.billing import billed_ms
from models.client import MAX_BATCH

ROOT = Path(__file__).resolve().parents[1]
PRICING_PATH = Path(__file__).resolve().parent / "pricing.json"
TEMPLATE_PATH = ROOT / "lambda" / "template.yaml"  # read by path: the dashboard never imports lambda/
DIRECT = "none"  # a direct invoke: no front door, so no per-request charge beside Lambda's


class _TagTolerantLoader(yaml.SafeLoader):
    """Reads template.yaml's plain values; CloudFormation's short tags (!Ref, !If ...) become None."""


_TagTolerantLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def template_front_doors(path: Path = TEMPLATE_PATH) -> tuple[str, ...]:
    """The front doors a deploy may choose: the template's FrontDoor parameter is their one definition."""
    template = yaml.load(path.read_text(), Loader=_TagTolerantLoader)  # noqa: S506 - a SafeLoader subclass
    return tuple(template["Parameters"]["FrontDoor"]["AllowedValues"])


FRONT_DOORS = template_front_doors()
# what a page calls each front door (the template's values are the deployer's --api words)
DOOR_NAMES = {"rest": "REST API", "http": "HTTP API", "url": "Function URL"}
PRICED_ACCESS = (*FRONT_DOORS, DIRECT)  # what the cost model prices: every front door, and a direct invoke


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
        if self.api not in PRICED_ACCESS:
            raise ValueError(f"api must be one of {', '.join(PRICED_ACCESS)}, not {self.api!r}")
        if not 128 <= self.memory_mb <= 10240:
            raise ValueError(f"memory_mb must be 128..10240 (Lambda's range), not {self.memory_mb}")
        for name in ("requests_per_day", "duration_ms", "init_ms", "log_bytes_per_request", "storage_gb", "days"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} cannot be negative")
        if not 0 <= self.cold_start_share <= 1:
            raise ValueError("cold_start_share must be between 0 and 1")
        if not 512 <= self.ephemeral_mb <= 10240:
            raise ValueError(f"ephemeral_mb must be 512..10240 (Lambda's range), not {self.ephemeral_mb}")


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
    if request_usd(u.api, p):
        free_api = api["free_tier"][f"{u.api}_requests"] if u.free_tier else 0
        lines.append(
            {
                "item": f"API Gateway {u.api.upper()} API",
                "usd": max(0.0, requests - free_api) * request_usd(u.api, p),
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


def request_usd(api: str, p: dict | None = None) -> float:
    """The front door's own charge per call (a Function URL and a direct invoke add none)."""
    entry = (p or pricing())["api_gateway"].get(f"{api}_request_usd")
    return entry["value"] if entry else 0.0


def door_price_text(api: str) -> str:
    """The front door's per-million price as prose, generated here so no page or help text repeats a number."""
    usd = request_usd(api)
    return f"${usd * 1e6:.2f} a million calls" if usd else "no per-request charge"


def handler_ms(batch: int, bench: dict, single_ms: float | None = None) -> float:
    """A call's handler time on a full core for `batch` predictions: a single call's time (the benchmark's, unless
    given) plus what each further window adds (the line through the benchmark's single and batch-of-32 points)."""
    if not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"a call carries 1..{MAX_BATCH} predictions, not {batch}")
    return (bench["single_ms"] if single_ms is None else single_ms) + bench["per_window_ms"] * (batch - 1)


def cost_per_prediction(u: Usage, batch: int = 1) -> float:
    """Paid cost of one prediction when `batch` predictions share each request (no free tier)."""
    paid = Usage(**{**asdict(u), "free_tier": False})
    month = monthly_cost(paid)
    return month["total_usd"] / max(1.0, month["quantities"]["requests"] * batch)


def front_door_costs(duration_ms: float, memory_mb: int, arch: str = "x86_64", batch: int = 1) -> dict:
    """USD per million predictions for each front door, `batch` predictions a call of `duration_ms` each, beside the
    guide's design (paid list prices, no free tier, warm requests; the guide's design is x86, single calls)."""
    g = pricing()["guide_claim"]["per_million"]

    def per_million(api: str, dur: float, mem: int, a: str, n: int) -> float:
        return 1e6 * cost_per_prediction(Usage(requests_per_day=1e6 / 30, duration_ms=dur, memory_mb=mem, arch=a, api=api), n)

    guide = per_million(g["api"], g["duration_ms"], g["memory_mb"], "x86_64", 1)
    doors = {api: per_million(api, duration_ms, memory_mb, arch, batch) for api in FRONT_DOORS}
    return {
        "guide_usd": guide,
        "doors": doors,
        "times_cheaper": {k: guide / v for k, v in doors.items()},
        "inputs": {
            "duration_ms": duration_ms,
            "billed_ms": billed_ms(duration_ms),
            "memory_mb": memory_mb,
            "arch": arch,
            "batch": batch,
        },
    }


def spend_cap(u: Usage, plan: dict) -> dict:
    """What caps a month's spend behind the chosen front door (from `python -m deployer plan --json`), what the month costs at
    that cap, and whether the projected traffic goes past it."""
    seconds = u.days * 86400
    projected = u.requests_per_day * u.days
    if u.api == "rest":
        quota = plan["usage_plan"]["quota"]["limit"]
        throttle = plan["usage_plan"]["throttle"]
        cap, what = (
            quota,
            f"the usage plan: {throttle['rateLimit']:g} req/s (burst {throttle['burstLimit']}) and {quota:,} calls a "
            "month; API Gateway refuses calls past the quota (429)",
        )
    elif u.api == "http":
        rate = plan["http"]["throttle"]["ThrottlingRateLimit"]
        burst = plan["http"]["throttle"]["ThrottlingBurstLimit"]
        cap, what = (
            rate * seconds,
            f"stage throttling only: {rate:g} req/s (burst {burst}); an HTTP API has no usage plan or quota, so a "
            f"month can reach {rate * seconds:,.0f} calls",
        )
    elif u.api == "url":
        reserved = plan["url"]["reserved_concurrency"]
        per_env = 1000 / max(u.duration_ms, 1e-3)
        cap, what = (
            reserved * per_env * seconds,
            f"reserved concurrency only: {reserved} environments at once; a Function URL has no usage plan, throttle "
            f"or quota, so at {u.duration_ms:.2f} ms a call a month can reach {reserved * per_env * seconds:,.0f} calls",
        )
    else:
        return {"what": "nothing: a direct invoke needs AWS credentials, which are the cap", "cap_requests": None}
    at_cap = monthly_cost(Usage(**{**asdict(u), "requests_per_day": cap / u.days}))["total_usd"]
    return {
        "what": what,
        "cap_requests": cap,
        "cap_usd": at_cap,
        "projected_requests": projected,
        "exceeds": projected > cap,
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


def paid_per_million(u: Usage) -> dict[str, float]:
    """Each line of `u`'s month at list prices (no free tier) per million calls: what a per-million figure is made of."""
    month = monthly_cost(Usage(**{**asdict(u), "free_tier": False}))
    calls = max(1.0, month["quantities"]["requests"])
    return {line["item"]: line["usd"] / calls * 1e6 for line in month["lines"]}
