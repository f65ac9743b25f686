"""Shared fixtures: paths, the committed manifest, snapshot frames, and a blocked network."""
from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_DIR = ROOT / "lambda"
RUNTIME_DIR = ROOT / "models" / "runtime"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory):
    """Training runs in tests log to a throwaway MLflow store, never the repository's mlruns/."""
    import os

    store = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}"
    yield store
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def manifest() -> dict:
    return json.loads((RUNTIME_DIR / "manifest.json").read_text())


@pytest.fixture(scope="session")
def aapl():
    from models.data import load_prices

    return load_prices("AAPL", source="snapshot")


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Every connection beyond loopback fails as it does offline; the live cache starts empty."""
    import models.data as data

    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect
    loopback = {"127.0.0.1", "localhost", "::1"}

    def getaddrinfo(host, *args, **kwargs):
        if host not in loopback:
            raise socket.gaierror(-3, "Temporary failure in name resolution (network blocked by test)")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if isinstance(address, tuple) and address[0] not in loopback:
            raise OSError(101, "Network is unreachable (blocked by test)")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(data, "_last_live_failure", 0.0)
    monkeypatch.delenv("FORECAST_OFFLINE", raising=False)
    return tmp_path


SAMPLE_KEY = "local-dev-key"  # the key lambda/events/*.json carry
EVENTS_DIR = LAMBDA_DIR / "events"


@pytest.fixture(scope="session")
def handler():
    """The function module, imported as Lambda would: lambda/ on the path, model loaded at import."""
    if str(LAMBDA_DIR) not in sys.path:
        sys.path.insert(0, str(LAMBDA_DIR))
    import lambda_handler

    assert lambda_handler.MODEL is not None, lambda_handler.MODEL_ERROR
    return lambda_handler


@pytest.fixture
def keyed(monkeypatch):
    """The function configured with the sample key's SHA-256, as deploy.py configures it."""
    import hashlib

    monkeypatch.setenv("API_KEY_SHA256", hashlib.sha256(SAMPLE_KEY.encode()).hexdigest())
    monkeypatch.delenv("AUTH_DISABLED", raising=False)
    return SAMPLE_KEY


def load_event(name: str) -> dict:
    return json.loads((EVENTS_DIR / name).read_text())


@pytest.fixture(scope="session")
def features(manifest) -> list[float]:
    """A real window: AAPL's last 60 days in the snapshot, standardized with the served scaler."""
    from models.data import load_prices
    from models.features import window

    return window(load_prices("AAPL", source="snapshot"), manifest["scaler"]).tolist()


def free_port() -> int:
    import socket as _s

    with _s.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalAPI:
    """`python lambda/local_api.py` as `make run` starts it, on a free port, in its own process group."""

    def __init__(self, tmp: Path, key: str = SAMPLE_KEY, args: tuple = ()):
        import os
        import subprocess
        import time

        import requests

        self.port, self.key, self.dir = free_port(), key, tmp
        env = {**os.environ, "LOCAL_API_KEY": key, "PYTHONUNBUFFERED": "1"}
        self.out = open(tmp / "local_api.out", "w")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, str(LAMBDA_DIR / "local_api.py"), "--port", str(self.port),
                                      "--log-dir", str(tmp), *args], env=env, stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=ROOT)
        self.url = f"http://127.0.0.1:{self.port}/prod"
        deadline = time.time() + 120  # the first run may build the layer
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"local API exited: {(tmp / 'local_api.out').read_text()}")
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"local API did not answer: {(tmp / 'local_api.out').read_text()}")

    def invocations(self) -> list[dict]:
        path = self.dir / "invocations.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def stop(self) -> None:
        import os
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except Exception:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.out.close()


@pytest.fixture(scope="session")
def built_packages():
    """dist/ zips, built the way `make package` builds them (the layer once per input change)."""
    if str(LAMBDA_DIR) not in sys.path:
        sys.path.insert(0, str(LAMBDA_DIR))
    import package

    return package.ensure_built(quiet=True)


@pytest.fixture(scope="session")
def local_api(tmp_path_factory, built_packages):
    api = LocalAPI(tmp_path_factory.mktemp("local_api"), args=("--workers", "2"))
    yield api
    api.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """moto's server on a free loopback port, Lambda without Docker, IAM's managed policies loaded."""
    import os
    import subprocess
    import time

    import requests

    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")  # noqa: SIM115
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            requests.post(f"{url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=2).raise_for_status()
            break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("moto server did not start")
    yield url
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(10)
    log.close()


@pytest.fixture
def aws_env(monkeypatch, moto_server):
    """Dummy credentials for the emulator; the real ~/.aws is never read."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the item, so fixtures can react to a failed test (browser screenshots)."""
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep
