"""Clients that hold an HTTP server's resources on purpose: the slow shapes the local API must survive, one definition.

scripts/reliability_local_api.py measures the local API with them and tests/test_local_api_gatekeeper.py asserts on them, so the
README's figures and the tests attack with the same bytes. It lives below both (DESIGN's arrows: scripts and tests may
import models/, and models/ imports nothing of theirs). Standard library only; loopback only.
"""

from __future__ import annotations

import socket
import threading

SHAPES = ("slow-head", "slow-body", "slow-chunked", "expect-held", "non-reading", "idle")


def post_head(key: str, extra: str = "", path: str = "/prod/predict", version: str = "1.1") -> bytes:
    """A POST's head with the API key, `extra` header lines (each ending CRLF) and the blank line."""
    return f"POST {path} HTTP/{version}\r\nHost: x\r\nX-API-Key: {key}\r\n{extra}\r\n".encode()


def first_bytes(shape: str, body: bytes, key: str) -> bytes:
    """What a client of `shape` sends before it stalls."""
    return {
        "slow-head": b"POST /prod/predict HTTP/1.1\r\nHost: x\r\nContent-Le",  # half a head
        "slow-body": post_head(key, f"Content-Length: {len(body)}\r\n") + body[:100],  # part of a body
        "slow-chunked": post_head(key, "Transfer-Encoding: chunked\r\n") + b"100\r\n" + b"a" * 50,  # part of a chunk
        "expect-held": post_head(key, f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n"),  # a body held after its 100
        "non-reading": b"GET /prod/nope HTTP/1.1\r\nHost: x\r\n\r\n" * 20,  # pipelined, answers never read
        "idle": b"",  # an idle keep-alive connection
    }[shape]


def hold(port: int, body: bytes, n: int, key: str, shapes: tuple[str, ...] = SHAPES) -> list[tuple[str, socket.socket]]:
    """`n` clients cycling through `shapes`, each connected to 127.0.0.1:`port` and stalled after its first bytes.
    A non-reading client gets a 4 KB receive window, so the server's answers back up at once."""
    out = []
    for i in range(n):
        shape = shapes[i % len(shapes)]
        s = socket.socket()
        if shape == "non-reading":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        if data := first_bytes(shape, body, key):
            s.sendall(data)
        out.append((shape, s))
    return out


def drip(held: list[tuple[str, socket.socket]], stop: threading.Event, every_s: float = 1.0) -> threading.Thread:
    """A byte at a time into every slow request until `stop` is set (the attack that once held a handler thread per
    connection); the thread is started and returned, to be joined after `stop`."""

    def run() -> None:
        while not stop.wait(every_s):
            for shape, s in held:
                if shape.startswith("slow"):
                    try:
                        s.send(b"a")
                    except OSError:
                        pass

    t = threading.Thread(target=run, daemon=True, name="drip")
    t.start()
    return t


def read_answers(s: socket.socket, n: int, timeout: float = 10.0) -> list[tuple[int, bytes]]:
    """Up to `n` HTTP answers (status, body) read in order from one connection (fewer if it closes first)."""
    s.settimeout(timeout)
    buf, out = b"", []
    while len(out) < n:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1")
            length = int(next(ln.split(":")[1] for ln in head.split("\r\n") if ln.lower().startswith("content-length")))
            if len(buf) >= end + 4 + length:
                out.append((int(head.split()[1]), buf[end + 4 : end + 4 + length]))
                buf = buf[end + 4 + length :]
                continue
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return out


def established(s: socket.socket) -> bool:
    """The connection's TCP state is still ESTABLISHED (tcp_info's first byte), learned without reading from it."""
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == 1
