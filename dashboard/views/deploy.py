"""Deploy: build the package and (re)start a local API, or deploy to AWS (front door, canary); versions, rollback, teardown."""

import json
import re
import secrets

import pandas as pd
import streamlit as st

from dashboard import config, costs, data, processes, sidebar
from dashboard.config import ROOT
from dashboard.text import plain  # endpoint strings are shown as text, never Markdown
from models.client import EndpointError

st.title("Deploy")
url, key, _ = sidebar.settings()
PY = processes.PY


def run(label: str, cmd: list[str], env: dict | None = None) -> tuple[int, list[str]]:
    """Run one of the repository's tools, streaming its lines into a status box."""
    lines: list[str] = []
    with st.status(label, expanded=True) as box:
        for line in processes.stream(cmd, env):
            if line.startswith("exit "):
                code = int(line.split()[1])
                break
            lines.append(line)
            st.text(line)
        box.update(label=f"{label}: {'done' if code == 0 else 'failed'}", state="complete" if code == 0 else "error")
    return code, lines


def outcome(where: str, title: str) -> None:
    """The last deploy's message and log, kept in the session so that a rerun does not wipe them."""
    if st.session_state.get(f"deploy_{where}_log"):
        code, lines = st.session_state[f"deploy_{where}_log"]
        with st.expander(f"{title} ({'done' if code == 0 else f'failed, exit {code}'})"):
            st.code("\n".join(lines[-400:]) or "(no output)", language=None)
    if st.session_state.get(f"deploy_{where}_result"):
        kind, message = st.session_state[f"deploy_{where}_result"]
        (st.success if kind == "success" else st.error)(message)


st.subheader("Status")
try:
    health = data.client(url, key).health()
    st.success(
        f"The active endpoint {plain(url)} answers: model {plain(health.get('model_version'))} ({plain(health.get('status'))})."
    )
except EndpointError as e:
    st.warning(f"The active endpoint does not answer: {plain(e.message)}")
switch = config.dashboard_switch()
if switch:
    st.caption(f"This dashboard's local API (the endpoint every new session starts with while it runs): {plain(switch['url'])}")

st.subheader("Locally")
st.write(
    "Builds the function's package and its layer of dependencies, then starts a fresh local API "
    "(API Gateway + awslambdaric workers) serving them. It becomes the active endpoint of this session at once, and "
    "of every session opened afterwards (a reload, another browser) for as long as it runs; a tab already open "
    "elsewhere keeps its endpoint until it is reloaded."
)
with st.expander("For developers: the files and commands behind this button"):
    st.code(f"{PY} lambda/package.py   # builds dist/lambda_function.zip and dist/layer.zip\n{PY} -m local_api", language="bash")
if st.button("Deploy locally", type="primary", key="deploy_local"):
    code, lines = run("Building the package", [PY, str(ROOT / "lambda" / "package.py")])
    st.session_state["deploy_local_log"] = (code, lines)
    if code != 0:
        st.session_state["deploy_local_result"] = ("error", "Packaging failed; the build log says why.")
    else:
        local_key = key or secrets.token_urlsafe(24)
        with st.spinner("Starting the local API"):
            try:
                new_url = processes.start_local_api(local_key)
            except RuntimeError as e:
                st.session_state["deploy_local_result"] = ("error", str(e))
            else:
                data.model_card.clear()
                st.session_state["pending_endpoint"] = (new_url, local_key)
                st.session_state["deploy_local_result"] = (
                    "success",
                    f"Local API running at {new_url}: the dashboard's active endpoint from now on, for this and every "
                    "new session, while it runs.",
                )
    st.rerun()
outcome("local", "Build log of the last local deploy")

st.subheader("To AWS")
c1, c2, c3 = st.columns(3)
region = c1.text_input("Region", "us-east-1", key="deploy_region")
profile = c2.text_input("Profile (optional)", "", key="deploy_profile")
endpoint = c3.text_input("Endpoint URL (optional: an emulator)", "", key="deploy_endpoint")
aws_args = ["--region", region] + (["--profile", profile] if profile else []) + (["--endpoint-url", endpoint] if endpoint else [])
d1, d2 = st.columns(2)
door = d1.radio(
    "Front door",
    list(costs.FRONT_DOORS),
    horizontal=True,
    key="deploy_front_door",
    format_func=costs.DOOR_NAMES.get,
    help="REST API: API key, usage plan and throttling at API Gateway. HTTP API: the function checks the key. "
    "Function URL: reserved concurrency caps the spend. Prices: "
    + "; ".join(f"{costs.DOOR_NAMES[d]} {costs.door_price_text(d)}" for d in costs.FRONT_DOORS)
    + ". The old front door is removed.",
)
canary = d2.number_input(
    "Canary: share of traffic to the new version first (%, 0 = none)",
    0,
    50,
    0,
    5,
    key="deploy_canary",
    help="The deployer watches the error and p99 alarms, then promotes or rolls back by itself",
)
minutes = d2.number_input("Canary watch (minutes)", 1, 60, 10, key="deploy_canary_minutes", disabled=not canary)
deploy_args = (
    ["--api", door]
    + (["--canary", str(canary), "--canary-minutes", str(minutes)] if canary else [])
    + (["--no-verify"] if endpoint else [])
)
try:
    plan = processes.deploy_plan(door)
    runtime = plan["function"]["Runtime"]
    st.caption(f"Runtime: {processes.runtime_support(runtime)}.")
except (RuntimeError, KeyError, TypeError) as e:
    plan = None
    st.error(str(e) if isinstance(e, RuntimeError) else f"`python -m deployer plan --json` did not include the function's {e}.")
if endpoint:
    st.caption("An emulator cannot run the function, so the new version is not invoked before `live` moves (--no-verify).")
