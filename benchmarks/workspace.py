"""What every benchmark shares: the built zips extracted to a scratch folder, the sample events, the results so far."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_DIR = ROOT / "lambda"
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(LAMBDA_DIR))
sys.path.insert(0, str(ROOT))
PY = sys.executable
OLD_311_PINS = {"numpy": "1.26.4", "onnxruntime": "1.16.3", "orjson": "3.10.18"}  # the layer before the move to 3.13


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100 * (len(v) - 1))))]


def spread(values) -> str:
    fmt = "{:.0f}" if max(values) >= 100 else "{:.3g}"
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


class Bench:
    def _calibration_state(self) -> Path:
        manifest = json.loads((ROOT / "models" / "runtime" / "manifest.json").read_text())
        tickers = {
            t: {"factor": 1.1, "as_of": "2013-02-28", "n": 474} for t in [*manifest["tickers"], *manifest.get("held_out", [])]
        }
        doc = {"version": 1, "model_version": manifest["version"], "method": "aci", "tickers": tickers,
               "written_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
        path = self.tmp / "calibration.json"
        path.write_text(json.dumps(doc))
        return path

    def __init__(self, quick: bool):
        import dataclasses

        import package

        self.quick = quick
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-"))
        self.target = package.Target.from_template(arch="x86_64")
        self.fn_py = package.interpreter(self.target)  # CPython 3.13, as Lambda's python3.13
        self.fn_zip, self.layer_zip = package.ensure_built(quiet=True, target=self.target)
        self.task, self.opt = self.tmp / "task", self.tmp / "opt"
        zipfile.ZipFile(self.fn_zip).extractall(self.task)
        zipfile.ZipFile(self.layer_zip).extractall(self.opt)
        self.ours_path = os.pathsep.join([str(self.task), str(self.opt / "python")])
        # the old python3.11 build, built once here so both are measured in the same run
        old = dataclasses.replace(self.target, python="3.11")
        req = self.tmp / "old-requirements.txt"
        req.write_text("".join(f"{k}=={v}\n" for k, v in OLD_311_PINS.items()))
        self.old_py = package.interpreter(old)
        self.old_layer = package.build_layer(self.tmp / "old-layer.zip", quiet=True, target=old, requirements=req)
        self.old_fn = package.build_function(self.tmp / "old-fn.zip", old)
        self.old_task, self.old_opt = self.tmp / "old-task", self.tmp / "old-opt"
        zipfile.ZipFile(self.old_fn).extractall(self.old_task)
        zipfile.ZipFile(self.old_layer).extractall(self.old_opt)
        events = LAMBDA_DIR / "events"
        single = json.loads((events / "rest_v1_predict.json").read_text())
        body = json.loads(single["body"])
        batch = dict(single, body=json.dumps({"instances": [body] * 32}))
        self.single_path, self.batch_path = self.tmp / "single.json", self.tmp / "batch.json"
        self.single_path.write_text(json.dumps(single))
        self.batch_path.write_text(json.dumps(batch))
        self.direct_path = events / "direct_invoke.json"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "AUTH_DISABLED": "1",
            "OMP_NUM_THREADS": "1",
            "LANG": "C.UTF-8",
            # the function as the ledger configures it: a calibration state listing every bundled ticker, so the
            # measured path includes the state's stat and first read (lambda/forecast/calibration.py)
            "CALIBRATION_STATE": str(self._calibration_state()),
        }
        self.results: dict = {
            "machine": machine(),
            "command": "make bench" + (" (--quick)" if quick else ""),
            "interpreters": {
                "ours": f"CPython {self.target.python} ({self.fn_py})",
                "old": f"CPython 3.11 ({self.old_py}) with {OLD_311_PINS}",
            },
        }

    def log(self, msg):
        print(msg, flush=True)
