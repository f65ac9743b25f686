"""Benchmarks, side by side with the guide's torch baseline in the same run; writes BENCHMARKS.md.

    python benchmarks/run.py                  # everything (about 3 minutes on 2 cores); `make bench`
    python benchmarks/run.py --quick          # fewer samples and 3 s load runs, for a sanity check
    python benchmarks/run.py --only cold warm # a subset: cold warm powertools memory size load

cold        fresh processes answer one event from the extracted zips: the python3.13 build, the old python3.11
            build (numpy 1.26.4, onnxruntime 1.16.3; built once here for the comparison) and the torch baseline
warm        a single /predict and a batch of 32 through the entry point on CPython 3.13, REST v1 event in, JSON out,
            the log line written to a pipe as on Lambda
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
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(LAMBDA_DIR))
sys.path.insert(0, str(ROOT))
PY = sys.executable
KEY = "bench-key-0123456789"
OLD_311_PINS = {"numpy": "1.26.4", "onnxruntime": "1.16.3", "orjson": "3.10.18"}  # the layer before the move to 3.13


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


def spread(values) -> str:
    fmt = "{:.0f}" if max(values) >= 100 else "{:.3g}"
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


class Bench:
    def __init__(self, quick: bool):
        import dataclasses

        import package

        self.quick = quick
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-"))
        self.target = package.Target.from_template(arch="x86_64")
        self.fn_py = package.interpreter(self.target)  # CPython 3.13, as Lambda's python3.13
        self.fn_zip, self.layer_zip = package.ensure_built(quiet=True, target=self.target)
        self.task, self.opt = self.tmp / "task", self.tmp / "opt"
        zipfile.ZipFile(self.fn_zip).extractall(self.task)
        zipfile.ZipFile(self.layer_zip).extractall(self.opt)
        self.ours_path = os.pathsep.join([str(self.task), str(self.opt / "python")])
        # the old python3.11 build, built once here so both are measured in the same run
        old = dataclasses.replace(self.target, python="3.11")
        req = self.tmp / "old-requirements.txt"
        req.write_text("".join(f"{k}=={v}\n" for k, v in OLD_311_PINS.items()))
        self.old_py = package.interpreter(old)
        self.old_layer = package.build_layer(self.tmp / "old-layer.zip", quiet=True, target=old, requirements=req)
        self.old_fn = package.build_function(self.tmp / "old-fn.zip", old)
        self.old_task, self.old_opt = self.tmp / "old-task", self.tmp / "old-opt"
        zipfile.ZipFile(self.old_fn).extractall(self.old_task)
        zipfile.ZipFile(self.old_layer).extractall(self.old_opt)
        events = LAMBDA_DIR / "events"
        single = json.loads((events / "rest_v1_predict.json").read_text())
        body = json.loads(single["body"])
        batch = dict(single, body=json.dumps({"instances": [body] * 32}))
        self.single_path, self.batch_path = self.tmp / "single.json", self.tmp / "batch.json"
        self.single_path.write_text(json.dumps(single))
        self.batch_path.write_text(json.dumps(batch))
        self.direct_path = events / "direct_invoke.json"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "AUTH_DISABLED": "1",
            "OMP_NUM_THREADS": "1",
            "LANG": "C.UTF-8",
        }
        self.results: dict = {
            "machine": machine(),
            "command": "make bench" + (" (--quick)" if quick else ""),
            "interpreters": {
                "ours": f"CPython {self.target.python} ({self.fn_py})",
                "old": f"CPython 3.11 ({self.old_py}) with {OLD_311_PINS}",
            },
        }

    def log(self, msg):
        print(msg, flush=True)

    def _first_answer(self, argv: list[str]) -> tuple[float, float]:
        """(seconds to the first answer, seconds to exit) of one fresh process that writes its answer to stderr."""
        t = time.perf_counter()
        p = subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.tmp)
        line = p.stderr.readline()
        answered = time.perf_counter() - t
        _, rest = p.communicate()
        total = time.perf_counter() - t
        if p.returncode != 0 or not line.startswith("{"):
            raise SystemExit(f"cold start failed ({argv[0]}): {line}{rest[-800:]}")
        return answered, total

    def cold(self):
        n = 5 if self.quick else 15
        runs = {
            "ours": (
                [
                    str(self.fn_py),
                    "-S",
                    "-E",
                    str(HERE / "cold_child.py"),
                    str(self.task),
                    str(self.opt / "python"),
                    str(self.direct_path),
                ]
            ),
            "old311": (
                [
                    str(self.old_py),
                    "-S",
                    "-E",
                    str(HERE / "cold_child.py"),
                    str(self.old_task),
                    str(self.old_opt / "python"),
                    str(self.direct_path),
                ]
            ),
            "baseline": [PY, str(HERE / "cold_baseline_child.py"), str(ROOT), str(self.direct_path)],
        }
        answer = {k: [] for k in runs}
        total = {k: [] for k in runs}
        self.log(f"cold start: {n} fresh processes each, alternating the 3.13 build, the old 3.11 build and torch")
        for i in range(n):
            for name, argv in runs.items():
                a, t = self._first_answer(argv)
                answer[name].append(a)
                total[name].append(t)
            self.log(
                f"  {i + 1}/{n}  "
                + "   ".join(f"{k} {answer[k][-1] * 1000:5.0f} ms (exit {total[k][-1] * 1000:5.0f})" for k in runs)
            )
        med = {k: statistics.median(v) for k, v in answer.items()}
        self.results["cold"] = {
            "answer_s": answer,
            "exit_s": total,
            "median_answer_s": med,
            "median_exit_s": {k: statistics.median(v) for k, v in total.items()},
            "ratio_vs_torch": med["baseline"] / med["ours"],
            "ratio_vs_old311": med["old311"] / med["ours"],
            # what earlier BENCHMARKS.md versions called ours/baseline: whole-process wall time
            "ours_s": total["ours"],
            "baseline_s": total["baseline"],
        }

    def _warm_child(self, mode: str, n: int) -> dict:
        path = self.ours_path if mode == "ours" else str(ROOT)
        argv = [str(self.fn_py), "-S", "-E"] if mode == "ours" else [PY]
        r = subprocess.run(
            [*argv, str(HERE / "warm_child.py"), mode, str(n), str(self.single_path), str(self.batch_path), path],
            env=self.env,
            capture_output=True,
            text=True,
            cwd=self.tmp,
        )
        if r.returncode != 0:
            raise SystemExit(f"warm ({mode}) failed: {r.stderr[-800:]}")
        if mode == "ours" and r.stdout.count("\n") < 2 * n:
            raise SystemExit(f"warm ({mode}): expected a log line per request on stdout, got {r.stdout.count(chr(10))}")
        return json.loads(r.stderr.strip().splitlines()[-1])

    def warm(self):
        rounds, n = (2, 1000) if self.quick else (5, 5000)
        self.log(f"warm latency: {rounds} rounds x {n} single requests (and batches of 32), alternating")
        res = {"ours": [], "baseline": []}
        for i in range(rounds):
            for mode in ("ours", "baseline"):
                d = self._warm_child(mode, n)
                res[mode].append(
                    {
                        "p50_us": pct(d["single_ns"], 50) / 1e3,
                        "p99_us": pct(d["single_ns"], 99) / 1e3,
                        "batch32_p50_ms": pct(d["batch_ns"], 50) / 1e6,
                        "batch32_p99_ms": pct(d["batch_ns"], 99) / 1e6,
                        "maxrss_mb": d["maxrss_mb"],
                    }
                )
                if mode == "ours":  # the handler against its own ONNX graph, alternating, same window, same process
                    hp50, gp50 = pct(d["paired_handler_ns"], 50), pct(d["graph_ns"], 50)
                    res[mode][-1].update(
                        graph_p50_us=gp50 / 1e3,
                        paired_p50_us=hp50 / 1e3,
                        ratio_to_graph=hp50 / gp50,
                        p99_over_p50=pct(d["paired_handler_ns"], 99) / hp50,
                        stages_us=d["stages_us"],
                    )
            o, b = res["ours"][-1], res["baseline"][-1]
            self.log(
                f"  round {i + 1}: ours p50 {o['p50_us']:.0f} us p99 {o['p99_us']:.0f} us batch32 {o['batch32_p50_ms']:.2f} ms | "
                f"baseline p50 {b['p50_us']:.0f} us p99 {b['p99_us']:.0f} us batch32 {b['batch32_p50_ms']:.2f} ms | "
                f"ours / its ONNX graph alone: p50 {o['ratio_to_graph']:.2f}x (goal <= 1.5), p99/p50 {o['p99_over_p50']:.2f} "
                "(goal <= 2)"
            )
        self.results["warm"] = res

    def powertools(self):
        self.log("aws-lambda-powertools: import cost in fresh processes, and per-request cost")
        imports = {"powertools": [], "ours": []}
        for _ in range(3 if self.quick else 7):
            r = subprocess.run(
                [PY, str(HERE / "powertools_child.py"), "import-powertools"], capture_output=True, text=True, env=self.env
            )
            if r.returncode != 0:
                self.log(f"  powertools not installed ({r.stderr.strip().splitlines()[-1]}); skipped")
                return
            imports["powertools"].append(float(r.stdout))
            r = subprocess.run(
                [PY, str(HERE / "powertools_child.py"), "import-ours", str(LAMBDA_DIR)],
                capture_output=True,
                text=True,
                env=self.env,
            )
            imports["ours"].append(float(r.stdout))
        r = subprocess.run(
            [PY, str(HERE / "powertools_child.py"), "warm", str(LAMBDA_DIR)], capture_output=True, text=True, env=self.env
        )
        if r.returncode != 0:
            raise SystemExit(f"powertools warm failed: {r.stderr[-800:]}")
        warm = json.loads(r.stdout)
        self.results["powertools"] = {"import_s": imports, "warm_ns": warm}
        self.log(
            f"  import: powertools {statistics.median(imports['powertools']) * 1000:.0f} ms, ours "
            f"{statistics.median(imports['ours']) * 1000:.1f} ms; per request: powertools "
            f"{statistics.median(warm['powertools']) / 1e3:.0f} us, ours {statistics.median(warm['ours']) / 1e3:.1f} us"
        )

    def runtime(self):
        """onnxruntime against the same ensemble in numpy: the measurement behind the runtime choice."""
        rounds = 2 if self.quick else 5
        env = {**self.env, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        runs = []
        for _ in range(rounds):
            r = subprocess.run([PY, str(HERE / "runtime_child.py"), str(ROOT)], capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise SystemExit(f"runtime comparison failed: {r.stderr[-800:]}")
            runs.append(json.loads(r.stdout))
        self.results["runtime"] = runs
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        self.log(
            f"runtime: onnxruntime {med['onnxruntime_b1_p50_us']:.0f} us / batch32 {med['onnxruntime_b32_p50_us']:.0f} us; "
            f"numpy {med['numpy_b1_p50_us']:.0f} us / batch32 {med['numpy_b32_p50_us']:.0f} us"
        )

    def dashboard(self):
        """First chart, first forecast and a ticker change in chromium: benchmarks/first_paint.py."""
        from benchmarks import first_paint

        self.results["dashboard"] = first_paint.measure(self.quick, self.log)

    def size(self):
        import package

        site = Path(next(p for p in sys.path if p.endswith("site-packages")))

        def du(path: Path) -> int:
            return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0

        guide = {
            name: du(site / name)
            for name in (
                "torch",
                "numpy",
                "pandas",
                "sklearn",
                "scipy",
                "joblib",
                "numpy.libs",
                "scipy.libs",
                "scikit_learn.libs",
                "torch.libs",
            )
        }
        self.results["size"] = {
            "function_zip": self.fn_zip.stat().st_size,
            "layer_zip": self.layer_zip.stat().st_size,
            "unzipped_total": package.unzipped_size(self.fn_zip) + package.unzipped_size(self.layer_zip),
            "guide_unzipped": sum(guide.values()),
            "guide_parts": guide,
            "old311_layer_zip": self.old_layer.stat().st_size,
            "old311_unzipped_total": package.unzipped_size(self.old_fn) + package.unzipped_size(self.old_layer),
        }
        s = self.results["size"]
        self.log(
            f"package size: ours {s['unzipped_total'] / 2**20:.0f} MB unzipped; the guide's torch + pandas + scikit-learn "
            f"{s['guide_unzipped'] / 2**20:.0f} MB"
        )

    def load(self):
        sys.path.insert(0, str(ROOT))
        from models.processes import free_port, launch, stop_group

        port = free_port()
        logdir = self.tmp / "local_api"
        logdir.mkdir()
        proc = launch(
            [
                PY,
                str(LAMBDA_DIR / "local_api.py"),
                "--port",
                str(port),
                "--workers",
                "2",
                "--rate-limit",
                "100000",
                "--burst-limit",
                "100000",
                "--log-dir",
                str(logdir),
                "--no-build",
            ],
            env={**os.environ, "LOCAL_API_KEY": KEY},
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
            body = json.loads(self.single_path.read_text())["body"]
            duration = 3 if self.quick else 20
            wrk = shutil.which("wrk")
            self.log(f"load: local API, 2 awslambdaric workers, {duration} s per level, {'wrk' if wrk else 'python threads'}")
            levels = {}
            for conns in (1, 8, 32):
                levels[conns] = self._wrk(wrk, url, body, conns, duration) if wrk else self._pyload(url, body, conns, duration)
                lv = levels[conns]
                self.log(
                    f"  {conns:2d} connections: {lv['rps']:7.0f} req/s  p50 {lv['p50_ms']:.2f} ms  p99 {lv['p99_ms']:.2f} ms  "
                    f"errors {lv['errors']}"
                )
            self.results["load"] = {"tool": "wrk" if wrk else "python", "duration_s": duration, "levels": levels}
        finally:
            stop_group(proc)

    def _wrk(self, wrk, url, body, conns, duration) -> dict:
        script = self.tmp / "post.lua"
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
        return {
            "rps": len(lat) / duration,
            "p50_ms": pct(lat, 50) * 1e3,
            "p99_ms": pct(lat, 99) * 1e3,
            "errors": errors[0],
            "requests": len(lat),
        }

    def memory(self):
        w = self.results.get("warm")
        if not w:
            self.warm()
            w = self.results["warm"]
        self.results["memory"] = {
            "ours_mb": statistics.median(r["maxrss_mb"] for r in w["ours"]),
            "baseline_mb": statistics.median(r["maxrss_mb"] for r in w["baseline"]),
        }
        self.log(
            f"peak memory: ours {self.results['memory']['ours_mb']:.0f} MB, baseline "
            f"{self.results['memory']['baseline_mb']:.0f} MB"
        )


def warm_profile_lines(rounds: list[dict], med, spr) -> list[str]:
    """The warm path against its floor: the handler over its own ONNX graph, and where the rest goes."""
    names = list(rounds[0]["stages_us"])
    hot = {k: statistics.median(r["stages_us"][k][0] for r in rounds) for k in names}
    cold = {k: statistics.median(r["stages_us"][k][1] for r in rounds) for k in names}
    graph = hot["ONNX graph alone"]
    rest = sum(v for k, v in cold.items() if k not in ("ONNX graph alone", "graph + answer shaping (Model.predict)"))
    shaping = cold["graph + answer shaping (Model.predict)"] - cold["ONNX graph alone"]
    lines = [
        "### The warm path against its floor",
        "",
        "The handler and its own ONNX graph alone (`session.run` on the same window), alternating in one process:",
        f"handler p50 **{med('ours', 'paired_p50_us'):.0f} µs** against the graph's **{med('ours', 'graph_p50_us'):.0f} µs**: "
        f"**{med('ours', 'ratio_to_graph'):.2f}x** ({spr('ours', 'ratio_to_graph')}; goal ≤ 1.5x), p99 / p50 "
        f"**{med('ours', 'p99_over_p50'):.2f}** ({spr('ours', 'p99_over_p50')}; goal ≤ 2). The absolute times vary",
        "several-fold between machines here; the ratio much less. The handler writes its log line to a pipe another",
        "process drains, as on Lambda.",
        "",
        "Where a warm single request goes, median µs per stage. *Hot*: the stage repeated back to back. *In a request*:",
        "the stage right after a graph run, which has just evicted its code and data from the caches, as happens in",
        f"every request; that column is what the handler pays. Outside the graph, a request spends about {rest + shaping:.0f} µs",
        f"({(rest + shaping) / graph:.2f}x the graph) in these stages; dispatch, auth and the proxy answer add the rest.",
        "",
        "| stage | hot µs | in a request µs | in a request, of the graph |",
        "|---|---|---|---|",
    ]
    lines += [f"| {k} | {hot[k]:.1f} | {cold[k]:.1f} | {cold[k] / graph:.2f}x |" for k in names]
    return [*lines, ""]


def render(res: dict) -> str:
    m = res["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Latest run: {m['date']} on {m['cpu']} ({m['cores']} cores, shared and noisy), Python {m['python']}, {m['os']}.",
        f"Command: `{res['command']}` (`python benchmarks/run.py`). Raw figures: `benchmarks/results.json`.",
        "Every figure is a median over repeated runs with its spread (min–max); ours and the baseline alternate in the",
        "same run, so the ratios compare like with like. The baseline is `benchmarks/baseline_handler.py`: what the guide",
        "does (import torch, load the .pth, run the LSTM in PyTorch).",
        "",
    ]
    if "cold" in res:
        c = res["cold"]

        def row(label, key):
            a, t = c["answer_s"][key], c["exit_s"][key]
            return (
                f"| {label} | **{statistics.median(a) * 1000:.0f} ms** | {spread([x * 1000 for x in a])} ms | "
                f"{statistics.median(t) * 1000:.0f} ms | {len(a)} |"
            )

        lines += [
            "## Cold start",
            "",
            "A fresh process imports the handler from the extracted zips (`-S -E`, path = function + layer only,",
            "`PYTHONDONTWRITEBYTECODE=1` as on Lambda's read-only package) and answers one direct-invoke event. *First answer*",
            "is when the answer exists (what Lambda bills: it never waits for interpreter shutdown); *exit* adds the teardown.",
            f"Interpreters: {res.get('interpreters', {}).get('ours', '?')}; old build "
            f"{res.get('interpreters', {}).get('old', '?')}.",
            "",
            "| | first answer (median) | spread | exit (median) | n |",
            "|---|---|---|---|---|",
            row("ours: python3.13 build (numpy 2.5, onnxruntime 1.20.1, orjson, shipped .pyc)", "ours"),
            row("the old python3.11 build, same code (numpy 1.26.4, onnxruntime 1.16.3)", "old311"),
            row("baseline: the guide's torch handler", "baseline"),
            "",
            f"Ratios (first answer): the 3.13 build is **{c['ratio_vs_old311']:.2f}x** the speed of the old 3.11 build "
            f"(goal: at least as fast) and **{c['ratio_vs_torch']:.1f}x** faster than torch (goal: 8x). On Lambda, CPU scales",
            "with memory (1,769 MB = one vCPU), so at 256 MB every 10 ms here is about 70 ms of billed INIT there.",
            "",
        ]
    if "warm" in res:
        w = res["warm"]

        def med(mode, k):
            return statistics.median(r[k] for r in w[mode])

        def spr(mode, k, f="{:.3g}"):
            vals = [r[k] for r in w[mode]]
            return f"{f.format(min(vals))}–{f.format(max(vals))}"

        lines += [
            "## Warm latency",
            "",
            "Through the entry point: a REST v1 event in, the proxy answer with its JSON body out, including the",
            "structured log line written to stdout, a pipe the parent drains, as on Lambda. Ours runs on CPython 3.13",
            "from the extracted zips and computes the point ensemble and the risk model (a second, 1 x 32 LSTM); the torch",
            "baseline on the venv's 3.11 computes the point forecast only. Median of each round's percentile; spread across",
            "rounds.",
            "",
            "| | single p50 | single p99 | batch of 32 p50 | batch of 32 p99 |",
            "|---|---|---|---|---|",
            f"| ours | **{med('ours', 'p50_us'):.0f} µs** ({spr('ours', 'p50_us')}) | **{med('ours', 'p99_us'):.0f} "
            f"µs** ({spr('ours', 'p99_us')}) | "
            f"**{med('ours', 'batch32_p50_ms'):.2f} ms** ({spr('ours', 'batch32_p50_ms')}) | "
            f"{med('ours', 'batch32_p99_ms'):.2f} ms |",
            f"| baseline (torch) | {med('baseline', 'p50_us'):.0f} µs ({spr('baseline', 'p50_us')}) | "
            f"{med('baseline', 'p99_us'):.0f} µs | "
            f"{med('baseline', 'batch32_p50_ms'):.2f} ms | {med('baseline', 'batch32_p99_ms'):.2f} ms |",
            "",
            f"Ratio (p50, single): ours is **{med('baseline', 'p50_us') / med('ours', 'p50_us'):.1f}x** faster. Goals: "
            "p50 ≤ 200 µs, "
            "p99 ≤ 400 µs (so warm requests bill Lambda's 1 ms minimum), batch of 32 ≤ 3 ms.",
            "",
        ]
        if "ratio_to_graph" in w["ours"][0]:
            lines += warm_profile_lines(w["ours"], med, spr)
    if "runtime" in res:
        runs = res["runtime"]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        sp = {k: spread([r[k] for r in runs]) for k in runs[0]}
        lines += [
            "## The runtime, chosen by measuring",
            "",
            "The served point ensemble (scale-free transform, 2 x 64 LSTM, ridge, weights) in onnxruntime and in plain numpy",
            "(`benchmarks/numpy_lstm.py`, checked equal within 1e-4), one thread each, p50 over rounds:",
            "",
            "| | single window | batch of 32 |",
            "|---|---|---|",
            f"| onnxruntime | **{med['onnxruntime_b1_p50_us']:.0f} µs** ({sp['onnxruntime_b1_p50_us']}) | "
            f"**{med['onnxruntime_b32_p50_us']:.0f} µs** ({sp['onnxruntime_b32_p50_us']}) |",
            f"| numpy | {med['numpy_b1_p50_us']:.0f} µs ({sp['numpy_b1_p50_us']}) | {med['numpy_b32_p50_us']:.0f} µs "
            f"({sp['numpy_b32_p50_us']}) |",
            "",
            f"onnxruntime is {med['numpy_b1_p50_us'] / med['onnxruntime_b1_p50_us']:.1f}x faster for one window, so "
            "the function uses it.",
            "",
        ]
    ortv = HERE / "ort_versions.json"
    if ortv.exists():
        o = json.loads(ortv.read_text())
        lines += [
            "## Which onnxruntime and numpy, measured",
            "",
            f"`{o['command']}` ({o['date']}, {o['rounds']} rounds, candidates alternating within each round): each",
            "candidate layer built as package.py builds the real one, answering one event in fresh `-S -E` processes.",
            "",
            "| candidate | first answer | exit | INIT (import + model load) | layer zip | unzipped | answers |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in o["candidates"]:
            same = "bit-identical" if c["bit_identical_to"] else f"max rel diff {c['max_rel_diff']:.1e}"
            lines.append(
                f"| {c['label']} (CPython {c['python']}) | {c['median_answer_ms']:.1f} ms | {c['median_exit_ms']:.1f} ms | "
                f"{c['median_init_ms']:.1f} ms | {c['layer_mb']:.1f} MB | {c['unzipped_mb']:.1f} MB | {same} |"
            )
        lines += [
            "",
            "Each onnxruntime release imports slower than the one before; numpy 2.5 imports faster than 2.4. The layer",
            "pins the fastest: onnxruntime 1.20.1 with numpy 2.5.5 (lambda/requirements.txt).",
            "",
        ]
    if "dashboard" in res:
        from benchmarks import first_paint

        lines += first_paint.render(res["dashboard"])
    if "powertools" in res:
        p = res["powertools"]
        pi, oi = statistics.median(p["import_s"]["powertools"]), statistics.median(p["import_s"]["ours"])
        pw, ow = statistics.median(p["warm_ns"]["powertools"]), statistics.median(p["warm_ns"]["ours"])
        lines += [
            "## aws-lambda-powertools, measured",
            "",
            "| | import (fresh process, .pyc cached) | per request (log line + 3 metrics + flush) |",
            "|---|---|---|",
            f"| aws-lambda-powertools Logger + Metrics | {pi * 1000:.0f} ms "
            f"({spread([x * 1000 for x in p['import_s']['powertools']])}) | "
            f"{pw / 1e3:.0f} µs ({spread([x / 1e3 for x in p['warm_ns']['powertools']])}) |",
            f"| ours: `forecast/telemetry.py`, one EMF line | {oi * 1000:.1f} ms | {ow / 1e3:.1f} µs |",
            "",
            f"Powertools would add {pi * 1000:.0f} ms to every cold start (x3.5 at 512 MB) and {(pw - ow) / 1e3:.0f} "
            "µs to every warm",
            "request, against the 200 µs warm p50 goal; the function writes the same Embedded Metric Format by hand instead.",
            "",
        ]
    if "memory" in res:
        mm = res["memory"]
        lines += [
            "## Peak memory",
            "",
            f"Peak RSS after a cold start and the warm runs above: ours **{mm['ours_mb']:.0f} MB**, baseline "
            f"{mm['baseline_mb']:.0f} MB",
            f"(ratio {mm['baseline_mb'] / mm['ours_mb']:.1f}x). Target: 128 MB or less. Lambda's smallest setting, 128 "
            "MB, holds it;",
            "template.yaml uses 256 MB for the CPU share (see README, Costs).",
            "",
        ]
    if "size" in res:
        s = res["size"]
        lines += [
            "## Package size",
            "",
            "| | size |",
            "|---|---|",
            f"| dist/lambda_function.zip | {s['function_zip'] / 2**20:.2f} MB (limit 5 MB) |",
            f"| dist/layer.zip | {s['layer_zip'] / 2**20:.1f} MB (limit 50 MB) |",
            f"| both, unzipped | **{s['unzipped_total'] / 2**20:.0f} MB** (our limit 150 MB; Lambda's 250 MB) |",
            f"| the old python3.11 build: layer zip / both unzipped | {s.get('old311_layer_zip', 0) / 2**20:.1f} MB / "
            f"{s.get('old311_unzipped_total', 0) / 2**20:.0f} MB |",
            f"| the guide's recipe, unzipped (torch, numpy, pandas, scikit-learn, scipy, joblib as installed here) | "
            f"{s['guide_unzipped'] / 2**20:.0f} MB |",
            "",
            f"Ratio: {s['guide_unzipped'] / s['unzipped_total']:.0f}x smaller; the guide's package cannot be deployed at all.",
            "",
        ]
    if "load" in res:
        ld = res["load"]
        lines += [
            "## Load on the local API",
            "",
            "`lambda/local_api.py --workers 2` on loopback (API Gateway stand-in + awslambdaric workers, the invocation log on),",
            f"driven by {ld['tool']} for {ld['duration_s']} s per level with the sample /predict body. Load generator, "
            "gateway and",
            "workers share the same 2 cores.",
            "",
            "| connections | req/s | p50 | p99 | errors |",
            "|---|---|---|---|---|",
        ]
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
    p.add_argument(
        "--only",
        nargs="*",
        default=None,
        choices=["cold", "warm", "runtime", "powertools", "memory", "size", "load", "dashboard"],
    )
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
    results = b.results
    if args.only and args.json.exists():  # a subset updates its own sections and keeps the others' last figures
        results = {**json.loads(args.json.read_text()), **b.results}
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    args.out.write_text(render(json.loads(json.dumps(results))))
    print(f"wrote {args.out} and {args.json}")


if __name__ == "__main__":
    main()
