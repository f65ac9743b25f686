"""Cost monitor: the calculator, the cost curves, this deployment's measured usage, the front doors and the budget.

Every figure comes from dashboard/costs.py (the functions `python -m dashboard.costs` and the README use) and names
its duration source: the handler benchmark (benchmarks/results.json) or the local invocation log. The page says so in
plain words; file names and commands sit in its "For developers" expanders.
"""

from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, cost_view, costs, processes, usage, viewstate
from dashboard.costs import money

PAGE = "costs"
ss = st.session_state
st.title("Cost monitor")
logs = processes.invocation_logs()
measured = usage.summarize([r for p in logs for r in usage.read_invocations(p)])
bench = costs.benchmark_durations()
RULES = costs.pricing()["billing_rules"]
PER_DAY = [10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000]
BENCH = "the handler's warm p50 on a full core (`make bench`)" if bench else "no benchmark yet (`make bench`): 1 ms assumed"
single_default = round(bench["single_ms"], 3) if bench else 1.0
per_window = bench["per_window_ms"] if bench else 0.1


def money_parts(parts: dict[str, float]) -> str:
    """A per-million figure as the sum of its lines, each named, so two per-million figures can be told apart."""
    return " + ".join(f"{money(v)} {k}" for k, v in parts.items() if v > 0)


DOOR_NAMES = costs.DOOR_NAMES
DEFAULTS = {
    "cost_requests": 100,
    "cost_batch": 1,
    "cost_duration": single_default,
    "cost_memory": 256,
    "cost_arch": "x86_64",
    "cost_api": costs.FRONT_DOORS[0],
    "cost_snapstart": False,
    "cost_cold": RULES["typical_cold_start_share"],
    "cost_init": round(bench["init_ms"], 1) if bench else 100.0,
    "cost_free": True,
    "cost_budget": 5.0,
}
CHOICES = {
    "cost_requests": PER_DAY,
    "cost_batch": [1, 2, 4, 8, 16, 32, 64],
    "cost_memory": RULES["memory_options_mb"],
    "cost_arch": ["x86_64", "arm64"],
    "cost_api": list(costs.FRONT_DOORS),
}
RANGES = {"cost_duration": (0.01, 1000.0), "cost_cold": (0.0, 0.2), "cost_init": (0.0, 10_000.0), "cost_budget": (0.0, 1e6)}
# the URL holds the settings: a link, Back/Forward or a return to this page sets the widgets (viewstate.py)
view = cost_view.parse(st.query_params.to_dict(), DEFAULTS, CHOICES, RANGES)
if viewstate.follows_url(PAGE):
    ss.update(view)
for k, v in DEFAULTS.items():
    ss.setdefault(k, v)

st.subheader("Calculator")
c1, c2, c3 = st.columns(3)
preds = c1.select_slider("Predictions per day", PER_DAY, key="cost_requests")
batch = c1.select_slider("Predictions per call", CHOICES["cost_batch"], key="cost_batch")
single = c1.number_input(
    "Handler time of a single call, full core (ms)",
    *RANGES["cost_duration"],
    key="cost_duration",
    help=f"Default: {BENCH}. Each window past the first adds {per_window:.3f} ms (same benchmark). The guide assumed 100 ms.",
)
mem = c2.select_slider("Memory (MB)", CHOICES["cost_memory"], key="cost_memory")
arch = c2.radio("Architecture", CHOICES["cost_arch"], horizontal=True, key="cost_arch")
api = c2.radio(
    "Front door",
    list(costs.FRONT_DOORS),
    horizontal=True,
    key="cost_api",
    format_func=DOOR_NAMES.get,
    help="; ".join(f"{DOOR_NAMES[d]}: {costs.door_price_text(d)}" for d in costs.FRONT_DOORS),
)
snap = c2.toggle("SnapStart", key="cost_snapstart", help="restores instead of INIT, plus a snapshot cache fee")
cold = c3.slider(
    "Cold-start share",
    *RANGES["cost_cold"],
    step=0.005,
    key="cost_cold",
    help=f"Default: {RULES['cold_start_source']}. A local run's first calls are all cold, so its share says nothing.",
)
init_full = c3.number_input(
    "INIT per cold start, full core (ms)",
    *RANGES["cost_init"],
    key="cost_init",
    help="Default: the cold-start benchmark (process start to first answer). Billed since 2025-08-01.",
)
free = c3.toggle("Free tier", key="cost_free", help="Lambda's is permanent; API Gateway's lasts 12 months")
budget = st.number_input("Monthly budget (USD)", *RANGES["cost_budget"], step=0.5, key="cost_budget")
viewstate.publish(PAGE, cost_view.params({k: ss[k] for k in DEFAULTS}), cost_view.params(view))

