"""The local API against clients that lie about framing, stall, or leave: HTTP over raw sockets."""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

import pytest
import requests

from tests.support import ROOT, SAMPLE_KEY, LocalAPI, load_event, wait_for

sys.path.insert(0, str(ROOT / "scripts"))
from reliability_local_api import worker_pids  # noqa: E402  (one /proc scan for the local API's workers)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(tmp_path_factory, built_packages):
    a = LocalAPI(
        tmp_path_factory.mktemp("hostile"),
        args=("--workers", "2", "--read-timeout", "2", "--max-connections", "16", "--max-pending", "1000"),
    )
    yield a
    a.stop()


@pytest.fixture(scope="module")
def body() -> bytes:
    return load_event("rest_v1_predict.json")["body"].encode()


def exchange(api, raw: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, read until the server closes (or the timeout), return everything it sent."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=timeout) as s:
        s.sendall(raw)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
    return out


def head(method: str, extra: str = "", path: str = "/prod/predict") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {SAMPLE_KEY}\r\nContent-Type: application/json\r\n{extra}\r\n"
    ).encode()


def test_chunked_bodies_are_read_and_do_not_desync(api, body):
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + 1000]), body[i : i + 1000]) for i in range(0, len(body), 1000))
    raw = head("POST", "Transfer-Encoding: chunked\r\n") + chunks + b"0\r\n\r\n"
    raw += head("GET", "Connection: close\r\n", "/prod/health")
    out = exchange(api, raw)
    assert out.count(b"HTTP/1.1 200") == 2, out[:600]
    assert b'"prediction"' in out and b'"status":"ok"' in out


@pytest.mark.parametrize(
    "framing",
    [
        "Content-Length: abc\r\n",
        "Content-Length: 1e3\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\n",
    ],
)
def test_bad_framing_is_400_and_closed_at_once(api, framing):
    t = time.monotonic()
    out = exchange(api, head("POST", framing) + b"hello" + head("GET", "", "/prod/health"), timeout=10)
    assert out.startswith(b"HTTP/1.1 400"), out[:300]
    assert out.count(b"HTTP/1.1") == 1, "the connection must close: nothing after the bad request may be parsed"
    assert time.monotonic() - t < 5
    assert b"Bad Request" in out


