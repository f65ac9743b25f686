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
