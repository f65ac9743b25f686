"""The AWS session every step shares, the errors the deployer prints without a traceback, and the tag rules."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path


class DeployError(Exception):
    """A failure with a message that says what to do; printed without a traceback."""


class Collision(DeployError):
    """A resource with our name exists but is not ours: stop before changing anything."""


def say(step: str, msg: str) -> None:
    print(f"[{step}] {msg}", flush=True)


class Aws:
    """One boto3 session; clients are made once each and may point at an emulator (--endpoint-url)."""

    def __init__(self, region: str | None, profile: str | None, endpoint_url: str | None):
        import boto3
        import botocore.config
        import botocore.exceptions

        self.exc = botocore.exceptions
        try:
            self.session = boto3.Session(profile_name=profile, region_name=region)
        except self.exc.ProfileNotFound:
            raise DeployError(f"AWS profile {profile!r} is not configured; run `aws configure --profile {profile}`") from None
        self.region = self.session.region_name
        if not self.region:
            raise DeployError("no AWS region: pass --region (e.g. us-east-1) or set AWS_DEFAULT_REGION")
        if self.session.get_credentials() is None:
            raise DeployError(
                "no AWS credentials: run `aws configure`, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or pass --profile" + (" (an emulator accepts any values, e.g. testing/testing)" if endpoint_url else "")
            )
        self.endpoint_url = endpoint_url
        self.config = botocore.config.Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        self._clients: dict = {}
        self._account: str | None = None

    def __call__(self, service: str):
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url, config=self.config)
        return self._clients[service]

    def code(self, err) -> str:
        return err.response.get("Error", {}).get("Code", "") if hasattr(err, "response") else ""

    def missing(self, err, *codes: str) -> bool:
        return isinstance(err, self.exc.ClientError) and self.code(err) in (
            codes or ("ResourceNotFoundException", "NotFoundException")
        )

    def account(self) -> str:
        if self._account is None:
            self._account = self("sts").get_caller_identity()["Account"]
        return self._account

    def rest_url(self, api_id: str, stage: str) -> str:
        if self.endpoint_url:  # moto's address for a deployed stage
            return f"{self.endpoint_url.rstrip('/')}/restapis/{api_id}/{stage}/_user_request_"
        return f"https://{api_id}.execute-api.{self.region}.amazonaws.com/{stage}"


def bucket_name(aws: Aws, project: str) -> str:
    """Globally unique and predictable: a resumed deploy finds the bucket an interrupted one created."""
    return f"{project}-models-{aws.account()}-{aws.region}"


def b64sha(path: Path) -> str:
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def is_ours(tags: dict | None, want: dict) -> bool:
    """Ours only when every one of the stack's tags is there with our value: another stack of this app is not us."""
    tags = tags or {}
    return all(tags.get(k) == v for k, v in want.items())


def tag_list(tags: dict) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tag_dict(pairs: list[dict] | None) -> dict:
    return {t["Key"]: t["Value"] for t in pairs or []}


def refuse(kind: str, name: str, found_tags: dict | None, want: dict, extra: str = "") -> Collision:
    have = ", ".join(f"{k}={v}" for k, v in (found_tags or {}).items()) or "no tags"
    return Collision(
        f"a {kind} named {name!r} already exists and is not this stack's (it has {have}; ours carry "
        f"{', '.join(f'{k}={v}' for k, v in want.items())}){extra}. Nothing was created or changed: choose other "
        "names with the template's parameters (--param FunctionName=..., ApiName=...) or remove that resource yourself"
    )


def wait_updated(aws: Aws, name: str, timeout_s: float = 120) -> None:
    """Wait until the function has applied its last change (Lambda refuses a second update while one runs)."""
    lam = aws("lambda")
    t_end = time.time() + timeout_s
    while time.time() < t_end:
        c = lam.get_function_configuration(FunctionName=name)
        if c.get("State", "Active") != "Pending" and c.get("LastUpdateStatus", "Successful") != "InProgress":
            if c.get("State") == "Failed" or c.get("LastUpdateStatus") == "Failed":
                raise DeployError(f"function {name} failed to update: {c.get('StateReason') or c.get('LastUpdateStatusReason')}")
            return
        time.sleep(1)
    raise DeployError(f"function {name} is still updating after {timeout_s:.0f} s; run deploy again")
