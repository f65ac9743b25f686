"""The README's reliability figures, each from a command anyone can run (`make reliability` runs all three).

    .venv-fn/bin/python scripts/reliability.py function [--n 20000]   # hostile events through the entry point, on 3.13
    .venv/bin/python scripts/reliability.py local-api                  # load, slow clients, a killed worker,
                                                                       # slow chunked, non-reading, pipelining, 1,000 mixed

`function` builds random and crafted events (broken JSON, lone surrogates, extreme and non-finite numbers, wrong
shapes, oversized and multi-byte bodies, every event source) with a fixed seed and counts statuses: the claim is
0 answers of 5xx and 0 exceptions out of the handler. `local-api` starts lambda/local_api.py and measures what
its clients see. Every loop is bounded in count and time, and only loopback is used.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_DIR = ROOT / "lambda"
sys.path.insert(0, str(ROOT))
KEY = "reliability-key-0123456789"


# --- the function ---------------------------------------------------------------------------------------------


def _hostile_text(rng: random.Random, n: int) -> str:
    pools = ["AAPL", "\ud800", "\udfff", "\x00", "\n", "€", "𝔘", "%", "{", '"', "\\", "/prod/predict", " ", "NaN"]
    return "".join(rng.choice(pools) if rng.random() < 0.5 else chr(rng.randrange(32, 0x2FFF)) for _ in range(n))


def _number(rng: random.Random):
    return rng.choice(
        [
            0.0,
            -0.0,
            1e-308,
            5e-324,
            1e308,
            -1e308,
            3.5e38,
            1e39,
            999.9,
            1000.0,
            1000.0001,
            -1000.0001,
            rng.uniform(-5, 5),
            rng.uniform(-2000, 2000),
            float("nan"),
            float("inf"),
            float("-inf"),
            10**400,
            -(10**20),
            True,
            None,
            "1.5",
            [],
            {},
        ]
    )


def hostile_events(n: int, seed: int = 20261126) -> list:
    """A fixed, reproducible mix of crafted and random events."""
    rng = random.Random(seed)
    base = json.loads((LAMBDA_DIR / "events" / "rest_v1_predict.json").read_text())
    v2 = json.loads((LAMBDA_DIR / "events" / "http_v2_predict.json").read_text())
    features = json.loads(base["body"])["features"]
    out = []
    for i in range(n):
        kind = i % 10
        f = list(features)
        for _ in range(rng.randrange(0, 4)):
            f[rng.randrange(len(f))] = _number(rng)
        if rng.random() < 0.2:
            f = f[: rng.randrange(0, 700)] + [rng.uniform(-1, 1)] * rng.randrange(0, 3)
        body_obj = {"ticker": rng.choice(["AAPL", "aapl\n", "^GSPC", "", _hostile_text(rng, 6), 42, None]), "features": f}
        if rng.random() < 0.3:
            body_obj[_hostile_text(rng, rng.choice([3, 300]))] = 1
        if rng.random() < 0.2:
            body_obj = {"instances": [body_obj] * rng.choice([0, 1, 2, 65])}
        try:
            body = json.dumps(body_obj, allow_nan=True)
        except (TypeError, ValueError):
            body = str(body_obj)
        if rng.random() < 0.1:
            body = body[: rng.randrange(len(body) + 1)]  # cut anywhere
        if rng.random() < 0.02:
            body = '{"ticker": "' + "€" * 600_000 + '"}'  # 1.8 MB of UTF-8 in 0.6 M characters
        if kind < 5:
            ev = json.loads(json.dumps(base))
            ev["httpMethod"] = rng.choice(["POST", "GET", "OPTIONS", "DELETE", _hostile_text(rng, 3)])
            ev["path"] = rng.choice(["/predict", "/prod/predict", "/model", "/health", "/x", _hostile_text(rng, 8)])
            ev["headers"] = {"X-API-Key": rng.choice(["local-dev-key", "", _hostile_text(rng, 20)])}
            ev["requestContext"]["requestId"] = rng.choice(["r", _hostile_text(rng, 10)])
            if rng.random() < 0.1:
                ev["isBase64Encoded"] = True
                body = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode() if rng.random() < 0.5 else body
            ev["body"] = body
        elif kind < 8:
            ev = json.loads(json.dumps(v2))
            ev["rawPath"] = rng.choice(["/predict", "/health", _hostile_text(rng, 8)])
            ev["requestContext"]["http"]["method"] = rng.choice(["POST", "GET", _hostile_text(rng, 4)])
            ev["headers"] = {"x-api-key": rng.choice(["local-dev-key", _hostile_text(rng, 5)])}
            ev["body"] = body
        else:
            try:
                ev = json.loads(body) if rng.random() < 0.7 else rng.choice([None, 7, "x", [1], _hostile_text(rng, 5)])
            except ValueError:
                ev = body
        out.append(ev)
    return out


def run_function(n: int) -> dict:
    sys.path.insert(0, str(LAMBDA_DIR))
    os.environ["API_KEY_SHA256"] = hashlib.sha256(b"local-dev-key").hexdigest()
    import lambda_handler

    statuses: dict[int, int] = {}
    escapes, non_finite = 0, 0
    sink = io.StringIO()
    t0 = time.perf_counter()
    for ev in hostile_events(n):
        try:
            with redirect_stdout(sink), redirect_stderr(sink):
                out = lambda_handler.lambda_handler(ev, None)
            text = out["body"] if "statusCode" in out else json.dumps(out, allow_nan=False)
            status = out.get("statusCode", out.get("status", 200))
            answer = json.loads(text or "null")
            for item in (answer.get("predictions") or [answer]) if isinstance(answer, dict) and status == 200 else []:
                if "prediction" in item:  # orjson writes NaN as null: a 200 must carry finite numbers
                    nums = [item["prediction"], item["confidence"], item["interval"]["low"], item["interval"]["high"]]
                    if not all(isinstance(v, float) and v == v and abs(v) != float("inf") for v in nums):
                        raise ValueError("a 200 with a number that is not finite")
        except ValueError:
            non_finite += 1
            status = -1
        except Exception:  # noqa: BLE001 - counting escapes is the point
            escapes += 1
            status = -2
        statuses[status] = statuses.get(status, 0) + 1
        sink.seek(0)
        sink.truncate()
    return {
        "events": n,
        "seconds": round(time.perf_counter() - t0, 1),
        "statuses": dict(sorted(statuses.items())),
        "answers_5xx": sum(c for s, c in statuses.items() if s >= 500),
        "exceptions_escaped": escapes,
        "non_finite_or_unserializable": non_finite,
        "python": sys.version.split()[0],
    }


# --- the local API --------------------------------------------------------------------------------------------


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
        [sys.executable, str(LAMBDA_DIR / "local_api.py"), "--port", str(port), "--log-dir", str(log_dir), *args],
        env={**os.environ, "LOCAL_API_KEY": KEY},
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
            str(LAMBDA_DIR / "local_api.py"),
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["function", "local-api"])
    p.add_argument("--n", type=int, default=20000, help="function: how many hostile events")
    p.add_argument("--load-seconds", type=float, default=20.0, help="local-api: seconds of load at 8 connections")
    args = p.parse_args(argv)
    result = run_function(args.n) if args.what == "function" else run_local_api(args.load_seconds)
    print(json.dumps(result, indent=1))
    bad = result.get("answers_5xx", 0) + result.get("exceptions_escaped", 0) + result.get("non_finite_or_unserializable", 0)
    return 1 if bad or result.get("load", {}).get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
