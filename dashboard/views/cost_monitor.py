"""Cost monitor: the calculator, the cost curves, this deployment's measured usage, and the budget."""

import json

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, costs, processes, usage
from dashboard.config import ROOT

st.title("Cost monitor")
records = [r for p in processes.invocation_logs() for r in usage.read_invocations(p)]
measured = usage.summarize(records)
REQS = [10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000]
default_dur = int(round(measured["billed_mean_ms"])) if measured else 2

st.subheader("Calculator")
c1, c2, c3 = st.columns(3)
rpd = c1.select_slider("Requests per day", REQS, value=100, key="cost_requests")
dur = c1.slider(
    "Billed duration per request (ms)",
    1,
    1000,
    default_dur,
    key="cost_duration",
    help="Measured locally: see below. The guide assumed 100 ms.",
)
RULES = costs.pricing()["billing_rules"]
mem = c2.select_slider("Memory (MB)", RULES["memory_options_mb"], value=256, key="cost_memory")
arch = c2.radio("Architecture", ["x86_64", "arm64"], horizontal=True, key="cost_arch")
api = c2.radio(
    "Front door",
    ["rest", "http", "url"],
    horizontal=True,
    key="cost_api",
    help="rest = REST API with usage plan ($3.50/M); http = HTTP API ($1.00/M); url = Function URL (no per-request charge)",
)
snap = c2.toggle("SnapStart", value=False, key="cost_snapstart", help="restores instead of INIT, plus a snapshot cache fee")
cold = c3.slider(
    "Cold-start share", 0.0, 0.2, float(round(measured["cold_start_share"], 3)) if measured else 0.01, 0.005, key="cost_cold"
)
init = c3.number_input(
    "INIT per cold start (ms)",
    0,
    10_000,
    int(measured["init_ms_mean"]) if measured and measured["init_ms_mean"] else 400,
    key="cost_init",
    help="Billed since 2025-08-01. Locally measured; about 3.5x longer at 512 MB.",
)
free = c3.toggle("Free tier", value=True, key="cost_free", help="Lambda's is permanent; API Gateway's lasts 12 months")
budget = st.number_input("Monthly budget (USD)", 0.0, 1e6, 5.0, 0.5, key="cost_budget")

u = costs.Usage(
    requests_per_day=rpd,
    duration_ms=dur,
    memory_mb=mem,
    arch=arch,
    api=api,
    cold_start_share=cold,
    init_ms=init,
    snapstart=snap,
    free_tier=free,
    log_bytes_per_request=800,
    storage_gb=0.001,
)
result = costs.monthly_cost(u)
total = result["total_usd"]
over = total > budget
st.metric(
    "Projected monthly cost",
    f"${total:,.4f}",
    delta=f"{'over' if over else 'within'} the ${budget:,.2f} budget",
    delta_color="inverse" if over else "normal",
)
if over:
    st.markdown(f":red-background[**Over budget:** ${total:,.4f} a month against ${budget:,.2f}.]")
    st.error(f"The projection (${total:,.4f}) is above the monthly budget (${budget:,.2f}).")
st.dataframe(
    pd.DataFrame([{"item": x["item"], "USD/month": round(x["usd"], 6), "how": x["detail"]} for x in result["lines"]]),
    hide_index=True,
    width="stretch",
)
g = costs.guide_claim()
st.caption(
    f"The guide says 100 predictions a day cost ${g['claimed_usd']:.2f} a month; with list prices it is "
    f"${g['real_usd']:.4f} before the free tier ({g['ratio']:.0f}x less): {g['mistake']}."
)

