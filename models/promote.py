"""Serve a tracked run: copy its exported model into models/runtime (and its training artifacts beside it).

    python -m models.promote A                 # the newest run named A
    python -m models.promote 3f2c...e9         # or a run id

The manifest records the run id; every file's sha256 is checked against it. The next `make package`,
`make run` or deploy serves the promoted model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

from models import tracking
from models.artifacts import MANIFEST, RUNTIME_DIR, TRAINING

MODELS_DIR = Path(__file__).resolve().parent


def find_run(ref: str):
    mlflow = tracking._mlflow()
    client = mlflow.tracking.MlflowClient()
    try:
        return client.get_run(ref)
    except Exception:  # not an id: look it up by name
        pass
    exp = mlflow.get_experiment_by_name(tracking.EXPERIMENT)
    if exp is not None:
        runs = client.search_runs(
            [exp.experiment_id],
            filter_string=f"attributes.run_name = '{ref}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if runs:
            return runs[0]
    raise SystemExit(
        f"promote: no finished run has the id or name {ref!r} in {tracking.tracking_uri()}; "
        "list them with `python -m models.experiments --table` or `make mlflow`"
    )


def promote(ref: str, target: Path = MODELS_DIR) -> dict:
    mlflow = tracking._mlflow()
    run = find_run(ref)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=tmp))
        src_rt = local / RUNTIME_DIR
        manifest = json.loads((src_rt / MANIFEST).read_text())
        for name, meta in manifest["files"].items():
            if hashlib.sha256((src_rt / name).read_bytes()).hexdigest() != meta["sha256"]:
                raise SystemExit(f"promote: run {run.info.run_id}'s {name} does not match its manifest; not promoted")
        manifest["run_id"] = run.info.run_id
        manifest["run_name"] = run.info.run_name
        rt = target / RUNTIME_DIR
        if rt.exists():
            shutil.rmtree(rt)
        shutil.copytree(src_rt, rt)
        (rt / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        for name in TRAINING:
            if (local / name).exists():
                shutil.copy2(local / name, target / name)
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run id or run name (the newest run of that name)")
    p.add_argument("--target", type=Path, default=MODELS_DIR, help="models directory to write (default: this repository's)")
    args = p.parse_args(argv)
    m = promote(args.run, args.target)
    print(f"promoted run {m['run_name']} ({m['run_id']}): {m['name']} {m['version']} -> {args.target / 'runtime'}")
    if args.target.resolve() == MODELS_DIR:
        print(
            "the sample events carry standardized features: `make promote RUN=...` regenerates them "
            "(lambda/events/generate.py); then `make package` (or make run / make deploy) serves the new model"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
