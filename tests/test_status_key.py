"""`python -m deployer status` prints the API key's value only with --show-key: not on the terminal, not in --json,
and so not on the Deploy page, which reads `status --json` through its own call."""

from __future__ import annotations

import json

import pytest

from dashboard import processes
from tests import test_dashboard, test_deploy
from tests.test_dashboard import app
from tests.test_deploy import NAMES, client, run, run_cli

aws, small_layer = test_deploy.aws, test_deploy.small_layer  # the same fixtures
down_url, fresh_caches = test_dashboard.down_url, test_dashboard.fresh_caches

pytestmark = pytest.mark.integration

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def the_key(url: str) -> str:
    key = client("ssm", url).get_parameter(Name=NAMES["key_parameter"], WithDecryption=True)["Parameter"]["Value"]
    assert len(key) >= 32
    return key


def status_cli(url: str, *flags: str):
    r = run_cli("status", *flags, "--region", "us-east-1", "--endpoint-url", url, env_extra=CREDENTIALS)
    assert r.returncode == 0, r.stderr
    return r


def rendered(node) -> list[str]:
    """Every element of an AppTest page, protobuf and all (a dataframe's Arrow bytes included)."""
    out = [str(node.proto)] if getattr(node, "proto", None) is not None else []
    for child in (getattr(node, "children", None) or {}).values():
        out += rendered(child)
    return out


def test_status_prints_the_key_only_when_asked(aws, aws_env):
    run(aws)  # the REST door: an API Gateway key and the SSM parameter both exist
    key = the_key(aws_env)
    for flags in ((), ("--json",)):
        r = status_cli(aws_env, *flags)
        assert key not in r.stdout and key not in r.stderr, f"status {' '.join(flags)} printed the key"
    s = json.loads(status_cli(aws_env, "--json").stdout)
    assert s["api_key"]["kept_in"] == f"ssm:{NAMES['key_parameter']}" and "value" not in s["api_key"]
    assert "value" not in json.dumps(s["api_key"])
    # the control: the same calls can see the key, so its absence above means something
    assert json.loads(status_cli(aws_env, "--json", "--show-key").stdout)["api_key"]["value"] == key
    assert key in status_cli(aws_env, "--show-key").stdout


def test_the_deploy_pages_status_never_holds_the_key(aws, aws_env, down_url, monkeypatch):
    run(aws)
    key = the_key(aws_env)
    seen: list[tuple[list[str], list[str]]] = []
    real = processes.stream

    def recorded(cmd, *args, **kwargs):
        lines = list(real(cmd, *args, **kwargs))
        seen.append((cmd, lines))
        yield from lines

    monkeypatch.setattr(processes, "stream", recorded)
    at = app(down_url, page="views/deploy.py")
    at.text_input(key="deploy_endpoint").set_value(aws_env).run()
    at.button(key="deploy_status").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [(cmd, lines)] = [(c, ln) for c, ln in seen if c[2:4] == ["deployer", "status"]]
    assert "--show-key" not in cmd and key not in "\n".join(lines)
    status = at.session_state["deploy_status_json"]
    assert "value" not in status["api_key"] and key not in json.dumps(status)
    page = "\n".join(rendered(at._tree))
    live = status["function"]["versions"][-1]["model"]
    assert live in page, "the walk sees the versions table: the key's absence below means something"
    assert key not in page, "the Deploy page rendered the API key"