if plan:
    fn = plan["function"]
    bench = costs.benchmark_durations()
    with st.expander(f"What a deploy through the {costs.DOOR_NAMES[door]} creates", expanded=True):
        try:  # wrapped: a plan line cut mid-word at 1280 px hides what it creates
            st.code(processes.deploy_plan_text(door), language=None, wrap_lines=True)
        except RuntimeError as e:
            st.error(str(e))
        if bench and fn.get("MemorySize") and fn.get("Architectures"):
            ms = bench["single_ms"] * costs.cpu_scale(fn["MemorySize"])
            arch = fn["Architectures"][0]
            fd = costs.front_door_costs(ms, fn["MemorySize"], arch)
            st.write(
                f"Cost: {costs.money(fd['doors'][door])} per million single predictions through the "
                f"{costs.DOOR_NAMES[door]} at {fn['MemorySize']} MB {arch} ({ms:.2f} ms a call, billed {costs.billed_ms(ms)} "
                "ms: the handler benchmark; paid list prices, no free tier), plus the model bucket's storage."
            )
    sure = st.checkbox(
        f"I have read the plan: create or update these resources in {region}" + (f" at {endpoint}" if endpoint else ""),
        key="deploy_aws_confirm",
    )
    if st.button("Deploy to AWS", key="deploy_aws", disabled=not sure):
        code, lines = run("Deploying with python -m deployer", [PY, "-m", "deployer", "deploy", *deploy_args, *aws_args])
        found = next((m.group(1) for ln in lines if (m := re.search(r"Invoke URL: (\S+)", ln))), None)
        if code != 0 or not found:
            last = lines[-1] if lines else "no output"
            # the deployer names the fix for missing credentials itself: the hint is added only where it did not
            hint = "" if "aws configure" in "\n".join(lines) else " Credentials: `aws configure`, or AWS_ACCESS_KEY_ID."
            st.session_state["deploy_aws_log"] = (code, lines[:-1])  # its last line is the message below
            st.session_state["deploy_aws_result"] = ("error", f"The deploy did not finish (exit {code}): {last}{hint}")
            st.rerun()  # the outcome below replaces the live box, so its last line is not shown twice
        else:
            status_lines = list(processes.stream([PY, "-m", "deployer", "status", "--json", "--show-key", *aws_args]))
            try:
                aws_key = json.loads("\n".join(status_lines[:-1]))["api_key"]["value"]
            except (ValueError, KeyError, TypeError):
                aws_key = key
            data.model_card.clear()
            st.session_state["deploy_aws_log"] = (code, lines)
            st.session_state["pending_endpoint"] = (found, aws_key)
            st.session_state["deploy_aws_result"] = ("success", f"Deployed: {found} is now this session's active endpoint.")
            st.rerun()
outcome("aws", "Log of the last AWS deploy")

st.subheader("Versions and rollback")
if st.button("Read what is deployed", key="deploy_status"):
    out = list(processes.stream([PY, "-m", "deployer", "status", "--json", *aws_args]))
    try:
        st.session_state["deploy_status_json"] = json.loads("\n".join(out[:-1]))
    except ValueError:
        st.session_state.pop("deploy_status_json", None)
        st.error("Could not read the deployment: " + (out[-2] if len(out) > 1 else out[-1]))
status = st.session_state.get("deploy_status_json")
if status:
    fn = status.get("function")
    if not fn:
        st.info(f"Nothing is deployed in {status.get('region')}.")
    else:
        st.write(f"Front door **{status.get('front_door') or 'none'}** at `{status.get('url', '-')}`; {fn['runtime_support']}.")
        st.dataframe(pd.DataFrame(fn["versions"]), hide_index=True, width="stretch")
        # only versions that passed their post-publish check; the one `live` was on before comes first
        passed = [v["version"] for v in fn["versions"] if not v["live"] and v.get("check") == "passed"][::-1]
        first = fn.get("rollback_to")
        older = ([first] if first in passed else []) + [v for v in passed if v != first]
        if fn.get("canary"):
            cancel = st.checkbox(
                f"Cancel the canary: all traffic back to version {fn['alias_version']}", key="deploy_rollback_confirm"
            )
            if st.button("Cancel canary", disabled=not cancel, key="deploy_rollback"):
                code, _ = run("Cancelling the canary", [PY, "-m", "deployer", "rollback", *aws_args])
                st.session_state.pop("deploy_status_json", None)
                if code != 0:
                    st.error("The rollback failed; the lines above say why.")
        elif not older:
            st.info("No other version passed its post-publish check, so there is nothing to roll back to.")
        else:
            target = st.selectbox(
                "Roll `live` back to version (versions that passed their check)", older, key="deploy_rollback_to"
            )
            sure = st.checkbox(
                f"Move `live` from version {fn['alias_version']} to version {target}", key="deploy_rollback_confirm"
            )
            if st.button("Roll back", disabled=not sure, key="deploy_rollback"):
                code, _ = run("Rolling back", [PY, "-m", "deployer", "rollback", "--to", str(target), *aws_args])
                st.session_state.pop("deploy_status_json", None)
                if code != 0:
                    st.error("The rollback failed; the lines above say why.")

st.subheader("Tear down")
confirm = st.checkbox(
    "I understand this deletes the function, its front door (API, key, usage plan or URL), alarms, role and "
    "log group (the versioned model bucket is kept)",
    key="deploy_confirm",
)
if st.button("Tear down AWS deployment", disabled=not confirm, key="deploy_teardown"):
    code, lines = run("Tearing down", [PY, "-m", "deployer", "teardown", *aws_args])
    if code != 0:
        st.error("Teardown failed: " + (lines[-1] if lines else "no output"))