st.subheader("Cost against traffic")
xs = np.logspace(1, 7, 61)
curves = {
    f"{a} {p.upper()}": (
        xs.tolist(),
        [costs.monthly_cost(costs.Usage(**{**u.__dict__, "requests_per_day": x, "arch": a, "api": p}))["total_usd"] for x in xs],
    )
    for a in ("x86_64", "arm64")
    for p in ("rest", "http", "url")
}
prices = costs.pricing()
breaks = {
    "1M free requests": prices["lambda"]["free_tier"]["requests"] / u.days,
    "400k free GB-s": prices["lambda"]["free_tier"]["gb_seconds"] / (costs.billed_ms(dur) / 1000 * mem / 1024) / u.days,
}
if free:
    st.plotly_chart(
        charts.cost_curves(curves, {k: v for k, v in breaks.items() if v < 1e8}, rpd), width="stretch", key="cost_curves"
    )
else:
    st.plotly_chart(charts.cost_curves(curves, {}, rpd), width="stretch", key="cost_curves")

st.subheader("This deployment, measured")
if measured:
    m = measured
    a, b, c, d = st.columns(4)
    a.metric("invocations logged", f"{m['invocations']:,}", help=f"{m['first'][:19]} to {m['last'][:19]}")
    b.metric("duration p50 / p99", f"{m['duration_p50_ms']:.1f} / {m['duration_p99_ms']:.1f} ms")
    c.metric("billed per call", f"{m['billed_mean_ms']:.2f} ms", help="whole ms, rounded up")
    d.metric(
        "cold starts", f"{m['cold_starts']} ({m['cold_start_share']:.1%})", help=f"INIT {m['init_ms_mean']:.0f} ms on average"
    )
    proj = costs.monthly_cost(
        costs.Usage(
            requests_per_day=m["projected_requests_per_day"],
            duration_ms=m["billed_mean_ms"],
            memory_mb=m["memory_mb"] or 256,
            cold_start_share=m["cold_start_share"],
            init_ms=m["init_ms_mean"],
            free_tier=free,
            api="rest",
        )
    )
    st.write(
        f"At the logged rate ({m['projected_requests_per_day']:,.0f} requests a day over {m['span_hours']:.1f} h), this "
        f"deployment would cost **${proj['total_usd']:,.4f} a month** on AWS; peak memory {m['max_memory_mb']} MB of "
        f"{m['memory_mb']} MB."
    )
else:
    st.info(
        "No local invocations logged yet: make some forecasts (the Forecast page) and come back. "
        "Deployed to AWS? Read its CloudWatch metrics below."
    )
with st.expander("Deployed to AWS: CloudWatch (last 24 h)"):
    region = st.text_input("Region", st.session_state.get("deploy_region", "us-east-1"), key="cost_region")
    endpoint = st.text_input("Endpoint URL (emulator)", st.session_state.get("deploy_endpoint", ""), key="cost_endpoint")
    if st.button("Read CloudWatch", key="cost_cloudwatch"):
        try:
            import boto3

            cw = boto3.client("cloudwatch", region_name=region, endpoint_url=endpoint or None)
            aws = usage.cloudwatch_usage(cw, "financial-forecasting-lstm")
            a, b, c, d = st.columns(4)
            a.metric("invocations (24 h)", f"{aws['invocations']:,.0f}")
            b.metric("errors", f"{aws['errors']:,.0f}")
            c.metric("throttles", f"{aws['throttles']:,.0f}")
            d.metric("mean duration", f"{aws['duration']:.2f} ms" if aws["duration"] is not None else "—")
            if aws["invocations"]:
                month = costs.monthly_cost(
                    costs.Usage(
                        requests_per_day=aws["projected_requests_per_day"],
                        duration_ms=aws["duration"] or 1,
                        memory_mb=mem,
                        arch=arch,
                        api=api,
                        free_tier=free,
                    )
                )
                st.write(f"At the last 24 hours' rate this deployment costs **${month['total_usd']:,.4f} a month**.")
        except Exception as e:  # botocore: no credentials, unreachable endpoint...
            st.error(
                f"CloudWatch did not answer: {type(e).__name__}: {e}. Configure AWS credentials (aws configure) and the region."
            )