scale = costs.cpu_scale(mem)
call_ms = costs.handler_ms(batch, {"per_window_ms": per_window, "single_ms": single}) * scale
u = costs.Usage(
    requests_per_day=preds / batch,
    duration_ms=call_ms,
    memory_mb=mem,
    arch=arch,
    api=api,
    cold_start_share=cold,
    init_ms=init_full * scale,
    snapstart=snap,
    free_tier=free,
    log_bytes_per_request=800,
    storage_gb=0.001,
)
result = costs.monthly_cost(u)
total = result["total_usd"]
over = total > budget
per_call = costs.cost_per_prediction(u, 1)
a, b, c = st.columns(3)
a.metric(
    "Projected monthly cost",
    money(total),
    delta=f"{'over' if over else 'within'} the {money(budget)} budget",
    delta_color="inverse" if over else "normal",
)
parts = costs.paid_per_million(u)
b.metric(
    "Per million calls, list prices",
    money(per_call * 1e6),
    help="No free tier; every line of the table below, so cold starts' INIT, logs and S3 too: " + money_parts(parts),
)
c.metric("Per million predictions, list prices", money(per_call / batch * 1e6), help=f"the same, {batch} prediction(s) a call")
paid = costs.monthly_cost(replace(u, free_tier=False))["total_usd"]
st.caption(
    f"A call of {batch} prediction(s) takes {call_ms:.2f} ms at {mem} MB ({scale:.2f}x the full-core time: "
    f"{RULES['vcpu_full_at_mb']:,} MB = one vCPU, as in the memory chart), billed {costs.billed_ms(call_ms)} ms; "
    f"{preds / batch:,.0f} calls a day. "
    + (f"Within the free tier: {money(paid)} a month at list prices without it. " if total == 0 else "")
    + f"Per million calls at list prices, {money(per_call * 1e6)} = {money_parts(parts)}."
)
with st.expander("For developers: the same figures from the command line"):
    st.code(f"python -m dashboard.costs {' '.join(costs.cli_args(u))}", language="bash")
    if free:  # with the free tier off the command already holds --no-free-tier
        st.caption("Add --no-free-tier for list prices.")
if over:
    st.error(f"Over budget: the projection ({money(total)} a month) is above the monthly budget ({money(budget)}).")
st.dataframe(
    pd.DataFrame([{"item": x["item"], "USD a month": money(x["usd"]), "how": x["detail"]} for x in result["lines"]]),
    hide_index=True,
    width="stretch",
)
g = costs.guide_claim()
gi = costs.pricing()["guide_claim"]
st.caption(
    f"The guide says {gi['requests_per_day']} predictions a day cost {money(g['claimed_usd'])} a month; its design "
    f"({gi['memory_mb']} MB, {gi['duration_ms']} ms a call, REST, warm calls, no logs) costs {money(g['real_usd'])} at "
    f"list prices ({g['ratio']:.0f}x less): {g['mistake']}. "
    + (
        f"The calculator's {money(paid)} for the same traffic differs because it prices its own settings: "
        f"{mem} MB, {costs.billed_ms(call_ms)} ms billed a call, cold starts' INIT, logs and S3."
        if abs(preds / batch - gi["requests_per_day"]) < 1e-9
        else ""
    )
)

