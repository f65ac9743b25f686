"""Load on the local API (awslambdaric workers) at 1, 8 and 32 connections, under wrk or, without it, python threads."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

from benchmarks.workspace import PY, ROOT, Bench, pct

KEY = "bench-key-0123456789"


def measure(bench: Bench) -> None:
    sys.path.insert(0, str(ROOT))
    from models.processes import free_port, launch, stop_group

    port = free_port()
    logdir = bench.tmp / "local_api"
    logdir.mkdir()
    proc = launch(
        [PY, "-m", "local_api", "--port", str(port), "--workers", "2", "--log-dir", str(logdir), "--no-build"]
        + ["--rate-limit", "100000", "--burst-limit", "100000"],  # the load must meet the function, not the throttle
        env={**os.environ, "LOCAL_API_KEY": KEY},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import requests

        url = f"http://127.0.0.1:{port}/prod/predict"
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/prod/health", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)
        body = json.loads(bench.single_path.read_text())["body"]
        duration = 3 if bench.quick else 20
        wrk = shutil.which("wrk")
        bench.log(f"load: local API, 2 awslambdaric workers, {duration} s per level, {'wrk' if wrk else 'python threads'}")
        levels = {}
        for conns in (1, 8, 32):
            levels[conns] = _wrk(bench, wrk, url, body, conns, duration) if wrk else _pyload(url, body, conns, duration)
            lv = levels[conns]
            bench.log(
                f"  {conns:2d} connections: {lv['rps']:7.0f} req/s  p50 {lv['p50_ms']:.2f} ms  p99 {lv['p99_ms']:.2f} ms  "
                f"errors {lv['errors']}"
            )
        bench.results["load"] = {"tool": "wrk" if wrk else "python", "duration_s": duration, "levels": levels}
    finally:
        stop_group(proc)


def _wrk(bench: Bench, wrk, url, body, conns, duration) -> dict:
    script = bench.tmp / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
        f'wrk.headers["Content-Type"] = "application/json"\nwrk.headers["X-API-Key"] = "{KEY}"\n'
    )
    r = subprocess.run(
        [wrk, f"-t{min(2, conns)}", f"-c{conns}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    out = r.stdout

    def ms(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "errors": errors,
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
    }


def _pyload(url, body, conns, duration) -> dict:
    import http.client
    import threading
    from urllib.parse import urlparse

    u = urlparse(url)
    lat, errors, stop = [], [0], time.time() + duration
    lock = threading.Lock()

    def client():
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        mine = []
        while time.time() < stop:
            t = time.perf_counter()
            c.request("POST", u.path, body=body, headers={"X-API-Key": KEY, "Content-Type": "application/json"})
            resp = c.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t)
            if resp.status != 200:
                with lock:
                    errors[0] += 1
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "rps": len(lat) / duration,
        "p50_ms": pct(lat, 50) * 1e3,
        "p99_ms": pct(lat, 99) * 1e3,
        "errors": errors[0],
        "requests": len(lat),
    }
