"""Which onnxruntime (and numpy) the layer should pin, chosen by measuring cold starts on the runtime's CPython.

    python benchmarks/ort_versions.py [--rounds 9]     # writes benchmarks/ort_versions.json

For each candidate a layer is built exactly as package.py builds the real one (same strip, same .pyc), the
function zip is shared, and fresh `python -S -E` processes answer one direct-invoke event. Candidates alternate
within each round, so a busy machine slows them alike. Also checks that every candidate answers bit-identically
to the first.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambda"))

import package  # noqa: E402

CANDIDATES = [  # (label, python, pins)
    ("3.11 build (today's)", "3.11", {"numpy": "1.26.4", "onnxruntime": "1.16.3", "orjson": "3.10.18"}),
    ("ort 1.20.1 numpy 2.4.6", "3.13", {"numpy": "2.4.6", "onnxruntime": "1.20.1", "orjson": "3.13.0"}),
    ("ort 1.20.1 numpy 2.5.5", "3.13", {"numpy": "2.5.5", "onnxruntime": "1.20.1", "orjson": "3.13.0"}),
    ("ort 1.23.2 numpy 2.4.6", "3.13", {"numpy": "2.4.6", "onnxruntime": "1.23.2", "orjson": "3.13.0"}),
    ("ort 1.32.0 numpy 2.4.6", "3.13", {"numpy": "2.4.6", "onnxruntime": "1.32.0", "orjson": "3.13.0"}),
]
CHILD = Path(__file__).with_name("cold_child.py")


def first_answer(python: Path, task: Path, layer: Path, event: Path) -> tuple[float, float, dict]:
    """-> (seconds to the first answer, seconds to process exit, the answer)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "LANG": "C.UTF-8"}
    t = time.perf_counter()
    p = subprocess.Popen(
        [str(python), "-S", "-E", str(CHILD), str(task), str(layer), str(event)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = p.stderr.readline()
    answered = time.perf_counter() - t
    rest = p.stderr.read()
    p.wait()
    total = time.perf_counter() - t
    if p.returncode != 0 or not line.startswith("{"):
        raise SystemExit(f"cold start failed with {python}: {line}{rest[-800:]}")
    return answered, total, json.loads(line)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "ort_versions.json")
    args = ap.parse_args(argv)
    event = ROOT / "lambda" / "events" / "direct_invoke.json"
    tmp = Path(tempfile.mkdtemp(prefix="ortv-"))
    builds = []
    for label, py, pins in CANDIDATES:
        target = dataclasses.replace(package.Target.from_template(), python=py)
        req = tmp / f"req-{len(builds)}.txt"
        req.write_text("".join(f"{k}=={v}\n" for k, v in pins.items()))
        print(f"building {label} for {target}", flush=True)
        layer_zip = package.build_layer(tmp / f"layer-{len(builds)}.zip", quiet=True, target=target, requirements=req)
        fn_zip = package.build_function(tmp / f"fn-{py}.zip", target)
        task, opt = tmp / f"task-{len(builds)}", tmp / f"opt-{len(builds)}"
        zipfile.ZipFile(fn_zip).extractall(task)
        zipfile.ZipFile(layer_zip).extractall(opt)
        builds.append(
            {
                "label": label,
                "python": py,
                "pins": pins,
                "task": task,
                "layer": opt / "python",
                "interpreter": package.interpreter(target),
                "layer_mb": layer_zip.stat().st_size / 2**20,
                "unzipped_mb": (package.unzipped_size(layer_zip) + package.unzipped_size(fn_zip)) / 2**20,
                "answer_s": [],
                "exit_s": [],
                "init_ms": [],
                "answers": [],
            }
        )
    for r in range(args.rounds):
        for b in builds:
            a, t, ans = first_answer(b["interpreter"], b["task"], b["layer"], event)
            b["answer_s"].append(a)
            b["exit_s"].append(t)
            b["init_ms"].append(ans["init_ms"])
            b["answers"].append(ans)
        print(
            f"round {r + 1}/{args.rounds}: " + "  ".join(f"{b['label']} {b['answer_s'][-1] * 1000:.0f} ms" for b in builds),
            flush=True,
        )
    ref = builds[1]["answers"][0]
    rows = []
    for b in builds:
        same = all(a["prediction"] == ref["prediction"] and a["interval"] == ref["interval"] for a in b["answers"])
        rows.append(
            {k: v for k, v in b.items() if k not in ("task", "layer", "interpreter", "answers")}
            | {
                "bit_identical_to": builds[1]["label"] if same else None,
                "max_rel_diff": max(abs(a["prediction"] - ref["prediction"]) / ref["prediction"] for a in b["answers"]),
                "median_answer_ms": statistics.median(b["answer_s"]) * 1000,
                "median_exit_ms": statistics.median(b["exit_s"]) * 1000,
                "median_init_ms": statistics.median(b["init_ms"]),
            }
        )
    for row in rows:
        print(
            f"{row['label']:24s} first answer {row['median_answer_ms']:6.1f} ms  exit {row['median_exit_ms']:6.1f} ms  "
            f"INIT {row['median_init_ms']:5.1f} ms  layer {row['layer_mb']:5.1f} MB  unzipped {row['unzipped_mb']:5.1f} MB  "
            f"identical: {row['bit_identical_to'] is not None} (max rel diff {row['max_rel_diff']:.2e})"
        )
    args.out.write_text(
        json.dumps(
            {
                "rounds": args.rounds,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "command": "python benchmarks/ort_versions.py",
                "candidates": rows,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