def test_bad_chunk_framing_is_400(api):
    out = exchange(api, head("POST", "Transfer-Encoding: chunked\r\n") + b"zz\r\nhello\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:300]


def test_half_sent_requests_are_never_invoked(api, body):
    before = len(api.invocations())
    for raw in (head("POST")[:-30], head("POST", f"Content-Length: {len(body)}\r\n") + body[:100]):
        with socket.create_connection(("127.0.0.1", api.port), timeout=5) as s:
            s.sendall(raw)
        time.sleep(0.2)
    r = requests.post(api.url + "/predict", data=body, headers={"X-API-Key": SAMPLE_KEY}, timeout=10)
    assert r.status_code == 200
    time.sleep(0.3)
    log = api.invocations()
    assert len(log) == before + 1, log[before:]
    function_log = (api.dir / "function.log").read_text()
    assert function_log.count('"message":"request"') == len(log), "every invocation the function logged is in invocations.jsonl"


def threads_of(pid: int) -> int:
    return int(next(line.split()[1] for line in open(f"/proc/{pid}/status") if line.startswith("Threads:")))


def test_slow_clients_time_out_and_others_are_served(api, body):
    """600 clients that send half a request and stall - far more than the 16 handler threads: a normal request is
    still answered at once, the gateway's threads stay bounded, and the stalled connections are closed after the read
    timeout (2 s here)."""
    slow = []
    for _ in range(600):
        s = socket.create_connection(("127.0.0.1", api.port), timeout=10)
        s.sendall(b"POST /prod/predict HTTP/1.1\r\nHost: x\r\nContent-Le")
        slow.append(s)
    try:
        t = time.monotonic()
        r = requests.post(api.url + "/predict", data=body, headers={"X-API-Key": SAMPLE_KEY}, timeout=10)
        assert r.status_code == 200 and time.monotonic() - t < 3.0
        assert threads_of(api.proc.pid) < 16 + 40, "a slow client must cost a buffer, not a thread"
        time.sleep(3.5)
        closed = 0
        for s in slow:
            s.settimeout(0.5)
            try:
                closed += s.recv(10) == b""
            except (TimeoutError, ConnectionResetError):
                closed += 1
        assert closed == len(slow)
    finally:
        for s in slow:
            s.close()


def test_beyond_the_pending_bound_the_oldest_makes_room(api):
    """1010 idle connections against a bound of 1000: the oldest ones are closed to make room, and a new client is
    still served (a full house of idle sockets must not lock everyone out)."""
    held = [socket.create_connection(("127.0.0.1", api.port), timeout=5) for _ in range(1010)]
    try:
        r = requests.get(api.url + "/health", timeout=5)
        assert r.status_code == 200
        held[0].settimeout(5)
        assert held[0].recv(10) == b"", "the oldest idle connection made room"
    finally:
        for s in held:
            s.close()


def test_a_worker_killed_between_requests_costs_no_request(api, body):
    """Kill every worker repeatedly while requests flow. What is guaranteed, whatever the machine's speed: a killed
    process costs at most the one invocation it was running (one 502 per kill, never more), every 502 is such a
    crash, no request is ever run twice, and no request waits out the function Timeout for a dead worker."""
    answers, latencies, stop = [], [], threading.Event()

    def client():
        while not stop.is_set():
            t = time.monotonic()
            r = requests.post(api.url + "/predict", data=body, headers={"X-API-Key": SAMPLE_KEY}, timeout=30)
            latencies.append(time.monotonic() - t)
            answers.append((r.status_code, r.headers.get("x-amzn-RequestId")))

    before = len(api.invocations())
    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    killed = 0
    try:
        for _ in range(6):
            # the next round once a replacement is up and serving: a kill during init costs nothing, so it proves nothing
            wait_for("a replacement worker", lambda: len(answers) > 0 and len(worker_pids(api.dir)) == 2, timeout_s=60)
            n = len(answers)
            wait_for("requests to flow again", lambda n=n: len(answers) >= n + 3, timeout_s=60)
            for pid in worker_pids(api.dir):
                try:
                    os.kill(pid, 9)
                    killed += 1
                except ProcessLookupError:
                    pass
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert killed >= 6, "the test must really kill workers"
    statuses = [s for s, _ in answers]
    assert set(statuses) <= {200, 502}, statuses
    assert statuses.count(502) <= killed, f"{statuses.count(502)} answers of 502 for {killed} killed processes"
    log = api.invocations()[before:]
    crashes = {rec["request_id"] for rec in log if rec["outcome"] == "crash"}
    outcomes = [(rec["status"], rec["outcome"]) for rec in log if rec["status"] != 200]
    assert statuses.count(502) == len(crashes), f"every 502 is a killed in-flight invocation: {outcomes}"
    assert all(rec["status"] == 502 for rec in log if rec["outcome"] == "crash")
    # never run twice: each API Gateway request id reaches the function at most once
    ran = [
        json.loads(ln)["request_id"] for ln in (api.dir / "function.log").read_text().splitlines() if '"message":"request"' in ln
    ]
    assert len(ran) == len(set(ran)), "a request ran twice"
    assert max(latencies) < 8, "a request waited out the function Timeout (10 s): it was handed to a dead worker"
    assert "Traceback" not in (api.dir / "local_api.out").read_text(), "a killed worker is normal: no traceback for it"
    assert requests.post(api.url + "/predict", data=body, headers={"X-API-Key": SAMPLE_KEY}, timeout=10).status_code == 200


def test_key_files_are_owner_only_from_the_start(api):
    info = api.dir / "local_api.json"
    assert oct(info.stat().st_mode & 0o777) == "0o600"
    assert json.loads(info.read_text())["api_key"] == SAMPLE_KEY


def runtime_api_errors(worker, capfd) -> Callable[[], str]:
    """Wait until the worker's Runtime API has dealt with one failed request; -> what it wrote to stderr meanwhile."""
    handled, original = threading.Event(), worker.server.handle_error

    def spy(request, address):
        try:
            original(request, address)
        finally:
            handled.set()

    worker.server.handle_error = spy

    def wait() -> str:
        assert handled.wait(5), "the Runtime API never reached its error handler"
        return capfd.readouterr().err

    return wait


def test_a_runtime_client_that_vanishes_costs_no_traceback(capfd):
    """A worker killed mid-request resets its Runtime API connection: normal, and already reported by the process
    watcher, so the local API's output carries no traceback for it. A bug in our handler still prints one."""
    from types import SimpleNamespace

    from local_api.runtime import Worker
    from local_api.runtime_api import RUNTIME_PREFIX

    worker = Worker(0, SimpleNamespace(function_name="fn"))  # only its Runtime API server runs: no process is spawned
    try:
        errors = runtime_api_errors(worker, capfd)
        with socket.create_connection(("127.0.0.1", worker.server.server_address[1]), timeout=5) as s:
            s.sendall(f"POST {RUNTIME_PREFIX}/invocation/x/response HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{{".encode())
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # closed with a reset, as a kill does
        assert "Traceback" not in errors()
        errors = runtime_api_errors(worker, capfd)
        with socket.create_connection(("127.0.0.1", worker.server.server_address[1]), timeout=5) as s:
            s.sendall(f"GET {RUNTIME_PREFIX}/invocation/next HTTP/1.1\r\n\r\n".encode())  # the stub pool has no queue
            s.recv(100)
        assert "Traceback" in errors(), "a genuine error in the handler must still be reported"
    finally:
        worker.server.shutdown()
        worker.server.server_close()


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "²"])
def test_a_runtime_request_with_a_malformed_length_is_400_not_a_traceback(capfd, length):
    """Only a local process that found the worker's port could send one, but it gets an answer, not a traceback."""
    from types import SimpleNamespace

    from local_api.runtime import Worker
    from local_api.runtime_api import RUNTIME_PREFIX

    worker = Worker(0, SimpleNamespace(function_name="fn"))
    try:
        with socket.create_connection(("127.0.0.1", worker.server.server_address[1]), timeout=5) as s:
            s.sendall(f"POST {RUNTIME_PREFIX}/invocation/x/response HTTP/1.1\r\nContent-Length: {length}\r\n\r\n".encode())
            answer = b""
            while chunk := s.recv(4096):  # the server closes after its answer
                answer += chunk
        assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400"), answer
        assert b"is not a length" in answer
        assert "Traceback" not in capfd.readouterr().err
    finally:
        worker.server.shutdown()
        worker.server.server_close()
