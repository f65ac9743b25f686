"""The function's resource policy after each front-door switch, read back from moto's server: it holds exactly the
statements the live door needs, and nothing granted to "*" survives a narrowing.

A public Function URL (AuthType NONE) needs two statements since October 2025: lambda:InvokeFunctionUrl and
lambda:InvokeFunction with lambda:InvokedViaFunctionUrl, both to Principal "*"; an AWS_IAM URL needs none for
same-account callers whose identity policy allows the call (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html).
"""

from __future__ import annotations

import json

import pytest

from deployer import commands as deploy
from tests import test_deploy
from tests.test_deploy import NAMES, client, run

aws, small_layer = test_deploy.aws, test_deploy.small_layer  # the same fixtures

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"  # moto's
PUBLIC_URL = {
    ("url-invoke-url", "lambda:InvokeFunctionUrl", "*", ("lambda:FunctionUrlAuthType", "NONE")),
    ("url-invoke-function", "lambda:InvokeFunction", "*", ("lambda:InvokedViaFunctionUrl", "true")),
}


def grant(st: dict) -> tuple:
    """(sid, action, principal, condition) of a statement. AWS writes the URL's conditions under Condition
    (StringEquals lambda:FunctionUrlAuthType, Bool lambda:InvokedViaFunctionUrl); moto flattens them to top-level
    keys: both read the same here."""
    principal = st["Principal"] if isinstance(st["Principal"], str) else st["Principal"].get("Service", st["Principal"])
    cond = {k: str(v).lower() if isinstance(v, bool) else v for c in st.get("Condition", {}).values() for k, v in c.items()}
    for flat in ("FunctionUrlAuthType", "InvokedViaFunctionUrl"):
        if flat in st:
            cond[f"lambda:{flat}"] = str(st[flat]).lower() if isinstance(st[flat], bool) else st[flat]
    return (st["Sid"], st["Action"], principal, next(iter(cond.items())) if len(cond) == 1 else tuple(sorted(cond.items())))


def grants(url: str, qualifier: str | None = "live") -> set[tuple]:
    """The statements on the alias the doors point at (qualifier "live") or on the bare function (None)."""
    lam = client("lambda", url)
    args = {"FunctionName": NAMES["function"], **({"Qualifier": qualifier} if qualifier else {})}
    try:
        return {grant(st) for st in json.loads(lam.get_policy(**args)["Policy"])["Statement"]}
    except lam.exceptions.ResourceNotFoundException:
        return set()


def public(url: str) -> set[tuple]:
    """Every statement to "*", on the alias or the bare function."""
    return {g for g in grants(url) | grants(url, None) if g[2] == "*"}


def url_auth(url: str) -> str:
    return client("lambda", url).get_function_url_config(FunctionName=NAMES["function"], Qualifier="live")["AuthType"]


def test_each_switch_leaves_exactly_the_live_doors_grants(aws, aws_env):
    run(aws, params={"FrontDoor": "url", "UrlAuthType": "NONE"})
    assert url_auth(aws_env) == "NONE" and grants(aws_env) == PUBLIC_URL

    run(aws, params={"FrontDoor": "url", "UrlAuthType": "AWS_IAM"})  # narrowing: both public grants go
    assert url_auth(aws_env) == "AWS_IAM"
    assert grants(aws_env) == set() and public(aws_env) == set(), "a grant to * survived narrowing the URL to AWS_IAM"

    run(aws, params={"FrontDoor": "url", "UrlAuthType": "NONE"}, allow_public=True)  # widening on purpose
    assert url_auth(aws_env) == "NONE" and grants(aws_env) == PUBLIC_URL

    rest = run(aws, params={"FrontDoor": "rest"})  # the URL goes, and with it the public grants
    source = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{rest['api_id']}/*/*/*"
    assert grants(aws_env) == {
        ("apigateway-rest", "lambda:InvokeFunction", "apigateway.amazonaws.com", ("AWS:SourceArn", source))
    }
    assert public(aws_env) == set(), "a grant to * survived the switch from the URL to the REST API"

    run(aws, params={"FrontDoor": "url"})  # back to a URL: the template's default auth, NONE
    assert url_auth(aws_env) == "NONE" and grants(aws_env) == PUBLIC_URL, "the REST API's grant must go with it"

    deploy.teardown(aws, purge=True)
    assert grants(aws_env) == set() and grants(aws_env, None) == set()
    assert NAMES["function"] not in [f["FunctionName"] for f in client("lambda", aws_env).list_functions()["Functions"]]
