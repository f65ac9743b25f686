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
    """Every connection attempt fails as it does offline; the live cache starts empty."""
    import models.data as data

    def refuse(*args, **kwargs):
        raise OSError("network blocked by test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
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
