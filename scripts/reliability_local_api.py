"""What the local API's clients see: load, slow and half-sent requests, killed workers, the second pass's attacks."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_DIR = ROOT / "lambda"
sys.path.insert(0, str(ROOT))
KEY = "reliability-key-0123456789"


def _post(port: int, body: bytes, timeout: float = 30) -> tuple[int, float]:
    import http.client

    t = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("POST", "/prod/predict", body=body, headers={"X-API-Key": KEY, "Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status, time.perf_counter() - t


def _start(port: int, log_dir: Path, *args: str) -> subprocess.Popen:
    from models.processes import launch

    return launch(
        [sys.executable, "-m", "local_api", "--port", str(port), "--log-dir", str(log_dir), *args],
        env={**os.environ, "LOCAL_API_KEY": KEY},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_ready(port: int, body: bytes) -> None:
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            if _post(port, body, 5)[0] == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("reliability: the local API did not answer within 10 minutes")


def _health_ms(port: int, n: int) -> dict:
    import http.client

    times = []
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(n):
        t = time.perf_counter()
        c.request("GET", "/prod/health")
        r = c.getresponse()
        r.read()
        times.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            raise SystemExit(f"reliability: /health answered {r.status}")
    c.close()
    q = statistics.quantiles(times, n=100)
    return {"requests": n, "p50_ms": round(q[49], 2), "p99_ms": round(q[98], 2), "max_ms": round(max(times), 2)}


def run_hostile_shapes(body: bytes) -> dict:
    """The second hostile pass's attacks, against 4 handler threads (as they were reproduced)."""
    import tempfile

    log_dir = Path(tempfile.mkdtemp(prefix="reliability-shapes-"))
    from models import slow_clients  # the same slow shapes the gatekeeper tests hold
    from models.processes import free_port

    port = free_port()
    proc = _start(port, log_dir, "--max-connections", "4", "--read-timeout", "20", "--write-timeout", "2",
                  "--rate-limit", "100000", "--burst-limit", "100000")  # fmt: skip
    out: dict = {}
    try:
        _wait_ready(port, body)
        # 70 chunked bodies dripping a byte a second: once 8.5 s for every /health
        stop = threading.Event()
        held = slow_clients.hold(port, body, 70, KEY, ("slow-chunked",))
        dripper = slow_clients.drip(held, stop)
        out["slow_chunked"] = {"held": len(held), "health_meanwhile": _health_ms(port, 100)}
        stop.set()
        dripper.join()
        for _, s in held:
            s.close()
        # 8 clients pipelining 300 model-card requests each and never reading: once no /health at all
        stuck = []
        for _ in range(8):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /prod/model HTTP/1.1\r\nHost: x\r\n\r\n" * 300)
            stuck.append(s)
        health = _health_ms(port, 100)
        t = time.monotonic()
        while any(slow_clients.established(s) for s in stuck) and time.monotonic() - t < 30:
            time.sleep(0.1)
        out["non_reading"] = {
            "clients": len(stuck),
            "handler_threads": 4,
            "health_meanwhile": health,
            "reset_by_the_write_deadline": sum(not slow_clients.established(s) for s in stuck),
        }
        for s in stuck:
            s.close()
        # pipelining: 3 requests in one write, one padded past 64 KiB, in 15 layouts (once 6 of 15 lost answers)
        layouts, complete, slowest = 0, 0, 0.0
        for pad in (0, 70_000, 300_000):
            big = body[:-1] + b" " * pad + b"}"
            for order in ((big, body, body), (body, big, body), (body, body, big), (big, big, body), (big, big, big)):
                raw = b"".join(slow_clients.post_head(KEY, f"Content-Length: {len(b)}\r\n") + b for b in order)
                t = time.perf_counter()
                with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
                    s.sendall(raw)
                    got = [status for status, _ in slow_clients.read_answers(s, 3, timeout=15)]
                slowest = max(slowest, time.perf_counter() - t)
                layouts += 1
                complete += got == [200, 200, 200]
        out["pipelining"] = {"layouts": layouts, "all_three_answered_in_order": complete, "slowest_ms": round(slowest * 1000, 1)}
        # 1,000 slow clients of every shape held at once
        stop = threading.Event()
        held = slow_clients.hold(port, body, 1000, KEY)
        dripper = slow_clients.drip(held, stop, 0.5)
        out["mixed_1000"] = {"held": len(held), "health_meanwhile": _health_ms(port, 300)}
        stop.set()
        dripper.join()
        for _, s in held:
            s.close()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(20)
    return out


