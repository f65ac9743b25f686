"""The soak's client side (benchmarks/soak.py): the real mix of traffic against a local API, paced and bounded.

Single and batch predicts on a keep-alive connection, short connections, /health five times a second (the latency
series), a hostile client every HOSTILE_EVERY_S (a slow body, a half head, one that never reads, an oversize body)
and a worker SIGKILLed every `kill_every` seconds. Loopback only; every loop ends when `stop` is set.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path

from models.slow_clients import first_bytes

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_EVERY_S = 2.0  # one slow, non-reading or oversize client every 2 s


class Traffic:
    """The client side: a few threads, each bounded by `stop` and by its own pacing."""

    def __init__(self, port: int, key: str):
        self.port, self.key = port, key
        event = json.loads((ROOT / "lambda" / "events" / "rest_v1_predict.json").read_text())
        self.single = event["body"].encode()
        one = json.loads(event["body"])
        tickers = ["AAPL", "MSFT", "IBM", "GOOG", "^GSPC", "^IXIC", "SPY", "QQQ"]
        self.batch = json.dumps({"instances": [{**one, "ticker": t} for t in tickers]}).encode()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers: Counter = Counter()  # "2xx", "4xx", "5xx", "error" (no answer at all)
        self.health_ms: list[float] = []
        self.kills: list[float] = []
        self.fivexx: list[tuple[float, int]] = []

    def count(self, status: int | None) -> None:
        with self.lock:
            self.answers["error" if status is None else f"{status // 100}xx"] += 1
            if status is not None and status >= 500:
                self.fivexx.append((time.time(), status))

    def _request(self, conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None) -> int:
        headers = {"X-API-Key": self.key, "Content-Type": "application/json"}
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status

    def keep_alive(self) -> None:
        """Predicts on one connection: singles, and a batch of 8 every fifth request."""
        conn, i = http.client.HTTPConnection("127.0.0.1", self.port, timeout=35), 0
        while not self.stop.wait(0.05):
            i += 1
            try:
                self.count(self._request(conn, "POST", "/prod/predict", self.batch if i % 5 == 0 else self.single))
            except (OSError, http.client.HTTPException):
                self.count(None)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=35)
        conn.close()

    def short(self) -> None:
        """A new connection a request: a predict, then GET /model."""
        i = 0
        while not self.stop.wait(0.1):
            i += 1
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=35)
            try:
                if i % 2:
                    self.count(self._request(conn, "POST", "/prod/predict", self.single))
                else:
                    self.count(self._request(conn, "GET", "/prod/model"))
            except (OSError, http.client.HTTPException):
                self.count(None)
            finally:
                conn.close()

    def health(self) -> None:
        """GET /health five times a second on its own connection: the latency series."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=35)
        while not self.stop.wait(0.2):
            t0 = time.perf_counter()
            try:
                status = self._request(conn, "GET", "/prod/health")
            except (OSError, http.client.HTTPException):
                self.count(None)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=35)
                continue
            with self.lock:
                self.health_ms.append((time.perf_counter() - t0) * 1000)
            self.count(status)
        conn.close()

    def hostile(self) -> None:
        """In turn: a slow body dripped then abandoned, a client that pipelines and never reads, an oversize body."""
        shapes = ("slow-body", "non-reading", "oversize", "slow-head")
        i = 0
        while not self.stop.wait(HOSTILE_EVERY_S):
            shape = shapes[i % len(shapes)]
            i += 1
            s = socket.socket()
            try:
                if shape == "non-reading":
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(5)
                s.connect(("127.0.0.1", self.port))
                if shape == "oversize":  # over API Gateway's 10 MB: refused at the head, before a byte of body
                    s.sendall(b"POST /prod/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 11000000\r\n\r\n")
                    head = s.recv(4096)
                    self.count(int(head.split()[1]) if head.startswith(b"HTTP/") else None)
                    continue
                s.sendall(first_bytes(shape, self.single, self.key))
                for _ in range(3):  # a byte a second, then it goes away (or, non-reading, is closed at the deadline)
                    if self.stop.wait(1.0):
                        break
                    if shape.startswith("slow"):
                        s.send(b"a")
            except OSError:
                pass  # a hostile client cut off is the server doing its job
            finally:
                s.close()

    def killer(self, stats_path: Path, every_s: float) -> None:
        """SIGKILL one worker every `every_s`, alternating: the crash a Lambda environment may suffer."""
        i = 0
        while not self.stop.wait(every_s):
            try:
                workers = json.loads(stats_path.read_text())["workers"]
                pid = workers[i % len(workers)]["pid"]
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError, KeyError, IndexError, TypeError):
                continue
            with self.lock:
                self.kills.append(time.time())
            i += 1

    def start(self, stats_path: Path, kill_every: float) -> list[threading.Thread]:
        targets = [self.keep_alive, self.short, self.health, self.hostile, lambda: self.killer(stats_path, kill_every)]
        threads = [threading.Thread(target=t, daemon=True) for t in targets]
        for t in threads:
            t.start()
        return threads

    def take(self) -> tuple[Counter, list[float]]:
        """The answers and /health latencies since the last take."""
        with self.lock:
            answers, health = self.answers, self.health_ms
            self.answers, self.health_ms = Counter(), []
        return answers, health
