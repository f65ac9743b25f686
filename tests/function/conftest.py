"""The function's own suite: runs on the CPython the template's Runtime names, with exactly the layer's pins.

`make test` runs it as `.venv-fn/bin/python -m pytest tests/function`. Nothing here imports pandas, torch or
models/: the windows come from the sample events, which lambda/events/generate.py builds from the served scaler.
"""

from __future__ import annotations

import hashlib
import sys

import pytest
import runtime_python  # noqa: E402  (lambda/ is on the path via tests.support)

from tests.support import LAMBDA_DIR, SAMPLE_KEY, load_event

RUNTIME_VERSION = runtime_python.template_version()


def pytest_configure(config):
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != RUNTIME_VERSION:
        raise pytest.UsageError(
            f"tests/function must run on CPython {RUNTIME_VERSION} (the template's Runtime), not {here}: "
            "use `make test`, or `.venv-fn/bin/python -m pytest tests/function`"
        )


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
    monkeypatch.setenv("API_KEY_SHA256", hashlib.sha256(SAMPLE_KEY.encode()).hexdigest())
    monkeypatch.delenv("AUTH_DISABLED", raising=False)
    return SAMPLE_KEY


@pytest.fixture(scope="session")
def features() -> list[float]:
    """A real window: AAPL's last 60 days in the snapshot, standardized with the served scaler (the sample event's)."""
    return list(load_event("direct_invoke.json")["features"])