def worker_pids(log_dir: Path) -> list[int]:
    """The awslambdaric processes of the local API whose log folder is `log_dir`."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes()
            env = Path(f"/proc/{d}/environ").read_bytes()
        except OSError:
            continue
        if b"awslambdaric" in cmd and str(log_dir).encode() in env:
            pids.append(int(d))
    return pids


def run_local_api(load_s: float) -> dict:
    import tempfile

    log_dir = Path(tempfile.mkdtemp(prefix="reliability-"))
    from models.processes import free_port, launch, stop_group

    port = free_port()
    proc = launch(
        [
            sys.executable,
            "-m",
            "local_api",
            "--port",
            str(port),
            "--log-dir",
            str(log_dir),
            "--rate-limit",
            "100000",
            "--burst-limit",
            "100000",
            "--read-timeout",
            "5",
        ],
        env={**os.environ, "LOCAL_API_KEY": KEY},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    body = json.loads((LAMBDA_DIR / "events" / "rest_v1_predict.json").read_text())["body"].encode()
    out: dict = {}
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            try:
                if _post(port, body, 5)[0] == 200:
                    break
            except OSError:
                time.sleep(0.3)
        # load: 8 connections for load_s seconds
        results: list[tuple[int, float]] = []
        lock, stop = threading.Lock(), time.time() + load_s

        def client():
            mine = []
            while time.time() < stop:
                try:
                    mine.append(_post(port, body))
                except OSError:
                    mine.append((0, 0.0))
            with lock:
                results.extend(mine)

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        errors = sum(1 for s, _ in results if s != 200)
        out["load"] = {
            "connections": 8,
            "seconds": load_s,
            "requests": len(results),
            "errors": errors,
            "req_per_s": round(len(results) / load_s),
        }
        # slow clients: 3,000 half-sent requests (the attack that once stalled the gateway); a normal client meanwhile
        slow = []
        for _ in range(3000):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"POST /prod/predict HTTP/1.1\r\nHost: x\r\nContent-Le")
            slow.append(s)
        during = [_post(port, body) for _ in range(20)]
        threads = int(next(ln.split()[1] for ln in open(f"/proc/{proc.pid}/status") if ln.startswith("Threads:")))
        time.sleep(6)
        closed = 0
        for s in slow:
            s.settimeout(1)
            try:
                closed += s.recv(1) == b""
            except (TimeoutError, ConnectionResetError):
                closed += 1
            s.close()
        out["slow_clients"] = {
            "held": 3000,
            "gateway_threads_meanwhile": threads,
            "normal_requests_meanwhile": len(during),
            "their_errors": sum(1 for st, _ in during if st != 200),
            "their_p50_ms": round(statistics.median(t for _, t in during) * 1000, 2),
            "closed_by_the_read_timeout": closed,
        }
        # a worker killed: how long until answers come back
        recoveries = []
        for _ in range(5):
            pids = worker_pids(log_dir)
            for pid in pids:
                os.kill(pid, 9)
            t = time.perf_counter()
            while _post(port, body)[0] != 200:
                pass
            recoveries.append((time.perf_counter() - t) * 1000)
            time.sleep(0.5)
        out["worker_killed"] = {
            "kills": 5,
            "time_to_next_200_ms_median": round(statistics.median(recoveries), 1),
            "max_ms": round(max(recoveries), 1),
        }
    finally:
        t = time.perf_counter()
        os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            stop_group(proc)
        out["sigterm_to_exit_s"] = round(time.perf_counter() - t, 2)
    out.update(run_hostile_shapes(body))
    return out
