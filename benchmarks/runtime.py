"""onnxruntime against the same ensemble in plain numpy (runtime_child.py): the measurement behind the runtime choice."""

from __future__ import annotations

import json
import statistics
import subprocess

from benchmarks.workspace import HERE, PY, ROOT, Bench


def measure(bench: Bench) -> None:
    """onnxruntime against the same ensemble in numpy: the measurement behind the runtime choice."""
    rounds = 2 if bench.quick else 5
    env = {**bench.env, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    runs = []
    for _ in range(rounds):
        r = subprocess.run([PY, str(HERE / "runtime_child.py"), str(ROOT)], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise SystemExit(f"runtime comparison failed: {r.stderr[-800:]}")
        runs.append(json.loads(r.stdout))
    bench.results["runtime"] = runs
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    bench.log(
        f"runtime: onnxruntime {med['onnxruntime_b1_p50_us']:.0f} us / batch32 {med['onnxruntime_b32_p50_us']:.0f} us; "
        f"numpy {med['numpy_b1_p50_us']:.0f} us / batch32 {med['numpy_b32_p50_us']:.0f} us"
    )
