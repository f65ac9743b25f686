"""Cold start: fresh processes answer one event from the extracted zips (3.13 build, old 3.11 build, torch baseline)."""

from __future__ import annotations

import statistics
import subprocess
import time

from benchmarks.workspace import HERE, PY, ROOT, Bench


def _first_answer(bench: Bench, argv: list[str]) -> tuple[float, float]:
    """(seconds to the first answer, seconds to exit) of one fresh process that writes its answer to stderr."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, env=bench.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=bench.tmp)
    line = p.stderr.readline()
    answered = time.perf_counter() - t
    _, rest = p.communicate()
    total = time.perf_counter() - t
    if p.returncode != 0 or not line.startswith("{"):
        raise SystemExit(f"cold start failed ({argv[0]}): {line}{rest[-800:]}")
    return answered, total


def measure(bench: Bench) -> None:
    n = 5 if bench.quick else 15
    runs = {
        "ours": (
            [
                str(bench.fn_py),
                "-S",
                "-E",
                str(HERE / "cold_child.py"),
                str(bench.task),
                str(bench.opt / "python"),
                str(bench.direct_path),
            ]
        ),
        "old311": (
            [
                str(bench.old_py),
                "-S",
                "-E",
                str(HERE / "cold_child.py"),
                str(bench.old_task),
                str(bench.old_opt / "python"),
                str(bench.direct_path),
            ]
        ),
        "baseline": [PY, str(HERE / "cold_baseline_child.py"), str(ROOT), str(bench.direct_path)],
    }
    answer = {k: [] for k in runs}
    total = {k: [] for k in runs}
    bench.log(f"cold start: {n} fresh processes each, alternating the 3.13 build, the old 3.11 build and torch")
    for i in range(n):
        for name, argv in runs.items():
            a, t = _first_answer(bench, argv)
            answer[name].append(a)
            total[name].append(t)
        bench.log(
            f"  {i + 1}/{n}  " + "   ".join(f"{k} {answer[k][-1] * 1000:5.0f} ms (exit {total[k][-1] * 1000:5.0f})" for k in runs)
        )
    med = {k: statistics.median(v) for k, v in answer.items()}
    bench.results["cold"] = {
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
