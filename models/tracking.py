"""Experiment tracking with MLflow: where the store is, how a training run is logged, and how runs are read.

The default store is a SQLite file, mlruns/mlflow.db (git ignores mlruns/); MLFLOW_TRACKING_URI is honoured.
mlflow is imported lazily, so the dashboard works without it.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.artifacts import RUNTIME_DIR, TRAINING

ROOT = Path(__file__).resolve().parents[1]
STORE_DIR = ROOT / "mlruns"
EXPERIMENT = "financial-forecasting"
SUMMARY_METRICS = (
    "test_mase",
    "test_mae_pct",
    "test_directional_accuracy",
    "test_interval_coverage",
    "test_winkler",
    "test_winkler_vs_rolling",
    "test_coverage_stormy",
    "model_bytes",
    "latency_p50_us",
)


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{STORE_DIR / 'mlflow.db'}"


def _sqlite_path() -> Path | None:
    uri = tracking_uri()
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def store_dir() -> Path:
    """The folder of a SQLite store (where experiment outputs go too), else mlruns/."""
    db = _sqlite_path()
    return db.parent if db else STORE_DIR


def store_exists() -> bool:
    db = _sqlite_path()
    return db is None or db.exists()


def _mlflow():
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri())
    return mlflow


def start(run_name: str | None, params: dict, experiment: str = EXPERIMENT):
    """Begin a run and log its parameters; returns the active run."""
    mlflow = _mlflow()
    db = _sqlite_path()
    if db:
        db.parent.mkdir(parents=True, exist_ok=True)
    if mlflow.get_experiment_by_name(experiment) is None:
        # artifacts beside a SQLite store (MLflow's default would be ./mlruns under whatever the cwd is)
        location = (db.parent / "artifacts").as_uri() if db else None
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)
    run = mlflow.start_run(run_name=run_name)
    mlflow.log_params({k: (",".join(map(str, v)) if isinstance(v, list | tuple) else v) for k, v in params.items()})
    return run


def log_epoch(entry: dict) -> None:
    _mlflow().log_metrics({"train_loss": entry["train_loss"], "val_loss": entry["val_loss"]}, step=entry["epoch"])


def flat_metrics(report: dict, extra: dict) -> dict:
    """metrics.json, flattened: test_<metric> for the served ensemble, test_<model>_<metric> for the rest, per ticker MASE."""
    out = dict(extra)
    for name, m in report["test"]["overall"].items():
        for k, v in m.items():
            if isinstance(v, int | float) and v == v:
                out[f"test_{k}" if name == "ensemble" else f"test_{name}_{k}"] = float(v)
    for name, m in report["test"].get("risk", {}).items():
        prefix = "test_" if name == "served" else f"test_{name}_"
        out[f"{prefix}winkler"] = float(m["winkler"])
        out[f"{prefix}crps"] = float(m["crps"])
        out[f"{prefix}coverage"] = float(m["coverage"])
        out[f"{prefix}coverage_stormy"] = float(m["coverage_by_vol_tercile"][2])
    if "risk" in report["test"]:
        out["test_winkler_vs_rolling"] = out["test_winkler"] / out["test_rolling20_winkler"]
        out["test_winkler_vs_garch"] = out["test_winkler"] / out["test_garch_winkler"]
    for ticker, r in report["test"]["per_ticker"].items():
        out[f"mase_{ticker.replace('^', '')}"] = float(r["ensemble"]["mase"])
    for ticker, r in report.get("held_out", {}).get("per_ticker", {}).items():
        out[f"held_out_mase_{ticker.replace('^', '')}"] = float(r["ensemble"]["mase"])
    return out


def finish(report: dict, extra: dict, out_dir: Path) -> str:
    """Log the final metrics and the artifacts (checkpoint, bundle, runtime export, metrics.json); end the run."""
    mlflow = _mlflow()
    mlflow.log_metrics(flat_metrics(report, extra))
    for name in TRAINING:
        if (out_dir / name).exists():
            mlflow.log_artifact(str(out_dir / name))
    mlflow.log_artifacts(str(out_dir / RUNTIME_DIR), artifact_path=RUNTIME_DIR)
    run_id = mlflow.active_run().info.run_id
    mlflow.end_run()
    return run_id


def abort() -> None:
    mlflow = _mlflow()
    if mlflow.active_run():
        mlflow.end_run(status="FAILED")


def runs_frame(experiment: str = EXPERIMENT):
    """Every finished run with its summary metrics, newest first; None when there is no store or no mlflow."""
    if not store_exists():
        return None
    try:
        mlflow = _mlflow()
    except ImportError:
        return None
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        return None
    df = mlflow.search_runs([exp.experiment_id], filter_string="attributes.status = 'FINISHED'", order_by=["start_time DESC"])
    if df.empty:
        return df
    cols = {
        "run_id": "run_id",
        "tags.mlflow.runName": "run",
        "start_time": "started",
        "params.hidden": "hidden",
        "params.layers": "layers",
        "params.epochs": "epochs",
        "params.interval": "interval",
    }
    cols.update({f"metrics.{m}": m for m in SUMMARY_METRICS})
    keep = [c for c in cols if c in df.columns]
    return df[keep].rename(columns=cols)


RUNS_SUMMARY = ROOT / "models" / "runs.json"  # committed: a fresh clone has no mlruns/, but sees what was run
RUN_PARAMS = ("hidden", "layers", "epochs", "interval")


def summary_records(df) -> list[dict]:
    """The newest finished run of each name, as plain JSON records (parameters and summary metrics only)."""
    if df is None or df.empty:
        return []
    out = []
    for _, r in df.drop_duplicates("run").sort_values("run").iterrows():
        rec = {"run": r["run"], "run_id": r["run_id"], "started": str(r["started"])[:19]}
        rec.update({k: r[k] for k in RUN_PARAMS if k in r and r[k] == r[k]})
        rec.update({m: float(r[m]) for m in SUMMARY_METRICS if m in r and r[m] == r[m]})
        out.append(rec)
    return out


def export_summary(path: Path = RUNS_SUMMARY, df=None) -> dict:
    """Write the runs' summary beside the model (models/runs.json), so the Model page can show them without the store."""
    import json
    from datetime import UTC, datetime

    records = summary_records(runs_frame() if df is None else df)
    doc = {
        "exported": datetime.now(UTC).strftime("%Y-%m-%d"),
        "store": tracking_uri(),
        "note": "the newest finished run of each name in the tracking store, written by `make experiments` "
        "(python -m models.tracking export); latency was measured on the machine that ran them",
        "runs": records,
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def main(argv: list[str] | None = None) -> int:
    """`python -m models.tracking runs --json`: the runs table as JSON records, for the dashboard's Model page
    (which reaches training code through this command, never by importing it). `export` writes models/runs.json."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m models.tracking", description=main.__doc__)
    p.add_argument("command", choices=["runs", "export"])
    p.add_argument("--json", action="store_true", help="JSON records (the default prints a table)")
    args = p.parse_args(argv)
    if args.command == "export":
        doc = export_summary()
        print(f"wrote {RUNS_SUMMARY.relative_to(ROOT)}: runs {', '.join(r['run'] for r in doc['runs']) or 'none'}")
        return 0 if doc["runs"] else 1
    df = runs_frame()
    if df is None:
        print("[]" if args.json else "no tracking store yet: run `make experiments` or `make train`")
        return 0
    if args.json:
        out = df.copy()
        if "started" in out:
            out["started"] = out["started"].astype(str)
        print(json.dumps(out.to_dict(orient="records"), default=str))
    else:
        print(df.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