st.subheader("Memory against price")
base = measured["duration_p50_ms"] if measured else 1.5
rows = [
    {
        "memory_mb": mb,
        "duration_ms": base * costs.cpu_scale(mb),
        "usd_per_million": costs.monthly_cost(
            costs.Usage(
                requests_per_day=1e6 / 30, duration_ms=base * costs.cpu_scale(mb), memory_mb=mb, api="none", free_tier=False
            )
        )["total_usd"],
    }
    for mb in RULES["memory_options_mb"]
]
st.plotly_chart(charts.memory_tradeoff(pd.DataFrame(rows)), width="stretch", key="cost_memory_chart")
full = RULES["vcpu_full_at_mb"]
st.caption(
    f"Estimated from the measured {base:.2f} ms (a full core here) scaled by Lambda's CPU share ({full:,} MB = one vCPU); "
    f"duration is rounded up to whole ms per call, so below about {full:,}/duration MB, smaller is cheaper."
)

st.subheader("Front doors per million predictions")
doors = costs.front_door_costs(base * costs.cpu_scale(mem), mem, arch)
st.dataframe(
    pd.DataFrame(
        [
            {
                "front door": "the guide's design (REST, 512 MB, 100 ms)",
                "USD per million": round(doors["guide_usd"], 3),
                "times cheaper": 1.0,
            }
        ]
        + [
            {"front door": k, "USD per million": round(v, 3), "times cheaper": round(doors["times_cheaper"][k], 1)}
            for k, v in doors["doors"].items()
        ]
    ),
    hide_index=True,
    width="stretch",
)
st.caption(
    f"At {mem} MB: {doors['inputs']['duration_ms']:.2f} ms a request, billed {doors['inputs']['billed_ms']} ms; paid list "
    "prices. A Function URL has no per-request charge; its reserved concurrency caps what anyone can spend."
)

st.subheader("Cost per prediction: single against a batch of 32")
bench = ROOT / "benchmarks" / "results.json"
w = json.loads(bench.read_text()).get("warm") if bench.exists() else None
if w:
    share = costs.cpu_scale(mem)
    single_ms = float(np.median([r["p50_us"] for r in w["ours"]])) / 1000
    batch_ms = float(np.median([r["batch32_p50_ms"] for r in w["ours"]]))
    per = {
        n: costs.cost_per_prediction(
            costs.Usage(requests_per_day=1e5, duration_ms=ms * share, memory_mb=mem, arch=arch, api=api), n
        )
        for n, ms in ((1, single_ms), (32, batch_ms))
    }
    st.write(
        f"Paid list prices at {mem} MB: **${per[1] * 1e6:,.2f}** per million single predictions against "
        f"**${per[32] * 1e6:,.2f}** "
        f"per million in batches of 32. The handler's measured time (benchmarks/results.json: {single_ms:.2f} ms single, "
        f"{batch_ms:.2f} ms per batch on a full core) is scaled by the CPU share at {mem} MB and billed in whole ms."
    )
else:
    st.info("Run `make bench` to measure single and batch latency; this section prices them.")

st.subheader("How the budget is enforced")
try:
    plan = processes.deploy_plan()["usage_plan"]
except RuntimeError as e:
    st.error(str(e))
    st.stop()
at_quota = costs.monthly_cost(costs.Usage(**{**u.__dict__, "requests_per_day": plan["quota"]["limit"] / 30}))["total_usd"]
at_quota_paid = costs.monthly_cost(
    costs.Usage(**{**u.__dict__, "requests_per_day": plan["quota"]["limit"] / 30, "free_tier": False})
)["total_usd"]
st.write(
    f"`deploy.py` creates a usage plan of {plan['throttle']['rateLimit']:g} req/s (burst {plan['throttle']['burstLimit']}) and "
    f"{plan['quota']['limit']:,} requests a month: API Gateway refuses calls past the quota, so these settings cap the "
    f"month at about **${at_quota:,.2f}** (${at_quota_paid:,.2f} without the free tier). Alarms on errors, throttles "
    "and p99 duration (template.yaml) report trouble."
)