st.subheader("Cost against traffic")
xs = np.logspace(1, 7, 61)
curves = {
    f"{DOOR_NAMES[p]}, {a}": (
        xs.tolist(),
        [costs.monthly_cost(replace(u, requests_per_day=x, arch=a, api=p))["total_usd"] for x in xs],
    )
    for a in ("x86_64", "arm64")
    for p in costs.FRONT_DOORS
}
prices = costs.pricing()
breaks = {
    "1M free requests": prices["lambda"]["free_tier"]["requests"] / u.days,
    "400k free GB-s": prices["lambda"]["free_tier"]["gb_seconds"] / (costs.billed_ms(call_ms) / 1000 * mem / 1024) / u.days,
}
shown = {k: v for k, v in breaks.items() if v < 1e8} if free else {}
st.altair_chart(charts.cost_curves(curves, shown, preds / batch), width="stretch", key="cost_curves")
free_to = max((x for xs, ys in curves.values() for x, y in zip(xs, ys, strict=True) if y <= 0), default=None)
st.caption(
    "Calls a day on the x axis; durations as in the calculator."
    + (
        f" Up to about {free_to:,.0f} calls a day every front door is inside the free tier ($0), which a log axis cannot draw."
        if free_to
        else ""
    )
)

st.subheader("Front doors per million predictions")
if bench:
    rows = {}
    for n in (1, 32):
        fd = costs.front_door_costs(costs.handler_ms(n, bench) * scale, mem, arch, n)
        rows[n] = fd
    st.dataframe(
        pd.DataFrame(
            [{"front door": "the guide's design (REST, 512 MB, 100 ms)", "single calls": money(rows[1]["guide_usd"])}]
            + [
                {
                    "front door": DOOR_NAMES[d],
                    "single calls": money(rows[1]["doors"][d]),
                    "x cheaper than the guide (single calls)": f"{rows[1]['times_cheaper'][d]:.1f}x",
                    "batches of 32": money(rows[32]["doors"][d]),
                    "x cheaper (batches)": f"{rows[32]['times_cheaper'][d]:.1f}x",
                }
                for d in costs.FRONT_DOORS
            ]
        ).fillna("—"),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        f"Duration: {BENCH}, measured {bench['date']}: {bench['single_ms']:.3f} ms single and "
        f"{bench['batch32_ms']:.2f} ms for 32, x {scale:.2f} at {mem} MB = {rows[1]['inputs']['duration_ms']:.2f} ms "
        f"(billed {rows[1]['inputs']['billed_ms']} ms) and {rows[32]['inputs']['duration_ms']:.2f} ms (billed "
        f"{rows[32]['inputs']['billed_ms']} ms). Paid list prices, no free tier, warm calls: Lambda's requests and "
        "compute and the front door only, so below the calculator's per-million figure, which adds cold starts' INIT, "
        "logs and S3. The README's table holds the same figures."
    )
    with st.expander("For developers: this table from the command line"):
        st.code(f"python -m dashboard.costs --front-doors --memory-mb {mem} --arch {arch}  # add --batch 32", language="bash")
else:
    st.info("Run `make bench` to measure the handler; this table prices its single and batch times.")

