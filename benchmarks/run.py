"""Benchmarks, side by side with the guide's torch baseline in the same run; writes BENCHMARKS.md.

    python benchmarks/run.py                  # everything (about 3 minutes on 2 cores); `make bench`
    python benchmarks/run.py --quick          # fewer samples and 3 s load runs, for a sanity check
    python benchmarks/run.py --only cold warm # a subset: cold warm powertools memory size load

cold        a fresh process imports the handler from the extracted zips and answers the first /predict
warm        a single /predict and a batch of 32 through the entry point, REST v1 event in, JSON out
powertools  aws-lambda-powertools' Logger + Metrics against the hand-written EMF line (import and per request)
memory      peak RSS after a cold start and 2,000 requests
size        the zips against the guide's recipe (torch + pandas + scikit-learn installed)
load        the local API (awslambdaric workers) under wrk at 1, 8 and 32 connections
Machines here are shared and noisy: every figure is a median over repeated runs, with its spread, and
ours and the baseline alternate within one run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_DIR = ROOT / "lambda"
sys.path.insert(0, str(LAMBDA_DIR))
PY = sys.executable
KEY = "bench-key-0123456789"

WARM_CHILD = r"""
import sys, json, os, time, resource
mode, n, single_path, batch_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if mode == "ours":
    sys.path[:0] = sys.argv[5].split(os.pathsep)
    import lambda_handler as h
else:
    sys.path.insert(0, sys.argv[5])
    from benchmarks import baseline_handler as h
single, batch = json.load(open(single_path)), json.load(open(batch_path))
real = sys.stdout
sys.stdout = open(os.devnull, "w")   # the function's log line is a real write, as to Lambda's stdout
for _ in range(200):
    h.lambda_handler(single, None)
def timed(ev, k):
    out = []
    for _ in range(k):
        t = time.perf_counter_ns(); h.lambda_handler(ev, None); out.append(time.perf_counter_ns() - t)
    return out
