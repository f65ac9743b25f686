"""Deploy: build the package and (re)start a local API, or deploy to AWS; status; teardown."""
import json
import re
import secrets

import streamlit as st

from dashboard import data, processes, sidebar
from dashboard.client import EndpointError
from dashboard.config import ROOT

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


st.subheader("Status")
try:
    health = data.client(url, key).health()
    st.success(f"The active endpoint `{url}` answers: model {health.get('model_version')} ({health.get('status')}).")
except EndpointError as e:
    st.warning(f"The active endpoint does not answer: {e.message}")
if (processes.STATE).exists():
    st.caption(f"This dashboard's local API: {json.loads(processes.STATE.read_text()).get('url')}")

st.subheader("Locally")
st.write("Builds `dist/lambda_function.zip` and `dist/layer.zip` with `lambda/package.py`, then starts a fresh local API "
         "(API Gateway + awslambdaric workers) serving them, and makes it the active endpoint.")
if st.button("Deploy locally", type="primary", key="deploy_local"):
    code, _ = run("Building the package", [PY, str(ROOT / "lambda" / "package.py")])
    if code != 0:
        st.error("Packaging failed; the lines above say why.")
    else:
        local_key = key or secrets.token_urlsafe(24)
        with st.spinner("Starting the local API"):
            try:
                new_url = processes.start_local_api(local_key)
            except RuntimeError as e:
                st.error(str(e))
                st.stop()
        data.model_card.clear()
        st.session_state["pending_endpoint"] = (new_url, local_key)
        st.session_state["deploy_result"] = f"Local API running at {new_url}; it is now the active endpoint."
        st.rerun()

st.subheader("To AWS")
c1, c2, c3 = st.columns(3)
region = c1.text_input("Region", "us-east-1", key="deploy_region")
profile = c2.text_input("Profile (optional)", "", key="deploy_profile")
endpoint = c3.text_input("Endpoint URL (optional: an emulator)", "", key="deploy_endpoint")
aws_args = ["--region", region] + (["--profile", profile] if profile else []) + (["--endpoint-url", endpoint] if endpoint else [])
if st.button("Deploy to AWS", key="deploy_aws"):
    code, lines = run("Deploying with lambda/deploy.py", [PY, str(ROOT / "lambda" / "deploy.py"), "deploy", *aws_args])
    found = next((m.group(1) for ln in lines if (m := re.search(r"Invoke URL: (\S+)", ln))), None)
    if code != 0 or not found:
        st.error("The deploy did not finish: " + (lines[-1] if lines else "no output") +
                 " (credentials: `aws configure`, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    else:
        status_lines = list(processes.stream([PY, str(ROOT / "lambda" / "deploy.py"), "status", "--json", "--show-key", *aws_args]))
        try:
            aws_key = json.loads("\n".join(status_lines[:-1]))["api_key"]["value"]
        except (ValueError, KeyError, TypeError):
            aws_key = key
        data.model_card.clear()
        st.session_state["pending_endpoint"] = (found, aws_key)
        st.session_state["deploy_result"] = f"Deployed: {found} is now the active endpoint."
        st.rerun()

if st.session_state.get("deploy_result"):
    st.success(st.session_state["deploy_result"])
    st.code(url)

with st.expander("What is deployed on AWS"):
    if st.button("Read status", key="deploy_status"):
        out = list(processes.stream([PY, str(ROOT / "lambda" / "deploy.py"), "status", *aws_args]))
        (st.code if out[-1] == "exit 0" else st.error)("\n".join(out[:-1]))

st.subheader("Tear down")
confirm = st.checkbox("I understand this deletes the function, API, key, usage plan, alarms and role "
                      "(the versioned model bucket is kept)", key="deploy_confirm")
if st.button("Tear down AWS deployment", disabled=not confirm, key="deploy_teardown"):
    code, lines = run("Tearing down", [PY, str(ROOT / "lambda" / "deploy.py"), "teardown", *aws_args])
    if code != 0:
        st.error("Teardown failed: " + (lines[-1] if lines else "no output"))