st.subheader("This deployment, measured")
if measured:
    m = measured
    a, b, c, d = st.columns(4)
    a.metric("calls logged", f"{m['invocations']:,}", help=f"{m['first'][:19]} to {m['last'][:19]}")
    b.metric("predictions", f"{m['predictions']:,}", help=f"{m['single_calls']:,} single calls, {m['batch_calls']:,} batches")
    c.metric("single call p50", f"{m['single_p50_ms']:.2f} ms" if m["single_p50_ms"] is not None else "—")
    d.metric(
        "batch call p50",
        f"{m['batch_p50_ms']:.2f} ms" if m["batch_p50_ms"] is not None else "—",
        help=f"{m['batch_mean_size']:.1f} predictions a batch on average" if m["batch_mean_size"] else None,
    )
    st.caption(
        "Source: the local API's invocation log. Durations are local, on this machine's cores; "
        f"{m['cold_starts']:,} cold start(s) among them (a fresh local API's first calls)."
    )
    if m["unlabelled"]:
        st.warning(
            f"{m['unlabelled']:,} logged call(s) predate the per-call prediction count: they are counted as calls but left "
            "out of every per-prediction figure."
        )
    if m["predictions"]:
        calls_per_pred = m["predict_calls"] / m["predictions"]
        per_call_ms = m["duration_per_prediction_ms"] / calls_per_pred * scale  # a call's time here, scaled to `mem`
        mix = costs.front_door_costs(per_call_ms, mem, arch, 1 / calls_per_pred)
        proj = costs.monthly_cost(
            replace(u, requests_per_day=m["projected_predictions_per_day"] * calls_per_pred, duration_ms=per_call_ms)
        )
        st.write(
            f"At the logged mix ({1 / calls_per_pred:.1f} predictions a call, "
            f"{m['duration_per_prediction_ms']:.3f} ms a prediction here, x {scale:.2f} at {mem} MB), a million "
            f"predictions cost {', '.join(f'{money(v)} ({DOOR_NAMES[k]})' for k, v in mix['doors'].items())} (warm calls, list "
            "prices, as in the table above): "
            f"{mix['times_cheaper']['url']:.1f}x cheaper than the guide through a Function URL at this mix (the table's "
            "single calls are one prediction a call). At the logged rate ("
            f"{m['predictions']:,} predictions in {m['logged_minutes']:.0f} min"
            + (f", counted as {m['span_hours']:.0f} h at least" if m["logged_minutes"] < m["span_hours"] * 60 else "")
            + f": {m['projected_predictions_per_day']:,.0f} a day, extrapolated from that span) this deployment "
            f"would cost **{money(proj['total_usd'])} a month** through the {DOOR_NAMES[api]} with the calculator's settings"
            + ("" if free else " (no free tier)")
            + f"; peak memory {m['max_memory_mb']} MB "
            f"of {m['memory_mb']} MB."
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
                    replace(u, requests_per_day=aws["projected_requests_per_day"], duration_ms=aws["duration"] or 1)
                )
                st.write(
                    f"At the last 24 hours' rate and CloudWatch's mean duration (measured on Lambda, so not scaled), "
                    f"this deployment costs **{money(month['total_usd'])} a month**."
                )
        except Exception as e:  # botocore: no credentials, unreachable endpoint...
            st.error(
                f"CloudWatch did not answer: {type(e).__name__}: {e}. Configure AWS credentials (aws configure) and the region."
            )

st.subheader("Memory against price")
rows = [
    {
        "memory_mb": mb,
        "duration_ms": single * costs.cpu_scale(mb),
        "usd_per_million": costs.front_door_costs(single * costs.cpu_scale(mb), mb, arch)["doors"][api],
    }
    for mb in RULES["memory_options_mb"]
]
st.plotly_chart(charts.memory_tradeoff(pd.DataFrame(rows)), width="stretch", key="cost_memory_chart")
full = RULES["vcpu_full_at_mb"]
st.caption(
    f"Single warm calls through the calculator's front door, the {DOOR_NAMES[api]}, at list prices. Duration: the "
    f"calculator's {single:.3f} ms on a full core ({BENCH}) scaled by "
    f"Lambda's CPU share ({full:,} MB = one vCPU); billed in whole ms per call, so below about {full:,}/duration MB "
    "smaller is cheaper."
)

st.subheader("How the budget is enforced")
try:
    plan = processes.deploy_plan(api)
except RuntimeError as e:
    st.error(str(e))
    st.stop()
try:
    cap = costs.spend_cap(u, plan)
    cap_paid = costs.spend_cap(replace(u, free_tier=False), plan)["cap_usd"]
except (KeyError, TypeError) as e:  # the plan's JSON is the deployer's: say what is missing rather than fail
    st.error(
        f"`python -m deployer plan --json --api {api}` did not include {e} for the {api} front door; the cap cannot be priced."
    )
    st.stop()
st.write(
    f"Through the **{DOOR_NAMES[api]}** ({costs.door_price_text(api)}), what caps the spend is {cap['what']} "
    f"(from the deploy template). At that cap a month costs about **{money(cap['cap_usd'])}** ({money(cap_paid)} "
    "without the free tier) "
    "with the calculator's settings. "
    "Alarms on errors, throttles and p99 duration (in the same template) report trouble."
)
with st.expander("For developers: where the cap comes from"):
    st.code(f"python -m deployer plan --api {api}   # reads lambda/template.yaml", language="bash")
if cap["exceeds"]:
    st.warning(
        f"The projected {cap['projected_requests']:,.0f} calls a month exceed that cap ({cap['cap_requests']:,.0f}): "
        + ("API Gateway will refuse the calls past the quota." if api == "rest" else "calls past it are throttled (429).")
    )
