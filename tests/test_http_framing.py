"""The local API's request framing, byte by byte: one reading of every request, or a refusal (local_api/http_framing.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zipfile

import pytest

from local_api import http_framing
from local_api.http_framing import MAX_PAYLOAD, Reject, RequestReader
from tests.support import ROOT, free_port

REFUSAL_DEADLINE_S = 10.0  # a refusal takes about 0.2 s; a server that started never exits


def read_all(raw: bytes, step: int | None = None) -> list:
    """Every request in `raw`, fed whole or `step` bytes at a time (a slow client)."""
    r, out = RequestReader(), []
    pieces = [raw] if step is None else [raw[i : i + step] for i in range(0, len(raw), step)]
    for piece in pieces:
        r.feed(piece)
        while (req := r.next()) is not None:
            out.append(req)
    return out


def post(framing: str, body: bytes = b"", version: str = "1.1") -> bytes:
    return f"POST /prod/predict HTTP/{version}\r\nHost: x\r\n{framing}\r\n".encode() + body


def chunked(body: bytes, size: int = 7) -> bytes:
    return (
        b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size))
        + b"0\r\n\r\n"
    )


@pytest.mark.parametrize(
    "raw, status",
    [
        # Content-Length beside Transfer-Encoding, with a body that is valid chunk framing: only that rule can refuse it
        (post("Content-Length: 12\r\nTransfer-Encoding: chunked\r\n", chunked(b"hello")), 400),
        (post("Transfer-Encoding: chunked\r\nContent-Length: 12\r\n", chunked(b"hello")), 400),
        (post("Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), 400),  # repeated, even identical
        (post("Content-Length:\r\n 5\r\n", b"hello"), 400),  # folded (obs-fold)
        (post("X-Other: a\r\n folded\r\nContent-Length: 5\r\n", b"hello"), 400),
        ("POST /prod/predict HTTP/1.1\r\nHost: x\r\nContent-Length: \u00b2\r\n\r\n".encode(), 400),  # "²".isdigit() is True
        (b"POST /prod/predict HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n", 400),  # the same in latin-1
        (post("Content-Length: 5, 5\r\n", b"hello"), 400),
        (post("Content-Length: +5\r\n", b"hello"), 400),
        (post("Content-Length: abc\r\n"), 400),
        (post("Transfer-Encoding: chunked\r\n", b"0x10\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n"), 400),
        (post("Transfer-Encoding: chunked\r\n", b"1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n"), 400),
        (post("Transfer-Encoding: chunked\r\n", b"+5\r\nhello\r\n0\r\n\r\n"), 400),
        (post("Transfer-Encoding: chunked\r\n", b" 5\r\nhello\r\n0\r\n\r\n"), 400),
        (post("Transfer-Encoding: chunked\r\n", b"5\r\nhelloXX0\r\n\r\n"), 400),
        (post("Transfer-Encoding: chunked\r\n", chunked(b"hello"), version="1.0"), 400),  # chunked on HTTP/1.0
        (post("Transfer-Encoding: gzip, chunked\r\n", chunked(b"hello")), 400),
        (b"GET /prod/health HTTP/1.1\nHost: x\n\n", 400),  # bare LF: never dispatched, answered
        (b"GET /prod/health HTTP/1.1\r\nHost: x\n\r\n", 400),
        (b"GET /prod/health HTTP/1.1\r\nHost : x\r\n\r\n", 400),  # space before the colon
        (b"GET /prod/health HTTP/1.1\r\nX: a\rb\r\n\r\n", 400),  # a lone CR inside a value
        (b"GET /prod/health HTTP/2.0\r\n\r\n", 505),
        (b"GET  /prod/health HTTP/1.1\r\n\r\n", 400),
        (post(f"Content-Length: {MAX_PAYLOAD + 1}\r\n"), 413),  # refused from the head: the body is never read
        (post("Transfer-Encoding: chunked\r\n", b"%x\r\n" % (MAX_PAYLOAD + 1)), 413),  # the chunked size cap
        (
            post(
                "Transfer-Encoding: chunked\r\n",
                b"%x\r\n" % (MAX_PAYLOAD // 2 + 1) + b"a" * (MAX_PAYLOAD // 2 + 1) + b"\r\n%x\r\n" % (MAX_PAYLOAD // 2),
            ),
            413,
        ),
        (b"GET /" + b"a" * (70 * 1024), 431),
        # RFC 9112 section 3.2: exactly one Host on HTTP/1.1, never two, never an invalid one
        (b"GET /prod/health HTTP/1.1\r\n\r\n", 400),
        (b"GET /prod/health HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", 400),
        (b"GET /prod/health HTTP/1.0\r\nHost: x\r\nhost: y\r\n\r\n", 400),
        (b"GET /prod/health HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (b"GET /prod/health HTTP/1.1\r\nHost: x/y\r\n\r\n", 400),
        # RFC 9110 section 10.1.1: an expectation nothing here can meet
        (post("Content-Length: 5\r\nExpect: 200-ok\r\n", b"hello"), 417),
        (post("Content-Length: 5\r\nExpect: 100-continue, x-y\r\n", b"hello"), 417),
        (post("Content-Length: 5\r\nExpect: 100-continue\r\nExpect: x-y\r\n", b"hello"), 417),
    ],
)
def test_unsafe_framing_is_refused(raw, status):
    with pytest.raises(Reject) as err:
        read_all(raw)
    assert err.value.status == status, err.value


@pytest.mark.parametrize("raw", [post("Content-Length:\r\n 5\r\n", b"hello"), post("X-A: a\r\n\tb: c\r\n")])
def test_a_folded_header_is_named_as_such(raw):
    """obs-fold (a line starting with a space or tab) gets an error that says so, not a generic one."""
    with pytest.raises(Reject, match="obsolete line folding"):
        read_all(raw)


def test_content_length_plus_chunked_would_be_read_without_the_rule():
    """The CL+TE case above is refused by that rule alone: the same body reads fine as chunked."""
    [req] = read_all(post("Transfer-Encoding: chunked\r\n", chunked(b"hello")))
    assert req.body == b"hello"


@pytest.mark.parametrize("step", [None, 1, 5, 4096])
def test_a_request_is_whole_only_when_its_body_is(step):
    body = b'{"ticker": "AAPL"}' * 50
    for raw in (post(f"Content-Length: {len(body)}\r\n", body), post("Transfer-Encoding: chunked\r\n", chunked(body))):
        r = RequestReader()
        r.feed(raw[:-1])
        assert r.next() is None, "a request whose last byte has not arrived must not be dispatched"
        r.feed(raw[-1:])
        assert r.next().body == body
        [req] = read_all(raw, step)
        assert req.body == body and req.method == "POST" and req.header("host") == "x"


def test_a_dripped_head_is_searched_once_not_per_recv(monkeypatch):
    """A 60 KB head sent 20 bytes at a time: each byte is looked at once. Rescanning from the head's start on every
    recv cost one client 2.7 s of the gatekeeper thread's CPU (quadratic: 3,000 recvs x up to 60 KB)."""
    looked = []
    real = http_framing._bare_lf
    monkeypatch.setattr(http_framing, "_bare_lf", lambda buf, start, end: looked.append(end - start) or real(buf, start, end))
    head = b"GET /prod/health HTTP/1.1\r\nHost: x\r\n" + b"a:\r\n" * 15_000 + b"\r\n"
    r = RequestReader()
    for i in range(0, len(head), 20):
        r.feed(head[i : i + 20])
        req = r.next()
    assert req is not None and req.target == "/prod/health" and len(req.headers) == 15_001
    assert sum(looked) <= len(head), f"{sum(looked):,} bytes scanned for a {len(head):,}-byte head"
    # a CRLFCRLF split across recvs, and a bare LF arriving alone, are still found
    split = RequestReader()
    for byte in (b"GET / HTTP/1.1\r\nHost: x\r", b"\n\r", b"\n"):
        split.feed(byte)
    assert split.next() is not None
    bare = RequestReader()
    bare.feed(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert bare.next() is None
    bare.feed(b"\n")
    with pytest.raises(Reject, match="bare LF"):
        bare.next()


def test_the_head_alone_is_not_a_request():
    r = RequestReader()
    r.feed(post("Content-Length: 100\r\n", b"x" * 10))
    assert r.next() is None and r.waiting_for_body is not None and r.buffered == 10


@pytest.mark.parametrize("big", [0, 70_000, 300_000])
@pytest.mark.parametrize("step", [None, 1000, 65536])
def test_pipelined_requests_all_come_out_in_order(big, step):
    """However much of the next requests arrived with the first, each is read, in order (once lost past 64 KiB)."""
    second = b"{" + b" " * big + b"}"
    raw = (
        b"GET /prod/health HTTP/1.1\r\nHost: x\r\n\r\n"
        + post(f"Content-Length: {len(second)}\r\n", second)
        + post("Transfer-Encoding: chunked\r\n", chunked(b"third", 2))
        + b"GET /prod/model HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    reqs = read_all(raw, step)
    assert [(r.method, r.target) for r in reqs] == [
        ("GET", "/prod/health"),
        ("POST", "/prod/predict"),
        ("POST", "/prod/predict"),
        ("GET", "/prod/model"),
    ]
    assert reqs[1].body == second and reqs[2].body == b"third"
    assert [r.keep_alive for r in reqs] == [True, True, True, False]


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /prod/health HTTP/1.0\r\n\r\n",  # HTTP/1.0 may leave Host out
        b"GET /prod/health HTTP/1.1\r\nHost:\r\n\r\n",  # empty is valid (RFC 9112 3.2)
        b"GET /prod/health HTTP/1.1\r\nhost: 127.0.0.1:3000\r\n\r\n",
        b"GET /prod/health HTTP/1.1\r\nHost: [::1]:3000\r\n\r\n",
        b"GET /prod/health HTTP/1.1\r\nHost: abc.execute-api.us-east-1.amazonaws.com\r\n\r\n",
        b"GET /prod/health HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n\r\n",
    ],
)
def test_hosts_and_expectations_that_are_fine(raw):
    [req] = read_all(raw)
    assert req.target == "/prod/health"


