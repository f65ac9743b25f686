"""Two builds of the function side by side, cold and warm, alternating in one run (a shared machine's load hits both).

    python benchmarks/paired.py BEFORE_FUNCTION_ZIP [AFTER_FUNCTION_ZIP] [--cold 30] [--rounds 4]

BEFORE_FUNCTION_ZIP: e.g. `git archive <commit>` elsewhere and `python lambda/package.py` there. The function reads a
calibration state listing every bundled ticker (CALIBRATION_STATE), as the ledger configures it.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("before", type=Path)
ap.add_argument("after", type=Path, nargs="?", default=ROOT / "dist" / "lambda_function.zip")
ap.add_argument("--layer", type=Path, default=ROOT / "dist" / "layer.zip")
ap.add_argument("--cold", type=int, default=30)
ap.add_argument("--rounds", type=int, default=4)
args = ap.parse_args()
FN = {"before": args.before, "after": args.after}
LAYER = args.layer
PY = str(ROOT / ".venv-fn" / "bin" / "python")
tmp = Path(tempfile.mkdtemp(prefix="paired-"))
zipfile.ZipFile(LAYER).extractall(tmp / "opt")
for k, z in FN.items():
    zipfile.ZipFile(z).extractall(tmp / k)
m = json.loads((tmp / "after" / "runtime" / "manifest.json").read_text())
state = tmp / "calibration.json"
state.write_text(
    json.dumps(
        {
            "version": 1,
            "model_version": m["version"],
            "method": "aci",
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "tickers": {t: {"factor": 1.1, "as_of": "2013-02-28", "n": 474} for t in m["tickers"] + m.get("held_out", [])},
        }
    )
)
env = {
    "PATH": "/usr/bin:/bin",
    "PYTHONDONTWRITEBYTECODE": "1",
    "AUTH_DISABLED": "1",
    "OMP_NUM_THREADS": "1",
    "LANG": "C.UTF-8",
    "CALIBRATION_STATE": str(state),
}
event = str(ROOT / "lambda" / "events" / "direct_invoke.json")
child = str(ROOT / "benchmarks" / "cold_child.py")
n = args.cold
res = {k: {"answer_ms": [], "in_process_ms": []} for k in FN}
labels = {}
for i in range(n):
    for k in ("before", "after") if i % 2 == 0 else ("after", "before"):
        t = time.perf_counter()
        p = subprocess.Popen(
            [PY, "-S", "-E", child, str(tmp / k), str(tmp / "opt" / "python"), event],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp,
        )
        line = p.stderr.readline()
        res[k]["answer_ms"].append((time.perf_counter() - t) * 1000)
        p.communicate()
        d = json.loads(line)
        res[k]["in_process_ms"].append(d["in_process_ms"])
        labels[k] = d["interval"].get("calibration")
out = {k: {f: {"median": statistics.median(v), "min": min(v), "max": max(v)} for f, v in r.items()} for k, r in res.items()}
out["ratio_answer_median"] = out["after"]["answer_ms"]["median"] / out["before"]["answer_ms"]["median"]
out["ratio_in_process_median"] = out["after"]["in_process_ms"]["median"] / out["before"]["in_process_ms"]["median"]
out["label_after"] = labels["after"]
print(json.dumps(out, indent=1))

# warm, paired: the same child the bench uses, before and after alternating
events = ROOT / "lambda" / "events"
single = json.loads((events / "rest_v1_predict.json").read_text())
batch = dict(single, body=json.dumps({"instances": [json.loads(single["body"])] * 32}))
(tmp / "single.json").write_text(json.dumps(single))
(tmp / "batch.json").write_text(json.dumps(batch))
warm = {k: [] for k in FN}
rounds = args.rounds
for i in range(rounds):
    for k in ("before", "after") if i % 2 == 0 else ("after", "before"):
        path = os.pathsep.join([str(tmp / k), str(tmp / "opt" / "python")])
        r = subprocess.run(
            [
                PY,
                "-S",
                "-E",
                str(ROOT / "benchmarks" / "warm_child.py"),
                "ours",
                "3000",
                str(tmp / "single.json"),
                str(tmp / "batch.json"),
                path,
            ],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        d = json.loads(r.stderr.strip().splitlines()[-1])
        h = sorted(d["paired_handler_ns"])
        g = sorted(d["graph_ns"])
        warm[k].append(
            {"p50_us": sorted(d["single_ns"])[len(d["single_ns"]) // 2] / 1e3, "ratio_to_graph": h[len(h) // 2] / g[len(g) // 2]}
        )
print(
    json.dumps(
        {
            k: {
                "p50_us": [round(x["p50_us"], 1) for x in v],
                "ratio": [round(x["ratio_to_graph"], 3) for x in v],
                "ratio_median": statistics.median(x["ratio_to_graph"] for x in v),
                "p50_median": statistics.median(x["p50_us"] for x in v),
            }
            for k, v in warm.items()
        },
        indent=1,
    )
)
