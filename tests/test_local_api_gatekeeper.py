"""The local API's gatekeeper over real sockets: strict framing, slow and non-reading clients, pipelining, the buffer
budget, the open-file bound, 100-continue and the SIGTERM drain (local_api/gatekeeper.py, local_api/http_framing.py)."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import zipfile

import pytest
import requests

from models import slow_clients
from models.processes import launch
from models.slow_clients import established, read_answers
from tests.support import ROOT, SAMPLE_KEY, LocalAPI, free_port, load_event, stop_group, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(tmp_path_factory, built_packages):
    a = LocalAPI(
        tmp_path_factory.mktemp("gatekeeper"),
        args=(
            "--workers",
            "2",
            "--read-timeout",
            "20",
            "--write-timeout",
            "2",
            "--max-connections",
            "4",
            "--max-pending",
            "3000",
            "--buffer-budget-mb",
            "16",
        ),
    )
    yield a
    a.stop()


@pytest.fixture(scope="module")
def body() -> bytes:
    return load_event("rest_v1_predict.json")["body"].encode()


def connect(api, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", api.port))
    return s


def closed_within(s: socket.socket, seconds: float) -> bool:
    """True when the server closes `s` within `seconds` (whatever it sent first)."""
    s.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def post_head(extra: str, path: str = "/prod/predict", version: str = "1.1") -> bytes:
    return slow_clients.post_head(SAMPLE_KEY, extra, path, version)


def chunked(data: bytes, size: int = 1000) -> bytes:
    return (
        b"".join(b"%x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size]) for i in range(0, len(data), size))
        + b"0\r\n\r\n"
    )


# --- strict framing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        # valid chunk framing beside a Content-Length: only the CL+TE rule can refuse it
        lambda b: post_head(f"Content-Length: {len(chunked(b))}\r\nTransfer-Encoding: chunked\r\n") + chunked(b),
        lambda b: post_head(f"Content-Length: {len(b)}\r\nContent-Length: {len(b)}\r\n") + b,  # repeated, identical
        lambda b: post_head(f"Content-Length:\r\n {len(b)}\r\n") + b,  # folded
        lambda b: post_head("").replace(b"\r\n\r\n", "\r\nContent-Length: \u00b2\r\n\r\n".encode()) + b"ab",
        lambda b: post_head("Transfer-Encoding: chunked\r\n") + b"0x10\r\n" + b[:16] + b"\r\n0\r\n\r\n",
        lambda b: post_head("Transfer-Encoding: chunked\r\n") + b"1_0\r\n" + b[:16] + b"\r\n0\r\n\r\n",
        lambda b: post_head("Transfer-Encoding: chunked\r\n") + b"+5\r\n" + b[:5] + b"\r\n0\r\n\r\n",
        lambda b: post_head("Transfer-Encoding: chunked\r\n", version="1.0") + chunked(b),
        lambda b: b"GET /prod/health HTTP/1.1\nHost: x\n\n",
        lambda b: b"GET /prod/health HTTP/1.1\r\n\r\n",  # RFC 9112 3.2: HTTP/1.1 carries exactly one Host
        lambda b: b"GET /prod/health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    ],
    ids=[
        "cl-and-te",
        "repeated-cl",
        "folded-cl",
        "superscript-cl",
        "chunk-0x10",
        "chunk-1_0",
        "chunk-plus5",
        "chunked-http10",
        "bare-lf",
        "no-host",
        "two-hosts",
    ],
)
def test_unsafe_framing_is_answered_400_and_closed(api, body, raw):
    before = len(api.invocations())
    t = time.monotonic()
    with connect(api) as s:
        s.sendall(raw(body) + b"GET /prod/health HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = read_answers(s, 2, timeout=5)
        assert closed_within(s, 5)
    assert [a[0] for a in answers] == [400], "400, then closed: nothing after the bad request may be read"
    assert b"Bad Request" in answers[0][1] and time.monotonic() - t < 5
    assert len(api.invocations()) == before, "a refused request never reaches the function"


def test_chunked_size_cap_is_413_before_the_body(api):
    with connect(api) as s:
        s.sendall(post_head("Transfer-Encoding: chunked\r\n") + b"%x\r\n" % (10 * 1024 * 1024 + 1))
        [(status, answer)] = read_answers(s, 1, timeout=5)
    assert status == 413 and json.loads(answer) == {"message": "Request Too Long"}


def test_a_request_is_not_dispatched_until_its_body_is_whole(api, body):
    """The head alone (or the head and part of the body, chunked or not) is not a request: nothing is invoked and no
    thread is taken until the last byte arrives; then it is answered 200."""
    for framing, payload in ((f"Content-Length: {len(body)}\r\n", body), ("Transfer-Encoding: chunked\r\n", chunked(body))):
        before = len(api.invocations())
        with connect(api) as s:
            raw = post_head(framing) + payload
            s.sendall(raw[:-200])
            s.settimeout(1.0)
            with pytest.raises(TimeoutError):
                s.recv(100)  # no answer to half a request...
            assert len(api.invocations()) == before, "...and no invocation"
            s.sendall(raw[-200:])
            [(status, answer)] = read_answers(s, 1)
        assert status == 200 and b'"prediction"' in answer


@pytest.mark.parametrize("pad", [0, 70_000, 300_000])
@pytest.mark.parametrize("order", ["small-big-small", "big-small-small", "small-small-big"])
def test_pipelined_requests_are_all_answered_in_order(api, body, pad, order):
    """Three requests in one write, one of them padded past 64 KiB: three answers, in order, none lost."""
    big = body[:-1] + b" " * pad + b"}"
    bodies = {"small-big-small": [body, big, body], "big-small-small": [big, body, body], "small-small-big": [body, body, big]}
    raw = b"".join(post_head(f"Content-Length: {len(b)}\r\n") + b for b in bodies[order])
    with connect(api) as s:
        s.sendall(raw)
        answers = read_answers(s, 3, timeout=15)
    assert [a[0] for a in answers] == [200, 200, 200]
    assert all(json.loads(a[1])["ticker"] == "AAPL" for a in answers)


def test_expect_100_continue_is_honoured(api, body):
    with connect(api) as s:
        s.sendall(post_head(f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n"))
        s.settimeout(2)
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n", "the 100 comes as soon as the head is accepted"
        s.sendall(body)
        [(status, _)] = read_answers(s, 1)
    assert status == 200


@pytest.mark.parametrize("expect", ["200-ok", "100-continue, x-unknown"])
def test_an_expectation_other_than_100_continue_is_417(api, body, expect):
    """RFC 9110 10.1.1: nothing here can meet any other expectation, so it says so (417) and closes, invoking nothing."""
    before = len(api.invocations())
    with connect(api) as s:
        s.sendall(post_head(f"Content-Length: {len(body)}\r\nExpect: {expect}\r\n") + body)
        [(status, answer)] = read_answers(s, 1, timeout=5)
        assert closed_within(s, 5)
    assert status == 417 and "only 100-continue is supported" in json.loads(answer)["message"]
    assert len(api.invocations()) == before


@pytest.mark.parametrize("first, last, status", [("wrong-key", SAMPLE_KEY, 200), (SAMPLE_KEY, "wrong-key", 403)])
def test_two_api_keys_the_last_one_counts_as_in_the_event(api, body, first, last, status):
    """API Gateway documents no rule for a repeated X-API-Key; its REST proxy event's `headers` holds a repeated header's
    last value (all of them in `multiValueHeaders`), and that is what the function checks, so the usage-plan check
    reads the same one: the two checks can never disagree about which key a request carries."""
    head = f"POST /prod/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {first}\r\nx-api-key: {last}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    with connect(api) as s:
        s.sendall(head.encode() + body)
        [(got, answer)] = read_answers(s, 1, timeout=10)
    assert got == status, answer
    if status == 403:
        assert json.loads(answer) == {"message": "Forbidden"}


def test_the_event_carries_a_repeated_header_as_api_gateway_does():
    """`headers`: the last value; `multiValueHeaders`: every value in order (the REST proxy event's documented shape)."""
    from types import SimpleNamespace

    from local_api.gateway import Gateway
    from local_api.http_framing import Request

    req = Request("POST", "/prod/predict", (1, 1), [("Host", "x"), ("X-API-Key", "a"), ("X-API-Key", "b")], b"{}", True)
    event = Gateway._event(SimpleNamespace(stage="prod", api_id="local1"), req, ("127.0.0.1", 1), "/predict", "", "b")
    assert event["headers"]["X-API-Key"] == "b" and event["multiValueHeaders"]["X-API-Key"] == ["a", "b"]
    assert event["requestContext"]["identity"]["apiKey"] == "b"
    # names differing only in case are one header: the function's lower-casing must not resurrect an earlier value
    mixed = [("Host", "x"), ("x-api-key", "good"), ("X-API-Key", "bad"), ("x-api-key", "good")]
    req = Request("POST", "/prod/predict", (1, 1), mixed, b"{}", True)
    event = Gateway._event(SimpleNamespace(stage="prod", api_id="local1"), req, ("127.0.0.1", 1), "/predict", "", "good")
    assert event["headers"] == {"Host": "x", "x-api-key": "good"}
    assert event["multiValueHeaders"]["x-api-key"] == ["good", "bad", "good"]


def test_case_variant_api_keys_reach_the_function_with_the_key_the_gateway_checked(api, body):
    """x-api-key: K, X-API-Key: bad, x-api-key: K passed the usage plan (last wins) and then got the function's 401,
    which read an earlier spelling's value: the hostile pass's finding."""
    head = f"POST /prod/predict HTTP/1.1\r\nHost: x\r\nx-api-key: {SAMPLE_KEY}\r\nX-API-Key: bad\r\n"
    head += f"x-api-key: {SAMPLE_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    with connect(api) as s:
        s.sendall(head.encode() + body)
        [(got, answer)] = read_answers(s, 1, timeout=10)
    assert got == 200, answer


def test_curl_does_not_stall_on_expect(api, body, tmp_path):
    """curl waits for the 100 before it sends a body; without one it stalls (1 s by default, 30 s here)."""
    data = tmp_path / "body.json"
    data.write_bytes(body)
    r = subprocess.run(
        ["curl", "-sS", "--expect100-timeout", "30", "-H", "Expect: 100-continue", "-H", f"X-API-Key: {SAMPLE_KEY}",
         "--data-binary", f"@{data}", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", api.url + "/predict"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    code, seconds = r.stdout.split()
    assert code == "200" and float(seconds) < 5, r.stdout + r.stderr


# --- clients that hold resources -----------------------------------------------------------------------------------


def test_clients_that_pipeline_and_never_read_hold_no_thread(api):
    """6 clients pipeline requests for the 12 KB model card and never read the answers, against 4 handler threads:
    /health is still answered at once, and each is closed (reset) at the write deadline (2 s here)."""
    stuck = []
    for _ in range(6):
        s = connect(api, rcvbuf=4096)
        s.sendall(b"GET /prod/model HTTP/1.1\r\nHost: x\r\n\r\n" * 300)
        stuck.append(s)
    try:
        t = time.monotonic()
        assert requests.get(api.url + "/health", timeout=5).status_code == 200
        assert time.monotonic() - t < 1.0
        # read nothing (reading would unblock the server): watch the TCP state until the server has closed each one
        wait_for("the non-reading clients to be closed at the write deadline", lambda: all(not established(s) for s in stuck), 15)
    finally:
        for s in stuck:
            s.close()


def test_the_buffer_budget_answers_503_instead_of_growing(api):
    """Bodies held while they arrive count against one budget (16 MiB here): past it a 503, not another 10 MB."""
    holders, answers = [], []
    try:
        for _ in range(4):
            s = connect(api)
            s.sendall(post_head(f"Content-Length: {9 * 1024 * 1024}\r\n") + b" " * (6 * 1024 * 1024))
            holders.append(s)
        for s in holders:
            s.settimeout(0.5)
            try:
                answers.append(s.recv(200))
            except (TimeoutError, ConnectionResetError):
                answers.append(b"")
    finally:
        for s in holders:
            s.close()
    assert sum(a.startswith(b"HTTP/1.1 503") for a in answers) >= 1, answers
    assert sum(a == b"" for a in answers) >= 2, "the connections within the budget are still being read"
    assert requests.get(api.url + "/health", timeout=5).status_code == 200


def test_a_client_still_uploading_a_refused_body_reads_its_answer(api):
    """A body over API Gateway's 10 MB is refused at its head; a client that goes on sending the body must still read
    the 413 (a lingering close), not a connection reset that destroys the answer before it is read."""
    s = connect(api)
    try:
        s.sendall(post_head(f"Content-Length: {11 * 1024 * 1024}\r\n"))
        time.sleep(0.3)  # the 413 is written and our side of the connection would be closed by now
        s.sendall(b" " * (2 * 1024 * 1024))  # the rest of the upload, as curl or requests would go on sending it
        answer = s.recv(200)
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer


def test_health_p99_within_100ms_while_1000_slow_clients_are_held(api, body):
    held = slow_clients.hold(api.port, body, 1000, SAMPLE_KEY)  # every slow shape, as scripts/reliability_local_api.py holds them
    stop = threading.Event()
    dripper = slow_clients.drip(held, stop, 0.5)  # a byte at a time into every slow request, as the attack did
    try:
        session = requests.Session()
        assert session.get(api.url + "/health", timeout=5).status_code == 200
        times = []
        for _ in range(300):
            t = time.perf_counter()
            assert session.get(api.url + "/health", timeout=5).status_code == 200
            times.append(time.perf_counter() - t)
        p99 = statistics.quantiles(times, n=100)[98]
        assert p99 <= 0.100, f"/health p99 {p99 * 1000:.1f} ms with 1,000 slow clients held"
        threads = int(next(ln.split()[1] for ln in open(f"/proc/{api.proc.pid}/status") if ln.startswith("Threads:")))
        assert threads < 4 + 40, "slow clients cost buffers, not threads"
        alive = sum(1 for _, s in held if s.fileno() >= 0)
        assert alive == 1000
    finally:
        stop.set()
        dripper.join(5)
        for _, s in held:
            s.close()


def test_max_pending_is_bounded_by_the_open_file_limit(tmp_path, built_packages):
    """Under `ulimit -n 256`, 300 idle half-requests: the bound stays under the limit, the oldest half-requests make
    room (503 and closed), /health is answered at once, and the accept loop does not spin (it once burned 41% of a
    core)."""
    port = free_port()
    out = open(tmp_path / "local_api.out", "w")  # noqa: SIM115

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    proc = launch(
        [sys.executable, "-m", "local_api", "--port", str(port), "--log-dir", str(tmp_path), "--workers", "1"],
        env={**os.environ, "LOCAL_API_KEY": SAMPLE_KEY},
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        preexec=limit,
    )
    url = f"http://127.0.0.1:{port}/prod"
    held = []
    try:
        wait_for("the local API under ulimit -n 256", lambda: requests.get(url + "/health", timeout=2).ok, proc=proc)
        banner = (tmp_path / "local_api.out").read_text()
        bound = int(banner.split("limits     ")[1].split()[0])
        assert bound <= 256 - 64, banner
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /prod/health HTTP/1.1\r\nHo")
            held.append(s)
        let_go = sum(closed_within(s, 2) for s in held[: 300 - bound - 5])
        assert let_go == 300 - bound - 5, f"only {let_go} of the oldest half-requests made room"
        t = time.monotonic()
        cpu0 = _cpu_seconds(proc.pid)
        assert requests.get(url + "/health", timeout=5).status_code == 200 and time.monotonic() - t < 1.0
        time.sleep(2.0)  # a window in which to measure the idle gateway's CPU: there is no condition to wait on
        used = _cpu_seconds(proc.pid) - cpu0
        assert used < 0.3, f"the gateway used {used:.2f} s of CPU in 2 s while idle: its accept loop spins"
    finally:
        for s in held:
            s.close()
        stop_group(proc)
        out.close()


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- SIGTERM drains --------------------------------------------------------------------------------------------------

SLOW_FUNCTION = """
import json, sys, time
def lambda_handler(event, context):
    body = event.get("body") or ""
    print("start " + body, flush=True)
    if "slow" in body:
        time.sleep(1.5)
    if "hang" in body:
        time.sleep(120)
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps({"ok": body})}
"""


def slow_api(tmp_path) -> LocalAPI:
    fn = tmp_path / "fn.zip"
    with zipfile.ZipFile(fn, "w") as zf:
        zf.writestr("lambda_handler.py", SLOW_FUNCTION)
    return LocalAPI(tmp_path, args=("--function-zip", str(fn), "--workers", "1", "--max-connections", "1"))


def send_post(api, text: str) -> socket.socket:
    s = connect(api)
    s.sendall(post_head(f"Content-Length: {len(text)}\r\n") + text.encode())
    return s


def test_sigterm_drains_in_flight_answers_queued_503_and_exits(tmp_path, built_packages):
    api = slow_api(tmp_path)
    try:
        inflight = send_post(api, "slow")
        wait_for("the slow request to start", lambda: "start slow" in (tmp_path / "function.log").read_text())
        queued = [send_post(api, f"queued-{i}") for i in range(3)]
        idle = connect(api)
        # a barrier: the gatekeeper answers a framing error itself, after reading everything that arrived before it,
        # so once this 400 is back the three requests are queued for the (busy) handler thread
        with connect(api) as barrier:
            barrier.sendall(b"GET /prod/health HTTP/1.1\nHost: x\n\n")
            assert [a[0] for a in read_answers(barrier, 1, timeout=5)] == [400]
        t = time.monotonic()
        os.kill(api.proc.pid, signal.SIGTERM)
        for s in queued:
            [(status, _)] = read_answers(s, 1, timeout=5)
            assert status == 503
        assert time.monotonic() - t < 1.0, "queued requests are answered 503 at once"
        [(status, answer)] = read_answers(inflight, 1, timeout=10)
        assert status == 200 and json.loads(answer) == {"ok": "slow"}, "the in-flight request finishes"
        assert closed_within(idle, 5)
        api.proc.wait(10)
        assert time.monotonic() - t < 5.0, "drained and stopped within a few seconds"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", api.port), timeout=2)
        assert "local API stopped" in (tmp_path / "local_api.out").read_text()
        assert "queued-" not in (tmp_path / "function.log").read_text(), "a queued request is never run during a drain"
    finally:
        api.stop()


def test_sigterm_does_not_wait_for_a_hung_invocation(tmp_path, built_packages):
    api = slow_api(tmp_path)
    try:
        hung = send_post(api, "hang")
        wait_for("the hung request to start", lambda: "start hang" in (tmp_path / "function.log").read_text())
        t = time.monotonic()
        os.kill(api.proc.pid, signal.SIGTERM)
        [(status, _)] = read_answers(hung, 1, timeout=10)
        api.proc.wait(10)
        assert status == 503 and time.monotonic() - t < 6.0
    finally:
        api.stop()


@pytest.mark.parametrize(
    "target",
    ["http://x/prod/health", "HTTP://elsewhere.example:8080/prod/health", "https://x/prod/health?a=1"],
)
def test_an_absolute_form_target_is_served_by_its_path(api, target):
    """RFC 9112 3.2.2: a server MUST accept the absolute-form; the path after the authority is the route (it was a
    403 Missing Authentication Token). A Host that disagrees with the target's authority does not matter."""
    with connect(api) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: other\r\nX-API-Key: {SAMPLE_KEY}\r\n\r\n".encode())
        [(status, answer)] = read_answers(s, 1, timeout=10)
    assert status == 200 and json.loads(answer)["status"] == "ok", answer