@pytest.mark.parametrize(
    "raw, says",
    [
        (b"GET /prod/health HTTP/1.1\r\n\r\n", "no Host header"),
        (b"GET /prod/health HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", "Host header repeated"),
        (b"GET /prod/health HTTP/1.1\r\nHost: a b\r\n\r\n", "invalid Host header"),
        (post("Content-Length: 5\r\nExpect: 200-ok\r\n", b"hello"), "not 200-ok"),
    ],
)
def test_host_and_expect_refusals_say_what_is_wrong(raw, says):
    with pytest.raises(Reject, match=says):
        read_all(raw)


def test_expect_100_continue_and_keep_alive_rules():
    r = RequestReader()
    r.feed(post("Content-Length: 5\r\nExpect: 100-continue\r\n"))
    assert r.next() is None and r.waiting_for_body.expects_continue
    r = RequestReader()
    r.feed(post("Content-Length: 0\r\nExpect: 100-continue\r\n"))
    assert r.next() is not None  # nothing to wait for: no 100
    [old] = read_all(b"GET /prod/health HTTP/1.0\r\n\r\n")
    [old_ka] = read_all(b"GET /prod/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert not old.keep_alive and old_ka.keep_alive


def test_api_gateways_payload_limit():
    assert http_framing.MAX_PAYLOAD == 10 * 1024 * 1024


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--port", "99999"], "--port must be 0..65535"),  # once an OverflowError traceback from bind()
        (["--workers", "0"], "--workers must be at least 1"),  # once: every request a 504 after 29 s
        (["--max-connections", "0"], "--max-connections must be at least 1"),  # once: requests never answered
        (["--integration-timeout", "nan"], "--integration-timeout must be a positive number"),  # once: every request 504
        (["--buffer-budget-mb", "-1"], "--buffer-budget-mb must be a positive number"),
    ],
)
def test_local_api_refuses_settings_that_answer_nothing(argv, says, tmp_path):
    """Refused in one line before anything starts. In a process of its own with a deadline: a broken guard starts a
    real server that never exits, and that must be a quick red, not a hung suite."""
    fn, layer = tmp_path / "fn.zip", tmp_path / "layer.zip"  # a package of its own: a broken guard builds nothing
    with zipfile.ZipFile(fn, "w") as zf:
        zf.writestr("lambda_handler.py", "def lambda_handler(event, context):\n    return {'statusCode': 200, 'body': ''}\n")
    zipfile.ZipFile(layer, "w").close()
    cmd = [sys.executable, "-m", "local_api", "--port", str(free_port()), "--log-dir", str(tmp_path)]
    cmd += ["--function-zip", str(fn), "--layer-zip", str(layer), *argv]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=ROOT)
    try:
        out, err = proc.communicate(timeout=REFUSAL_DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its workers follow it (parent-death signal)
        proc.communicate()
        pytest.fail(
            f"python -m local_api {' '.join(argv)} was still running after {REFUSAL_DEADLINE_S:g} s: the guard let it start"
        )
    assert proc.returncode == 2 and says in err, (proc.returncode, out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()[-1]) < 200
