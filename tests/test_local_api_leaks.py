"""What the local API holds per connection is given back when the connection goes, however it goes: the gatekeeper's
buffer budget is back to zero after connections that finish, are refused, leave mid-body or never read their answer
(local_api/gatekeeper.py, in-process over real loopback sockets; the soak, benchmarks/soak.py, watches the same
counter for minutes)."""

from __future__ import annotations

import os
import socket
import time

import pytest

from local_api.gatekeeper import Gatekeeper
from models.slow_clients import read_answers

BUDGET = 512 * 1024
BIG = 4 * 1024 * 1024  # an answer far larger than the socket buffers: a client that never reads leaves it held


def handle(req, addr):
    body = b"x" * BIG if req.target == "/big" else b'{"status":"ok"}'
    return 200, {"Content-Type": "application/json"}, body, False


@pytest.fixture
def gate():
    listener = socket.create_server(("127.0.0.1", 0), backlog=256)
    g = Gatekeeper(listener, handle, read_timeout=2.0, write_timeout=0.5, max_connections=4, buffer_budget=BUDGET)
    g.start()
    yield g
    g.drain(0.1)
    g.stopped.wait(3.0)


def connect(g: Gatekeeper, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(g.listener.getsockname())
    return s


def get(path: str = "/health", close: bool = False) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n".encode()


def settled(g: Gatekeeper, timeout_s: float = 10.0) -> dict:
    """The gatekeeper's counters once every connection is gone (or what they are at the timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and g.stats()["connections"]:
        time.sleep(0.05)
    time.sleep(0.2)  # one more loop turn: a close in progress finishes its accounting
    return g.stats()


def test_the_buffer_budget_is_back_to_zero_after_every_kind_of_connection(gate):
    for _ in range(20):  # keep-alive: three requests, three answers, then gone
        s = connect(gate)
        s.sendall(get() * 3)
        assert [st for st, _ in read_answers(s, 3)] == [200, 200, 200]
        s.close()
    for _ in range(20):  # short connections
        s = connect(gate)
        s.sendall(get(close=True))
        assert [st for st, _ in read_answers(s, 1)] == [200]
        s.close()
    for _ in range(10):  # a body larger than the whole budget: refused 503 as it arrives
        s = connect(gate)
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
        try:
            s.sendall(b"a" * (BUDGET + 65536))
        except OSError:
            pass  # refused mid-upload: the answer is what counts
        assert [st for st, _ in read_answers(s, 1)] == [503]
        s.close()
    for _ in range(10):  # framing refused: 400 and closed
        s = connect(gate)
        s.sendall(b"GET / HTTP/1.1\nHost: x\n\n")
        assert [st for st, _ in read_answers(s, 1)] == [400]
        s.close()
    for _ in range(10):  # leaves mid-body
        s = connect(gate)
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 50000)
        time.sleep(0.01)
        s.close()

    # last, as they hold more than the budget while they last: clients that never read their 4 MB answer, held until
    # the write deadline closes them
    stalled = [connect(gate, rcvbuf=4096) for _ in range(3)]
    for s in stalled:
        s.sendall(get("/big"))
    deadline = time.monotonic() + 5
    while gate.stats()["held_bytes"] < 3 * 512 * 1024 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gate.stats()["held_bytes"] >= 3 * 512 * 1024, f"unsent answers count against the budget: {gate.stats()}"

    after = settled(gate)
    assert after["connections"] == 0, f"every connection closed: {after}"
    assert after["held_bytes"] == 0, f"every byte given back to the budget when its connection closed: {after}"
    for s in stalled:
        s.close()
    s = connect(gate)  # and the budget serves as it did on the first request
    s.sendall(get(close=True))
    assert [st for st, _ in read_answers(s, 1)] == [200]
    s.close()


@pytest.mark.integration
def test_the_server_publishes_its_counters_for_operators(local_api):
    """`python -m local_api` replaces local_api_stats.json every few seconds: what the soak and an operator read."""
    import json

    path = local_api.dir / "local_api_stats.json"
    stats = json.loads(path.read_text())
    assert stats["pid"] == local_api.proc.pid
    assert {"held_bytes", "connections", "reading", "queued", "inflight", "handler_threads"} <= set(stats)
    assert len(stats["workers"]) == 2 and all(os.path.exists(f"/proc/{w['pid']}") for w in stats["workers"])
    before = stats["time"]
    deadline = time.monotonic() + 15
    while json.loads(path.read_text())["time"] == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert json.loads(path.read_text())["time"] > before, "the file is refreshed, not written once"
