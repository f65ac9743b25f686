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
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import cold, load, powertools, runtime, size, warm  # noqa: E402
from benchmarks.render import render  # noqa: E402
from benchmarks.soak_common import kept_sections  # noqa: E402
from benchmarks.workspace import ROOT, Bench  # noqa: E402


def dashboard(bench: Bench) -> None:
    """First chart, first forecast and a ticker change in chromium: benchmarks/first_paint.py."""
    from benchmarks import first_paint

    bench.results["dashboard"] = first_paint.measure(bench.quick, bench.log)


# in the order they run; `--only` picks among them
STAGES = {
    "cold": cold.measure,
    "warm": warm.measure,
    "runtime": runtime.measure,
    "powertools": powertools.measure,
    "memory": warm.memory,
    "size": size.measure,
    "load": load.measure,
    "dashboard": dashboard,
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", nargs="*", default=None, choices=list(STAGES))
    p.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json")
    args = p.parse_args(argv)
    b = Bench(args.quick)
    try:
        for name, stage in STAGES.items():
            if args.only is None or name in args.only:
                stage(b)
    finally:
        shutil.rmtree(b.tmp, ignore_errors=True)
    results = b.results
    if args.only and args.json.exists():  # a subset updates its own sections and keeps the others' last figures
        results = {**json.loads(args.json.read_text()), **b.results}
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    kept = kept_sections(args.out.read_text()) if args.out.exists() else ""  # the soaks' sections: they run apart
    args.out.write_text(render(json.loads(json.dumps(results))).rstrip("\n") + ("\n\n" + kept if kept else "\n"))
    print(f"wrote {args.out} and {args.json}")


if __name__ == "__main__":
    main()
