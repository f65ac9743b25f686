"""Export the trained ensemble to what the function loads: runtime/model.onnx + runtime/manifest.json.

    python -m models.export            # from models/*.pth + *.pkl to models/runtime/

The manifest is the feature contract (window, feature names, scaler), the ensemble (members and
weights), the interval calibration, the test metrics and the sha256 of every runtime file. The
function serves it at GET /model and refuses to start on a file whose hash does not match.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import torch

from models.artifacts import BUNDLE, CHECKPOINT, MANIFEST, ONNX_FILE, RISK_CHECKPOINT
from models.data import TICKER_RE
from models.features import CLOSE, VOLATILITY
from models.net import Ensemble, Served, load_checkpoint, load_risk

MODELS_DIR = Path(__file__).resolve().parent
NAME = "LSTM Multi-Ticker Ensemble"
OPSET = 17  # onnxruntime 1.20.1 reads up to 21; 17 measured as fast (BENCHMARKS.md), so no re-export
OUTPUTS = ["ensemble", "members", "volatility"]  # log return, member log returns, predicted daily std of the log return
CONFIDENCE_DOC = (
    "P(next close moves in the predicted direction) = Phi(|r| / (sigma * vol)), r the ensemble's predicted log return, "
    "vol the risk model's predicted volatility for this request, sigma the std of validation residuals / vol"
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_ensemble(models_dir: Path = MODELS_DIR) -> tuple[Ensemble, dict, dict]:
    """The served point ensemble rebuilt in PyTorch from the training artifacts: the reference for parity tests."""
    lstm, ckpt = load_checkpoint(models_dir / CHECKPOINT)
    bundle = joblib.load(models_dir / BUNDLE)
    ens = Ensemble(lstm, bundle["linear"].coef_, float(bundle["linear"].intercept_), bundle["weights"]).eval()
    return ens, ckpt, bundle


def load_served(models_dir: Path = MODELS_DIR) -> tuple[Served, dict, dict, dict]:
    """Point ensemble and risk model together, as the function runs them: (model, checkpoint, bundle, risk checkpoint)."""
    ens, ckpt, bundle = load_ensemble(models_dir)
    risk, risk_ckpt = load_risk(models_dir / RISK_CHECKPOINT)
    return Served(ens, risk).eval(), ckpt, bundle, risk_ckpt


def write_manifest(runtime_dir: Path, manifest: dict) -> None:
    (runtime_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")


def export(models_dir: Path = MODELS_DIR, runtime_dir: Path | None = None) -> dict:
    runtime_dir = runtime_dir or models_dir / "runtime"
    runtime_dir.mkdir(parents=True, exist_ok=True)
    served, ckpt, bundle, risk_ckpt = load_served(models_dir)
    cfg = served.ensemble.lstm.cfg
    onnx_path = runtime_dir / ONNX_FILE
    example = torch.zeros(2, cfg.window, cfg.n_features)
    example[:, :, CLOSE] = 0.1  # any positive price
    with warnings.catch_warnings():  # tracer chatter about shape asserts; parity is checked just below
        warnings.simplefilter("ignore")
        torch.onnx.export(
            served,
            (example,),
            str(onnx_path),
            input_names=["x"],
            output_names=OUTPUTS,
            dynamic_axes={"x": {0: "batch"}, **{name: {0: "batch"} for name in OUTPUTS}},
            opset_version=OPSET,
            dynamo=False,
        )

    # parity on real-looking inputs: random standardized windows with a plausible close column
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, cfg.window, cfg.n_features)).astype(np.float32)
    x[:, :, CLOSE] = rng.uniform(-0.9, 2.0, size=(64, 1)) + rng.normal(0, 0.01, size=(64, cfg.window))
    with torch.no_grad():
        ref = [t.numpy() for t in served(torch.from_numpy(x))]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(OUTPUTS, {"x": x})
    parity = float(max(np.max(np.abs(g - r)) for g, r in zip(got, ref, strict=True)))
    if parity > 1e-5:
        raise RuntimeError(f"ONNX export differs from PyTorch by {parity:.2e} (> 1e-5)")

    digest = sha256(onnx_path)
    contract = json.dumps([bundle["scaler"], bundle["calibration"], bundle["weights"]], sort_keys=True, default=str).encode()
    version = f"{time.strftime('%Y.%m.%d')}-{hashlib.sha256(digest.encode() + contract).hexdigest()[:10]}"
    old = runtime_dir / MANIFEST
    if old.exists():  # same model, same version: keep its date so re-exports are reproducible
        prev = json.loads(old.read_text())
        if prev.get("version", "").endswith(version.split("-", 1)[1]):
            version = prev["version"]
    manifest = {
        "name": NAME,
        "version": version,
        "target": "next trading day's Close; the ensemble predicts r = ln(C[t+1] / C[t]) and answers C[t] * exp(r)",
        "window": cfg.window,
        "n_features": cfg.n_features,
        "features": list(bundle["scaler"]["features"]),
        "layout": "oldest day first, flattened day-major: features[d * n_features + f]",
        "close_index": CLOSE,
        "volatility_index": VOLATILITY,
        "scaler": bundle["scaler"],
        "tickers": list(ckpt["tickers"]),
        "held_out": list(bundle["params"].get("held_out", [])),
        "ensemble": {"members": list(bundle["members"]), "weights": [float(w) for w in bundle["weights"]]},
        "calibration": bundle["calibration"],
        "confidence": CONFIDENCE_DOC,
        "volatility": "the risk model's forecast of the next log return's daily standard deviation "
        + ("(HAR-style log volatility + LSTM correction)" if risk_ckpt.get("interval") == "risk" else "(= volatility20)"),
        "ticker_pattern": TICKER_RE.pattern,
        "model_args": ckpt["model_args"],
        "risk_args": risk_ckpt["model_args"],
        "onnx": {"file": ONNX_FILE, "input": "x", "outputs": OUTPUTS, "opset": OPSET},
        "export_parity_max_abs": parity,
        "files": {ONNX_FILE: {"sha256": digest, "bytes": onnx_path.stat().st_size}},
        "test_metrics": {},
    }
    write_manifest(runtime_dir, manifest)
    return manifest


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    p.add_argument("--runtime-dir", type=Path, default=None)
    args = p.parse_args(argv)
    m = export(args.models_dir, args.runtime_dir)
    print(
        f"exported {m['name']} {m['version']}: parity {m['export_parity_max_abs']:.1e}; "
        "run `python -m models.evaluate` to fill in the test metrics"
    )


if __name__ == "__main__":
    main()


def measure_latency(runtime_dir: Path, n: int = 500) -> dict:
    """p50 and p99 (µs) of one single-window ONNX call on one thread, as the function runs it."""
    import onnxruntime as ort

    manifest = json.loads((runtime_dir / MANIFEST).read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(runtime_dir / manifest["onnx"]["file"]), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(1, manifest["window"], manifest["n_features"])).astype(np.float32)
    x[:, :, CLOSE] = 0.1
    for _ in range(50):
        sess.run(["ensemble"], {"x": x})
    times = []
    for _ in range(n):
        t = time.perf_counter_ns()
        sess.run(["ensemble"], {"x": x})
        times.append(time.perf_counter_ns() - t)
    times.sort()
    return {
        "latency_p50_us": times[n // 2] / 1e3,
        "latency_p99_us": times[int(n * 0.99)] / 1e3,
        "model_bytes": (runtime_dir / manifest["onnx"]["file"]).stat().st_size,
    }