s = timed(single, n)
b = timed(batch, max(50, n // 20))
assert json.loads(h.lambda_handler(single, None)["body"])["prediction"] > 0
real.write(json.dumps({"single_ns": s, "batch_ns": b, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

COLD_OURS = "import sys, json, os; sys.path[:0] = sys.argv[1].split(os.pathsep); import lambda_handler as h; " \
            "r = h.lambda_handler(json.load(open(sys.argv[2])), None); assert r['prediction'] > 0"
COLD_BASE = "import sys, json; sys.path.insert(0, sys.argv[1]); from benchmarks import baseline_handler as h; " \
            "r = h.lambda_handler(json.load(open(sys.argv[2])), None); assert r['statusCode'] == 200"

RUNTIME_CHILD = r"""
import sys, json, time
sys.path.insert(0, sys.argv[1])
import numpy as np, torch, joblib, onnxruntime as ort
from benchmarks.numpy_lstm import NumpyEnsemble
ckpt = torch.load(sys.argv[1] + "/models/lstm_multi_ticker.pth", map_location="cpu", weights_only=False)
bundle = joblib.load(sys.argv[1] + "/models/scaler_ensemble_multi.pkl")
state = {k: v.numpy() for k, v in ckpt["state_dict"].items()}
npm = NumpyEnsemble(state, ckpt["model_args"], bundle["linear"].coef_, float(bundle["linear"].intercept_), bundle["weights"])
o = ort.SessionOptions(); o.intra_op_num_threads = o.inter_op_num_threads = 1
sess = ort.InferenceSession(sys.argv[1] + "/models/runtime/model.onnx", o, providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
res = {}
for b in (1, 32):
    x = rng.normal(size=(b, 60, 10)).astype(np.float32); x[:, :, 0] = 0.1 + rng.normal(0, 0.01, size=(b, 60)).astype(np.float32)
    ref = sess.run(["ensemble"], {"x": x})[0]
    assert np.allclose(npm(x), ref, atol=1e-4), (npm(x), ref)
    for name, f in (("onnxruntime", lambda: sess.run(["ensemble"], {"x": x})), ("numpy", lambda: npm(x))):
        for _ in range(30): f()
        ts = []
        for _ in range(400 if b == 1 else 100):
            t = time.perf_counter_ns(); f(); ts.append(time.perf_counter_ns() - t)
        ts.sort(); res[f"{name}_b{b}_p50_us"] = ts[len(ts) // 2] / 1e3
print(json.dumps(res))
"""

POWERTOOLS_IMPORT = "import time; t = time.perf_counter(); from aws_lambda_powertools import Logger, Metrics; " \
                    "Logger(service='x'); Metrics(namespace='x', service='x'); print(time.perf_counter() - t)"
OURS_IMPORT = "import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); from forecast import telemetry; " \
              "print(time.perf_counter() - t)"
POWERTOOLS_WARM = r"""
import sys, os, time, json, io
sys.path.insert(0, sys.argv[1])
real = sys.stdout
sys.stdout = open(os.devnull, "w")
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from forecast import telemetry
logger, metrics = Logger(service="financial-forecasting", stream=sys.stdout), Metrics(namespace="FinancialForecasting", service="financial-forecasting")
def pt():
    logger.info("request", extra={"request_id": "abc", "route": "/predict", "ticker": "AAPL", "status": 200, "latency_ms": 0.2, "model_version": "v"})
    metrics.add_dimension(name="Route", value="/predict")
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=0.2)
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ColdStart", unit=MetricUnit.Count, value=0)
    metrics.flush_metrics()
def ours():
    telemetry.emit(request_id="abc", route="/predict", method="POST", status=200, latency_ms=0.2, model_version="v",
                   ticker="AAPL", predictions=1, cold_start=False, out=sys.stdout)
res = {"powertools": [], "ours": []}
for _ in range(200): pt(); ours()
for rnd in range(5):
    for name, f in (("powertools", pt), ("ours", ours)):
        ts = []
        for _ in range(2000):
            t = time.perf_counter_ns(); f(); ts.append(time.perf_counter_ns() - t)
        ts.sort(); res[name].append(ts[len(ts) // 2])
real.write(json.dumps(res))
"""


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


def spread(values) -> str:
    fmt = "{:.0f}" if max(values) >= 100 else "{:.3g}"
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "os": platform.platform(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


class Bench:
    def __init__(self, quick: bool):
        import package

        self.quick = quick
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-"))
        self.fn_zip, self.layer_zip = package.ensure_built(quiet=True)
        self.task, self.opt = self.tmp / "task", self.tmp / "opt"
        zipfile.ZipFile(self.fn_zip).extractall(self.task)
        zipfile.ZipFile(self.layer_zip).extractall(self.opt)
        self.ours_path = os.pathsep.join([str(self.task), str(self.opt / "python")])
        events = LAMBDA_DIR / "events"
        single = json.loads((events / "rest_v1_predict.json").read_text())
        body = json.loads(single["body"])
        batch = dict(single, body=json.dumps({"instances": [body] * 32}))
        self.single_path, self.batch_path = self.tmp / "single.json", self.tmp / "batch.json"
        self.single_path.write_text(json.dumps(single))
        self.batch_path.write_text(json.dumps(batch))
        self.direct_path = events / "direct_invoke.json"
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin"), "PYTHONDONTWRITEBYTECODE": "1", "AUTH_DISABLED": "1",
                    "OMP_NUM_THREADS": "1"}
        self.results: dict = {"machine": machine(), "command": "make bench" + (" (--quick)" if quick else "")}

    def log(self, msg):
        print(msg, flush=True)

    def cold(self):
        n = 5 if self.quick else 15
        ours, base = [], []
        self.log(f"cold start: {n} fresh processes each, alternating ours and the torch baseline")
        for i in range(n):
            for name, argv, out in (("ours", [PY, "-S", "-E", "-c", COLD_OURS, self.ours_path, str(self.direct_path)], ours),
                                    ("baseline", [PY, "-c", COLD_BASE, str(ROOT), str(self.direct_path)], base)):
                t = time.perf_counter()
                r = subprocess.run(argv, env=self.env, capture_output=True, text=True, cwd=self.tmp)
                out.append(time.perf_counter() - t)
                if r.returncode != 0:
                    raise SystemExit(f"cold start ({name}) failed: {r.stderr[-800:]}")
            self.log(f"  {i + 1}/{n}  ours {ours[-1] * 1000:6.0f} ms   baseline {base[-1] * 1000:6.0f} ms")
        self.results["cold"] = {"ours_s": ours, "baseline_s": base, "median_ours_s": statistics.median(ours),
                                "median_baseline_s": statistics.median(base),
                                "ratio": statistics.median(base) / statistics.median(ours)}

    def _warm_child(self, mode: str, n: int) -> dict:
        path = self.ours_path if mode == "ours" else str(ROOT)
        argv = [PY, "-S", "-E"] if mode == "ours" else [PY]
        r = subprocess.run([*argv, "-c", WARM_CHILD, mode, str(n), str(self.single_path), str(self.batch_path), path],
                           env=self.env, capture_output=True, text=True, cwd=self.tmp)
        if r.returncode != 0:
            raise SystemExit(f"warm ({mode}) failed: {r.stderr[-800:]}")
        return json.loads(r.stdout)

    def warm(self):
        rounds, n = (2, 1000) if self.quick else (5, 5000)
        self.log(f"warm latency: {rounds} rounds x {n} single requests (and batches of 32), alternating")
        res = {"ours": [], "baseline": []}
        for i in range(rounds):
            for mode in ("ours", "baseline"):
                d = self._warm_child(mode, n)
                res[mode].append({"p50_us": pct(d["single_ns"], 50) / 1e3, "p99_us": pct(d["single_ns"], 99) / 1e3,
                                  "batch32_p50_ms": pct(d["batch_ns"], 50) / 1e6, "batch32_p99_ms": pct(d["batch_ns"], 99) / 1e6,
                                  "maxrss_mb": d["maxrss_mb"]})
            o, b = res["ours"][-1], res["baseline"][-1]
            self.log(f"  round {i + 1}: ours p50 {o['p50_us']:.0f} us p99 {o['p99_us']:.0f} us batch32 {o['batch32_p50_ms']:.2f} ms | "
                     f"baseline p50 {b['p50_us']:.0f} us p99 {b['p99_us']:.0f} us batch32 {b['batch32_p50_ms']:.2f} ms")
        self.results["warm"] = res

    def powertools(self):
        self.log("aws-lambda-powertools: import cost in fresh processes, and per-request cost")
        imports = {"powertools": [], "ours": []}
        for _ in range(3 if self.quick else 7):
            r = subprocess.run([PY, "-c", POWERTOOLS_IMPORT], capture_output=True, text=True, env={**self.env, "PYTHONDONTWRITEBYTECODE": "1"})
            if r.returncode != 0:
                self.log(f"  powertools not installed ({r.stderr.strip().splitlines()[-1]}); skipped")
                return
            imports["powertools"].append(float(r.stdout))
            r = subprocess.run([PY, "-c", OURS_IMPORT, str(self.task)], capture_output=True, text=True, env=self.env)
            imports["ours"].append(float(r.stdout))
        r = subprocess.run([PY, "-c", POWERTOOLS_WARM, str(LAMBDA_DIR)], capture_output=True, text=True, env=self.env)
        if r.returncode != 0:
            raise SystemExit(f"powertools warm failed: {r.stderr[-800:]}")
        warm = json.loads(r.stdout)
        self.results["powertools"] = {"import_s": imports, "warm_ns": warm}
        self.log(f"  import: powertools {statistics.median(imports['powertools']) * 1000:.0f} ms, ours "
                 f"{statistics.median(imports['ours']) * 1000:.1f} ms; per request: powertools "
                 f"{statistics.median(warm['powertools']) / 1e3:.0f} us, ours {statistics.median(warm['ours']) / 1e3:.1f} us")

    def runtime(self):
        """onnxruntime against the same ensemble in numpy: the measurement behind the runtime choice."""
        rounds = 2 if self.quick else 5
        env = {**self.env, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        runs = []
        for _ in range(rounds):
            r = subprocess.run([PY, "-c", RUNTIME_CHILD, str(ROOT)], capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise SystemExit(f"runtime comparison failed: {r.stderr[-800:]}")
            runs.append(json.loads(r.stdout))
        self.results["runtime"] = runs
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        self.log(f"runtime: onnxruntime {med['onnxruntime_b1_p50_us']:.0f} us / batch32 {med['onnxruntime_b32_p50_us']:.0f} us; "
                 f"numpy {med['numpy_b1_p50_us']:.0f} us / batch32 {med['numpy_b32_p50_us']:.0f} us")

    def dashboard(self):
        """Seconds from opening the Forecast page (a fresh browser session) to the first forecast in the table."""
        from playwright.sync_api import sync_playwright

        sys.path.insert(0, str(ROOT / "scripts"))
        sys.path.insert(0, str(ROOT))
        from screenshots import CHROMIUM, CHROMIUM_ARGS

        from tests.conftest import free_port

        api_port, dash_port = free_port(), free_port()
        proc = subprocess.Popen([PY, str(ROOT / "scripts" / "run.py"), "--port", str(api_port), "--dashboard-port", str(dash_port)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        times = []
        try:
            import requests

            for _ in range(240):
                try:
                    requests.get(f"http://127.0.0.1:{dash_port}/_stcore/health", timeout=1).raise_for_status()
                    requests.get(f"http://127.0.0.1:{api_port}/prod/health", timeout=1).raise_for_status()
                    break
                except requests.RequestException:
                    time.sleep(0.5)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                for _ in range(3 if self.quick else 7):
                    page = browser.new_page(viewport={"width": 1400, "height": 1200})
                    t0 = time.perf_counter()
                    page.goto(f"http://127.0.0.1:{dash_port}/")
                    page.wait_for_function("""() => { const c = document.querySelector('[data-testid="glide-cell-3-0"]');
                                                      return c && parseFloat(c.innerText) > 0; }""", timeout=60_000)
                    times.append(time.perf_counter() - t0)
                    page.close()
                browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(20)
        self.results["dashboard"] = {"first_forecast_s": times}
        self.log(f"dashboard: first forecast visible {statistics.median(times):.2f} s after the page opens ({spread(times)} s)")

    def size(self):
        import package

        site = Path(next(p for p in sys.path if p.endswith("site-packages")))

        def du(path: Path) -> int:
            return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0

        guide = {name: du(site / name) for name in ("torch", "numpy", "pandas", "sklearn", "scipy", "joblib", "numpy.libs",
                                                    "scipy.libs", "scikit_learn.libs", "torch.libs")}
        self.results["size"] = {"function_zip": self.fn_zip.stat().st_size, "layer_zip": self.layer_zip.stat().st_size,
                                "unzipped_total": package.unzipped_size(self.fn_zip) + package.unzipped_size(self.layer_zip),
                                "guide_unzipped": sum(guide.values()), "guide_parts": guide}
        s = self.results["size"]
        self.log(f"package size: ours {s['unzipped_total'] / 2**20:.0f} MB unzipped; the guide's torch + pandas + scikit-learn "
                 f"{s['guide_unzipped'] / 2**20:.0f} MB")

    def load(self):
        sys.path.insert(0, str(ROOT))
        from tests.conftest import free_port

        port = free_port()
        logdir = self.tmp / "local_api"
        logdir.mkdir()
        proc = subprocess.Popen([PY, str(LAMBDA_DIR / "local_api.py"), "--port", str(port), "--workers", "2",
                                 "--rate-limit", "100000", "--burst-limit", "100000", "--log-dir", str(logdir), "--no-build"],
                                env={**os.environ, "LOCAL_API_KEY": KEY}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            import requests

            url = f"http://127.0.0.1:{port}/prod/predict"
            for _ in range(100):
                try:
                    requests.get(f"http://127.0.0.1:{port}/prod/health", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.2)
            body = json.loads(self.single_path.read_text())["body"]
            duration = 3 if self.quick else 20
            wrk = shutil.which("wrk")
            self.log(f"load: local API, 2 awslambdaric workers, {duration} s per level, {'wrk' if wrk else 'python threads'}")
            levels = {}
            for conns in (1, 8, 32):
                levels[conns] = self._wrk(wrk, url, body, conns, duration) if wrk else self._pyload(url, body, conns, duration)
                lv = levels[conns]
                self.log(f"  {conns:2d} connections: {lv['rps']:7.0f} req/s  p50 {lv['p50_ms']:.2f} ms  p99 {lv['p99_ms']:.2f} ms  "
                         f"errors {lv['errors']}")
            self.results["load"] = {"tool": "wrk" if wrk else "python", "duration_s": duration, "levels": levels}
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)

    def _wrk(self, wrk, url, body, conns, duration) -> dict:
        script = self.tmp / "post.lua"
        script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                          f'wrk.headers["Content-Type"] = "application/json"\nwrk.headers["X-API-Key"] = "{KEY}"\n')
        r = subprocess.run([wrk, f"-t{min(2, conns)}", f"-c{conns}", f"-d{duration}s", "--latency", "-s", str(script), url],
                           capture_output=True, text=True, timeout=duration + 60)
        out = r.stdout

        def ms(label):
            m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
            if not m:
                return float("nan")
            return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
        return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50_ms": ms("50"), "p99_ms": ms("99"),
                "errors": errors, "requests": int(re.search(r"(\d+) requests in", out).group(1))}

    def _pyload(self, url, body, conns, duration) -> dict:
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
        return {"rps": len(lat) / duration, "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3, "errors": errors[0],
                "requests": len(lat)}

    def memory(self):
        w = self.results.get("warm")
        if not w:
            self.warm()
            w = self.results["warm"]
        self.results["memory"] = {"ours_mb": statistics.median(r["maxrss_mb"] for r in w["ours"]),
                                  "baseline_mb": statistics.median(r["maxrss_mb"] for r in w["baseline"])}
        self.log(f"peak memory: ours {self.results['memory']['ours_mb']:.0f} MB, baseline {self.results['memory']['baseline_mb']:.0f} MB")


def render(res: dict) -> str:
    m = res["machine"]
    lines = ["# Benchmarks", "",
             f"Latest run: {m['date']} on {m['cpu']} ({m['cores']} cores, shared and noisy), Python {m['python']}, {m['os']}.",
             f"Command: `{res['command']}` (`python benchmarks/run.py`). Raw figures: `benchmarks/results.json`.",
             "Every figure is a median over repeated runs with its spread (min–max); ours and the baseline alternate in the",
             "same run, so the ratios compare like with like. The baseline is `benchmarks/baseline_handler.py`: what the guide",
             "does (import torch, load the .pth, run the LSTM in PyTorch).", ""]
    if "cold" in res:
        c = res["cold"]
        lines += ["## Cold start", "",
                  "A fresh process imports the handler from the extracted zips (`python -S -E`, path = function + layer only,",
                  "`PYTHONDONTWRITEBYTECODE=1` as on Lambda's read-only package) and answers the first /predict. Wall time of the process.", "",
                  "| | median | spread | n |", "|---|---|---|---|",
                  f"| ours (onnxruntime + numpy + orjson, shipped .pyc) | **{c['median_ours_s'] * 1000:.0f} ms** | {spread([x * 1000 for x in c['ours_s']])} ms | {len(c['ours_s'])} |",
                  f"| baseline (torch) | {c['median_baseline_s'] * 1000:.0f} ms | {spread([x * 1000 for x in c['baseline_s']])} ms | {len(c['baseline_s'])} |",
                  "", f"Ratio: ours is **{c['ratio']:.1f}x** faster (target: at least 8x, and 0.25 s or less). At 512 MB Lambda gives about a third of a",
                  "core, so every 0.1 s here is about 0.35 s of billed INIT there.", ""]
    if "warm" in res:
        w = res["warm"]

        def med(mode, k):
            return statistics.median(r[k] for r in w[mode])

        def spr(mode, k, f="{:.3g}"):
            vals = [r[k] for r in w[mode]]
            return f"{f.format(min(vals))}–{f.format(max(vals))}"

        lines += ["## Warm latency", "",
                  "Through the entry point: a REST v1 event in, the proxy answer with its JSON body out, including the",
                  "structured log line (written to /dev/null). Median of each round's percentile; spread across rounds.", "",
                  "| | single p50 | single p99 | batch of 32 p50 | batch of 32 p99 |", "|---|---|---|---|---|",
                  f"| ours | **{med('ours', 'p50_us'):.0f} µs** ({spr('ours', 'p50_us')}) | **{med('ours', 'p99_us'):.0f} µs** ({spr('ours', 'p99_us')}) | "
                  f"**{med('ours', 'batch32_p50_ms'):.2f} ms** ({spr('ours', 'batch32_p50_ms')}) | {med('ours', 'batch32_p99_ms'):.2f} ms |",
                  f"| baseline (torch) | {med('baseline', 'p50_us'):.0f} µs ({spr('baseline', 'p50_us')}) | {med('baseline', 'p99_us'):.0f} µs | "
                  f"{med('baseline', 'batch32_p50_ms'):.2f} ms | {med('baseline', 'batch32_p99_ms'):.2f} ms |",
                  "", f"Ratio (p50, single): ours is **{med('baseline', 'p50_us') / med('ours', 'p50_us'):.1f}x** faster. Targets: p50 ≤ 300 µs, "
                  "p99 ≤ 1 ms (so 99% of warm requests bill Lambda's 1 ms minimum), batch of 32 ≤ 3 ms.", ""]
    if "runtime" in res:
        runs = res["runtime"]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        sp = {k: spread([r[k] for r in runs]) for k in runs[0]}
        lines += ["## The runtime, chosen by measuring", "",
                  "The served ensemble (scale-free transform, 2 x 64 LSTM, ridge, weights) in onnxruntime 1.16.3 and in plain numpy",
                  "(`benchmarks/numpy_lstm.py`, checked equal within 1e-4), one thread each, p50 over rounds:", "",
                  "| | single window | batch of 32 |", "|---|---|---|",
                  f"| onnxruntime | **{med['onnxruntime_b1_p50_us']:.0f} µs** ({sp['onnxruntime_b1_p50_us']}) | **{med['onnxruntime_b32_p50_us']:.0f} µs** ({sp['onnxruntime_b32_p50_us']}) |",
                  f"| numpy | {med['numpy_b1_p50_us']:.0f} µs ({sp['numpy_b1_p50_us']}) | {med['numpy_b32_p50_us']:.0f} µs ({sp['numpy_b32_p50_us']}) |", "",
                  f"onnxruntime is {med['numpy_b1_p50_us'] / med['onnxruntime_b1_p50_us']:.1f}x faster for one window, so the function uses it.", ""]
    if "dashboard" in res:
        d = res["dashboard"]["first_forecast_s"]
        lines += ["## Dashboard", "",
                  "From opening the Forecast page in a fresh chromium session to the first forecast in its table, with `make run`'s",
                  f"servers on the bundled data: median **{statistics.median(d):.2f} s** ({spread(d)} s, n = {len(d)}). Goal: 5 s or less.", ""]
    if "powertools" in res:
        p = res["powertools"]
        pi, oi = statistics.median(p["import_s"]["powertools"]), statistics.median(p["import_s"]["ours"])
        pw, ow = statistics.median(p["warm_ns"]["powertools"]), statistics.median(p["warm_ns"]["ours"])
        lines += ["## aws-lambda-powertools, measured", "",
                  "| | import (fresh process, .pyc cached) | per request (log line + 3 metrics + flush) |", "|---|---|---|",
                  f"| aws-lambda-powertools Logger + Metrics | {pi * 1000:.0f} ms ({spread([x * 1000 for x in p['import_s']['powertools']])}) | "
                  f"{pw / 1e3:.0f} µs ({spread([x / 1e3 for x in p['warm_ns']['powertools']])}) |",
                  f"| ours: `forecast/telemetry.py`, one EMF line | {oi * 1000:.1f} ms | {ow / 1e3:.1f} µs |", "",
                  f"Powertools would add {pi * 1000:.0f} ms to every cold start (x3.5 at 512 MB) and {(pw - ow) / 1e3:.0f} µs to every warm",
                  "request, against a 300 µs warm budget; the function writes the same Embedded Metric Format by hand instead.", ""]
    if "memory" in res:
        mm = res["memory"]
        lines += ["## Peak memory", "",
                  f"Peak RSS after a cold start and the warm runs above: ours **{mm['ours_mb']:.0f} MB**, baseline {mm['baseline_mb']:.0f} MB",
                  f"(ratio {mm['baseline_mb'] / mm['ours_mb']:.1f}x). Target: 128 MB or less. Lambda's smallest setting, 128 MB, holds it;",
                  "template.yaml uses 256 MB for the CPU share (see README, Costs).", ""]
    if "size" in res:
        s = res["size"]
        lines += ["## Package size", "",
                  "| | size |", "|---|---|",
                  f"| dist/lambda_function.zip | {s['function_zip'] / 2**20:.2f} MB (limit 5 MB) |",
                  f"| dist/layer.zip | {s['layer_zip'] / 2**20:.1f} MB (limit 50 MB) |",
                  f"| both, unzipped | **{s['unzipped_total'] / 2**20:.0f} MB** (our limit 150 MB; Lambda's 250 MB) |",
                  f"| the guide's recipe, unzipped (torch, numpy, pandas, scikit-learn, scipy, joblib as installed here) | "
                  f"{s['guide_unzipped'] / 2**20:.0f} MB |", "",
                  f"Ratio: {s['guide_unzipped'] / s['unzipped_total']:.0f}x smaller; the guide's package cannot be deployed at all.", ""]
    if "load" in res:
        ld = res["load"]
        lines += ["## Load on the local API", "",
                  "`lambda/local_api.py --workers 2` on loopback (API Gateway stand-in + awslambdaric workers, the invocation log on),",
                  f"driven by {ld['tool']} for {ld['duration_s']} s per level with the sample /predict body. Load generator, gateway and",
                  "workers share the same 2 cores.", "",
                  "| connections | req/s | p50 | p99 | errors |", "|---|---|---|---|---|"]
        for conns, lv in ld["levels"].items():
            lines.append(f"| {conns} | {lv['rps']:.0f} | {lv['p50_ms']:.2f} ms | {lv['p99_ms']:.2f} ms | {lv['errors']} |")
        eight = ld["levels"].get("8") or ld["levels"].get(8)
        if eight:
            lines += ["", f"Goal: 500 req/s at 8 connections: {eight['rps'] / 500:.2f}x of it."]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", nargs="*", default=None, choices=["cold", "warm", "runtime", "powertools", "memory", "size", "load", "dashboard"])
    p.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json")
    args = p.parse_args(argv)
    b = Bench(args.quick)
    try:
        for name in ("cold", "warm", "runtime", "powertools", "memory", "size", "load", "dashboard"):
            if args.only is None or name in args.only:
                getattr(b, name)()
    finally:
        shutil.rmtree(b.tmp, ignore_errors=True)
    args.json.write_text(json.dumps(b.results, indent=1) + "\n")
    args.out.write_text(render(json.loads(json.dumps(b.results))))
    print(f"wrote {args.out} and {args.json}")


if __name__ == "__main__":
    main()
