"""Runs A, A0, B and C: does LSTM capacity buy accuracy, or only latency and size? And what does the risk model buy?

    python -m models.experiments            # `make experiments`: four full trainings, then the table
    python -m models.experiments --table    # only the comparison table, from the tracking store

Every run trains on the same data, seed and split and logs to MLflow (models/tracking.py); the table is
computed from the store, beside the naive forecast (MASE = 1). Outputs go to mlruns/experiments/<run>/,
never over the served model: promote one with `python -m models.promote <run>`. Full runs also write
models/runs.json (committed), the summary the Model page shows when there is no tracking store.
"""

from __future__ import annotations

import argparse
import sys
import time

from models import tracking

RUNS = {  # name -> training arguments; the questions: what does LSTM capacity buy, and what does the risk model buy?
    "A": {"hidden": 64, "layers": 2, "interval": "risk", "note": "the served configuration: 2 x 64, risk-model interval"},
    "A0": {"hidden": 64, "layers": 2, "interval": "vol20", "note": "run A with the old interval: q x volatility20"},
    "B": {"hidden": 16, "layers": 1, "interval": "risk", "note": "a small LSTM: 1 x 16"},
    "C": {"hidden": 128, "layers": 2, "interval": "risk", "note": "a large LSTM: 2 x 128"},
}


def table(names=None) -> str:
    """Markdown comparison of the newest run of each name, from the tracking store."""
    df = tracking.runs_frame()
    if df is None or df.empty:
        return "no runs in the tracking store yet: run `make experiments`"
    df = df.drop_duplicates("run")  # newest first
    if names:
        df = df[df["run"].isin(names)]
    lines = [
        "| run | LSTM | interval | MASE | MAE (% of price) | direction | 80% coverage | stormy-third coverage | Winkler "
        "| Winkler vs rolling vol. | ONNX size | p50 latency |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def pct(v) -> str:
        return "— (no call)" if v != v or v is None else f"{v * 100:.1f}%"

    for _, r in df.sort_values("run").iterrows():
        lines.append(
            f"| {r['run']} | {r.get('layers', '?')} x {r.get('hidden', '?')} | {r.get('interval', '?')} | {r['test_mase']:.4f} | "
            f"{r['test_mae_pct']:.4f} | {pct(r.get('test_directional_accuracy', float('nan')))} | "
            f"{pct(r['test_interval_coverage'])} | "
            f"{pct(r.get('test_coverage_stormy', float('nan')))} | {r.get('test_winkler', float('nan')):.5f} | "
            f"{r.get('test_winkler_vs_rolling', float('nan')):.3f}x | {r['model_bytes'] / 1e3:.0f} kB | "
            f"{r['latency_p50_us']:.0f} µs |"
        )
    lines.append("| naive | — | — | 1.0000 | (same as the naive's) | — | — | — | — | — | 0 | 0 |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", action="store_true", help="print the comparison table only")
    p.add_argument("--runs", nargs="*", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--epochs", type=int, default=None, help="override the epochs (smoke runs)")
    p.add_argument("--limit", type=int, default=None, help="newest N samples per ticker (smoke runs)")
    args = p.parse_args(argv)
    if not args.table:
        from models import train

        t0 = time.time()
        for i, name in enumerate(args.runs, 1):
            cfg = RUNS[name]
            print(f"\n=== run {name} ({i}/{len(args.runs)}): {cfg['note']} ===", flush=True)
            argv_run = [
                "--hidden",
                str(cfg["hidden"]),
                "--layers",
                str(cfg["layers"]),
                "--run-name",
                name,
                "--interval",
                cfg["interval"],
                "--out-dir",
                str(tracking.store_dir() / "experiments" / name),
            ]
            if args.epochs:
                argv_run += ["--epochs", str(args.epochs)]
            if args.limit:
                argv_run += ["--limit", str(args.limit)]
            train.main(argv_run)
        print(f"\n{len(args.runs)} runs in {time.time() - t0:.0f}s", flush=True)
        if not args.epochs and not args.limit:  # only full runs stand for the served model on a fresh clone
            doc = tracking.export_summary()
            print(f"wrote models/runs.json: runs {', '.join(r['run'] for r in doc['runs'])}", flush=True)
    print(table(args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
