"""aws-lambda-powertools' Logger + Metrics against the hand-written EMF line: import cost and per-request cost."""

from __future__ import annotations

import json
import statistics
import subprocess

from benchmarks.workspace import HERE, LAMBDA_DIR, PY, Bench


def measure(bench: Bench) -> None:
    bench.log("aws-lambda-powertools: import cost in fresh processes, and per-request cost")
    imports = {"powertools": [], "ours": []}
    for _ in range(3 if bench.quick else 7):
        r = subprocess.run(
            [PY, str(HERE / "powertools_child.py"), "import-powertools"], capture_output=True, text=True, env=bench.env
        )
        if r.returncode != 0:
            bench.log(f"  powertools not installed ({r.stderr.strip().splitlines()[-1]}); skipped")
            return
        imports["powertools"].append(float(r.stdout))
        r = subprocess.run(
            [PY, str(HERE / "powertools_child.py"), "import-ours", str(LAMBDA_DIR)],
            capture_output=True,
            text=True,
            env=bench.env,
        )
        imports["ours"].append(float(r.stdout))
    r = subprocess.run(
        [PY, str(HERE / "powertools_child.py"), "warm", str(LAMBDA_DIR)], capture_output=True, text=True, env=bench.env
    )
    if r.returncode != 0:
        raise SystemExit(f"powertools warm failed: {r.stderr[-800:]}")
    warm = json.loads(r.stdout)
    bench.results["powertools"] = {"import_s": imports, "warm_ns": warm}
    bench.log(
        f"  import: powertools {statistics.median(imports['powertools']) * 1000:.0f} ms, ours "
        f"{statistics.median(imports['ours']) * 1000:.1f} ms; per request: powertools "
        f"{statistics.median(warm['powertools']) / 1e3:.0f} us, ours {statistics.median(warm['ours']) / 1e3:.1f} us"
    )
