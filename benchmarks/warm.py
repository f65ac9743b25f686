"""Warm latency through the entry point on CPython 3.13 against the torch baseline, and the peak memory of those runs."""

from __future__ import annotations

import json
import statistics
import subprocess

from benchmarks.workspace import HERE, PY, ROOT, Bench, pct


def _warm_child(bench: Bench, mode: str, n: int) -> dict:
    path = bench.ours_path if mode == "ours" else str(ROOT)
    argv = [str(bench.fn_py), "-S", "-E"] if mode == "ours" else [PY]
    r = subprocess.run(
        [*argv, str(HERE / "warm_child.py"), mode, str(n), str(bench.single_path), str(bench.batch_path), path],
        env=bench.env,
        capture_output=True,
        text=True,
        cwd=bench.tmp,
    )
    if r.returncode != 0:
        raise SystemExit(f"warm ({mode}) failed: {r.stderr[-800:]}")
    if mode == "ours" and r.stdout.count("\n") < 2 * n:
        raise SystemExit(f"warm ({mode}): expected a log line per request on stdout, got {r.stdout.count(chr(10))}")
    return json.loads(r.stderr.strip().splitlines()[-1])


def measure(bench: Bench) -> None:
    rounds, n = (2, 1000) if bench.quick else (5, 5000)
    bench.log(f"warm latency: {rounds} rounds x {n} single requests (and batches of 32), alternating")
    res = {"ours": [], "baseline": []}
    for i in range(rounds):
        for mode in ("ours", "baseline"):
            d = _warm_child(bench, mode, n)
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
        bench.log(
            f"  round {i + 1}: ours p50 {o['p50_us']:.0f} us p99 {o['p99_us']:.0f} us batch32 {o['batch32_p50_ms']:.2f} ms | "
            f"baseline p50 {b['p50_us']:.0f} us p99 {b['p99_us']:.0f} us batch32 {b['batch32_p50_ms']:.2f} ms | "
            f"ours / its ONNX graph alone: p50 {o['ratio_to_graph']:.2f}x (goal <= 1.5), p99/p50 {o['p99_over_p50']:.2f} "
            "(goal <= 2)"
        )
    bench.results["warm"] = res


def memory(bench: Bench) -> None:
    w = bench.results.get("warm")
    if not w:
        measure(bench)
        w = bench.results["warm"]
    bench.results["memory"] = {
        "ours_mb": statistics.median(r["maxrss_mb"] for r in w["ours"]),
        "baseline_mb": statistics.median(r["maxrss_mb"] for r in w["baseline"]),
    }
    bench.log(
        f"peak memory: ours {bench.results['memory']['ours_mb']:.0f} MB, baseline {bench.results['memory']['baseline_mb']:.0f} MB"
    )
