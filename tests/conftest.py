"""Shared fixtures: paths, the committed manifest, snapshot frames, and a blocked network."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# no test writes into the working tree: the local run's folder and hypothesis's example database live in a
# throwaway directory (set before anything reads them; subprocesses inherit it)
import os as _os  # noqa: E402
import tempfile as _tempfile  # noqa: E402

_SCRATCH = Path(_tempfile.mkdtemp(prefix="forecast-tests-"))
_os.environ.setdefault("LOCAL_API_DIR", str(_SCRATCH / "local"))
_os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(_SCRATCH / "hypothesis"))
SERVER_FIXTURES = {"local_api", "moto_server", "aws_env", "servers", "hostile"}

from tests.support import (  # noqa: E402,F401
    LAMBDA_DIR,
    RUNTIME_DIR,
    SAMPLE_KEY,
    LocalAPI,
    free_port,
    launch,
    self_signed_cert,
    stop_group,
    wait_for,
)


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


_ELSEWHERE = pytest.StashKey[str]()


def _function_suite_elsewhere(path: Path) -> str | None:
    """Why tests/function does not run on this interpreter, or None when it does."""
    if path.name == "function" and path.parent.name == "tests":
        import runtime_python

        here, runtime = f"{sys.version_info.major}.{sys.version_info.minor}", runtime_python.template_version()
        if here != runtime:
            return (
                f"tests/function runs on the function's CPython {runtime}, not this {here}: "
                "`make test-function` or `.venv-fn/bin/python -m pytest tests/function`"
            )
    return None


def pytest_ignore_collect(collection_path, config):
    """tests/function is not collected on another interpreter (its conftest refuses it); the stand-in below says so."""
    reason = _function_suite_elsewhere(collection_path)
    if reason:
        config.stash[_ELSEWHERE] = reason
        return True
    return None


class _SkippedSuite(pytest.Item):
    """Stands for tests/function on the wrong interpreter: one visible "skipped" with the reason, not silence."""

    def runtest(self):  # never runs: the item carries a skip mark
        raise AssertionError("tests/function is not collected on this interpreter")

    def reportinfo(self):
        return self.path, 0, "tests/function"


def pytest_collection_modifyitems(session, config, items):
    """A test that starts a real server is an integration test, whatever its file says. tests/function, when this
    interpreter cannot run it, shows up as one skipped item naming the command that runs it."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
    reason, suite = config.stash.get(_ELSEWHERE, None), ROOT / "tests" / "function"
    asked = any(suite.is_relative_to(Path(a.split("::")[0]).resolve()) for a in config.args)
    if reason and asked:  # `pytest` or `pytest tests`, not `pytest tests/test_x.py`
        stand_in = _SkippedSuite.from_parent(session, name="tests/function", nodeid="tests/function", path=suite)
        stand_in.add_marker(pytest.mark.skip(reason=reason))
        items.append(stand_in)


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
    monkeypatch.setattr(data, "_network", [0.0, False])  # never checked: the next load probes (and fails)
    monkeypatch.delenv("FORECAST_OFFLINE", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def features(manifest) -> list[float]:
    """A real window: AAPL's last 60 days in the snapshot, standardized with the served scaler."""
    from models.data import load_prices
    from models.features import window

    return window(load_prices("AAPL", source="snapshot"), manifest["scaler"]).tolist()


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

    import requests

    port = free_port()
    here = tmp_path_factory.mktemp("moto")
    logfile = here / "moto.log"
    cert, key = self_signed_cert(here)
    log = open(logfile, "w")  # noqa: SIM115
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    exe = Path(sys.executable).with_name("moto_server")
    proc = launch(  # it ends with this pytest, even a SIGKILLed one
        [str(exe), "-H", "127.0.0.1", "-p", str(port), "-c", str(cert), "-k", str(key)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"https://127.0.0.1:{port}"
    os.environ["AWS_CA_BUNDLE"] = str(cert)  # boto3 in this process and in the CLIs the tests start
    try:
        wait_for(
            f"moto server at {url} to accept its config",
            lambda: (
                requests.post(f"{url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=2, verify=str(cert)).ok
            ),
            proc=proc,
            log=logfile,
        )
        yield url
    finally:
        stop_group(proc)
        log.close()
        os.environ.pop("AWS_CA_BUNDLE", None)


@pytest.fixture
def aws_env(monkeypatch, moto_server):
    """Dummy credentials for the emulator; the real ~/.aws is never read."""
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the item, so fixtures can react to a failed test (browser screenshots)."""
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep
