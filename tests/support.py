"""Helpers the tests share: paths, the sample key, event builders, a free port, and the real servers they start
(through models.processes, so none outlives a killed pytest).

Imported as a library (`from tests.support import ...`); conftest.py holds only fixtures. Nothing here imports
pandas, torch or models/ beyond models.processes (standard library only), so the function's own suite
(tests/function, run on the runtime's CPython) can use it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_DIR = ROOT / "lambda"
RUNTIME_DIR = ROOT / "models" / "runtime"
EVENTS_DIR = LAMBDA_DIR / "events"
for _p in (str(ROOT), str(LAMBDA_DIR)):
    if _p not in sys.path:
        sys.path.append(_p)

from smoke import SAMPLE_KEY  # noqa: E402  (the key lambda/events/*.json carry: defined once, in lambda/smoke.py)

from models import processes  # noqa: E402  (standard library only: the function's own suite can import it)
from models.processes import launch, stop_group, wait_for  # noqa: E402,F401


def free_port() -> int:
    """Any free loopback port."""
    return processes.free_port(0)


def load_event(name: str) -> dict:
    return json.loads((EVENTS_DIR / name).read_text())


# --- events -------------------------------------------------------------------------------------


def rest(body=None, method="POST", path="/predict", headers=None, b64=False, raw=None):
    """A REST v1 proxy event as API Gateway builds it."""
    ev = load_event("rest_v1_predict.json")
    ev["httpMethod"], ev["path"], ev["resource"] = method, path, path
    ev["headers"] = {"Content-Type": "application/json", "X-API-Key": SAMPLE_KEY} if headers is None else headers
    ev["multiValueHeaders"] = None
    text = raw if raw is not None else (None if body is None else json.dumps(body))
    if b64 and text is not None:
        text = base64.b64encode(text.encode()).decode()
    ev["body"], ev["isBase64Encoded"] = text, b64
    return ev


def http_api(body=None, method="POST", path="/predict", headers=None, b64=False, raw=None, stage="$default"):
    """An HTTP API (payload format 2.0) event as API Gateway builds it: routeKey names the route."""
    ev = load_event("http_v2_predict.json")
    host = "abcdef1234.execute-api.us-east-1.amazonaws.com"
    ev["routeKey"] = ev["requestContext"]["routeKey"] = f"{method} {path}"
    ev["rawPath"] = path if stage == "$default" else f"/{stage}{path}"
    ev["requestContext"].update(domainName=host, apiId="abcdef1234", stage=stage)
    ev["requestContext"]["http"].update(method=method, path=ev["rawPath"])
    ev["headers"] = {"content-type": "application/json", "x-api-key": SAMPLE_KEY} if headers is None else dict(headers)
    ev["headers"]["host"] = host
    text = raw if raw is not None else (None if body is None else json.dumps(body))
    if b64 and text is not None:
        text = base64.b64encode(text.encode()).decode()
    ev["body"], ev["isBase64Encoded"] = text, b64
    if text is None:
        del ev["body"]  # payload 2.0 omits the body of a request that has none
    return ev


def function_url(body=None, method="POST", path="/predict", headers=None, b64=False, raw=None):
    """A Lambda Function URL event: payload 2.0, routeKey and stage "$default", a lambda-url host."""
    ev = http_api(body, method, path, headers, b64, raw)
    host = "abc123.lambda-url.us-east-1.on.aws"
    ev["routeKey"] = ev["requestContext"]["routeKey"] = "$default"
    ev["requestContext"].update(domainName=host, apiId="abc123", stage="$default")
    ev["headers"]["host"] = host
    return ev


# every front door that carries headers (direct invoke carries none: IAM authorizes it)
HTTP_SOURCES = {"rest": rest, "http_api": http_api, "function_url": function_url}


def call(handler, event):
    out = handler.lambda_handler(event, None)
    body = json.loads(out["body"]) if out.get("body") else None
    return out["statusCode"], out["headers"], body


def assert_cors(headers):
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "X-API-Key" in headers["Access-Control-Allow-Headers"]
    assert "POST" in headers["Access-Control-Allow-Methods"]


def with_(features, **changes):
    """A copy of `features` with entries replaced: with_(f, i7=1.5) sets f[7]."""
    f = list(features)
    for i, v in changes.items():
        f[int(i[1:])] = v
    return f


# the bad-input table the handler and OpenAPI tests share
# (name, event builder(features) -> event, status, code)
BAD = [
    ("malformed json", lambda f: rest(raw='{"ticker": "AAPL", '), 400, "invalid_json"),
    (
        "NaN literal",
        lambda f: rest(raw=json.dumps({"ticker": "AAPL", "features": f}).replace(str(f[5]), "NaN", 1)),
        400,
        "invalid_json",
    ),
    (
        "Infinity literal",
        lambda f: rest(raw=json.dumps({"ticker": "AAPL", "features": f}).replace(str(f[5]), "Infinity", 1)),
        400,
        "invalid_json",
    ),
    (
        "number overflowing a double",
        lambda f: rest(raw=json.dumps({"ticker": "AAPL", "features": f}).replace(str(f[5]), "1e999", 1)),
        400,
        "invalid_json",
    ),
    ("empty body", lambda f: rest(raw=""), 400, "missing_body"),
    ("no body", lambda f: rest(None), 400, "missing_body"),
    ("body is a list", lambda f: rest(f), 400, "invalid_body"),
    ("body is a string", lambda f: rest("AAPL"), 400, "invalid_body"),
    ("missing ticker", lambda f: rest({"features": f}), 400, "missing_field"),
    ("missing features", lambda f: rest({"ticker": "AAPL"}), 400, "missing_field"),
    ("misspelt key", lambda f: rest({"ticker": "AAPL", "feature": f}), 400, "unknown_field"),
    ("599 numbers", lambda f: rest({"ticker": "AAPL", "features": f[:-1]}), 400, "wrong_length"),
    ("601 numbers", lambda f: rest({"ticker": "AAPL", "features": f + [0.0]}), 400, "wrong_length"),
    (
        "nested 60x10",
        lambda f: rest({"ticker": "AAPL", "features": [f[i : i + 10] for i in range(0, 600, 10)]}),
        400,
        "wrong_length",
    ),
    ("features a string", lambda f: rest({"ticker": "AAPL", "features": "1,2,3"}), 400, "invalid_features"),
    ("features an object", lambda f: rest({"ticker": "AAPL", "features": {"a": 1}}), 400, "invalid_features"),
    ("a string inside", lambda f: rest({"ticker": "AAPL", "features": with_(f, i7="1.5")}), 400, "non_numeric"),
    ("a null inside", lambda f: rest({"ticker": "AAPL", "features": with_(f, i7=None)}), 400, "non_numeric"),
    ("a boolean inside", lambda f: rest({"ticker": "AAPL", "features": with_(f, i7=True)}), 400, "non_numeric"),
    ("empty ticker", lambda f: rest({"ticker": "", "features": f}), 400, "invalid_ticker"),
    ("numeric ticker", lambda f: rest({"ticker": 42, "features": f}), 400, "invalid_ticker"),
    ("injection ticker", lambda f: rest({"ticker": "A; DROP TABLE", "features": f}), 400, "invalid_ticker"),
    ("overlong ticker", lambda f: rest({"ticker": "A" * 40, "features": f}), 400, "invalid_ticker"),
    ("negative price", lambda f: rest({"ticker": "AAPL", "features": with_(f, i590=-100.0)}), 400, "invalid_price"),
    ("bad base64", lambda f: {**rest(raw="not base64!!"), "isBase64Encoded": True}, 400, "invalid_base64"),
    ("body over 1 MB", lambda f: rest(raw=" " * (1024 * 1024 + 10)), 413, "payload_too_large"),
    (
        "version mismatch",
        lambda f: rest({"ticker": "AAPL", "features": f, "model_version": "0.0-old"}),
        409,
        "model_version_mismatch",
    ),
    ("version not a string", lambda f: rest({"ticker": "AAPL", "features": f, "model_version": 3}), 400, "invalid_model_version"),
    ("empty batch", lambda f: rest({"instances": []}), 400, "empty_batch"),
    ("batch of 65", lambda f: rest({"instances": [{"ticker": "AAPL", "features": f}] * 65}), 400, "batch_too_large"),
    ("instances not a list", lambda f: rest({"instances": {"ticker": "AAPL"}}), 400, "invalid_instances"),
    ("instance not an object", lambda f: rest({"instances": [f]}), 400, "invalid_instances"),
    (
        "bad instance",
        lambda f: rest({"instances": [{"ticker": "AAPL", "features": f}, {"ticker": "IBM", "features": f[:3]}]}),
        400,
        "wrong_length",
    ),
    ("unknown path", lambda f: rest({"ticker": "AAPL", "features": f}, path="/predictions"), 404, "not_found"),
    ("GET /predict", lambda f: rest(None, method="GET"), 405, "method_not_allowed"),
    ("DELETE /model", lambda f: rest(None, method="DELETE", path="/model"), 405, "method_not_allowed"),
]


# --- servers ------------------------------------------------------------------------------------


class LocalAPI:
    """`python -m local_api` as `make run` starts it, on a free port, in its own process group."""

    def __init__(self, tmp: Path, key: str = SAMPLE_KEY, args: tuple = (), env: dict | None = None):
        self.key, self.dir = key, tmp
        env = {**os.environ, "LOCAL_API_KEY": key, "PYTHONUNBUFFERED": "1", **(env or {})}
        # a free port can be taken by another process before the server binds it (parallel runs on one machine):
        # only that failure is retried, on another port
        for attempt in range(3):
            try:
                return self._start(tmp, args, env)
            except RuntimeError:
                taken = "cannot listen on" in (tmp / "local_api.out").read_text()
                if not taken or attempt == 2:
                    raise

    def _start(self, tmp: Path, args: tuple, env: dict) -> None:
        import requests

        self.port = free_port()
        self.out = open(tmp / "local_api.out", "w")  # noqa: SIM115
        self.proc = launch(
            [sys.executable, "-m", "local_api", "--port", str(self.port), "--log-dir", str(tmp), *args],
            env=env,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.url = f"http://127.0.0.1:{self.port}/prod"
        try:  # the first run may build the layer: minutes on a loaded machine
            wait_for(
                f"the local API to answer GET {self.url}/health",
                lambda: requests.get(self.url + "/health", timeout=2).status_code == 200,
                timeout_s=300,
                proc=self.proc,
                log=tmp / "local_api.out",
            )
        except Exception:
            self.stop()
            raise

    def invocations(self) -> list[dict]:
        path = self.dir / "invocations.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def stop(self) -> None:
        stop_group(self.proc)
        self.out.close()


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, so the AWS emulator speaks HTTPS as AWS does (an S3 policy that
    denies plain HTTP, as ours does, then holds in tests too). Clients trust it through AWS_CA_BUNDLE."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
