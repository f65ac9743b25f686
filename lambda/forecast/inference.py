"""The served ensemble: manifest + ONNX session, loaded once. Knows nothing of events or HTTP.

Inputs are standardized windows exactly as clients send them. The last close and the volatility are
recovered from the window itself through the manifest's scaler, so answers are in price units.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path

import numpy as np

from .errors import bad_request

_SQRT2 = math.sqrt(2.0)


class ModelUnavailable(Exception):
    """The runtime model is missing or fails its sha256 check: the function answers 503."""


def default_dir() -> Path:
    env = os.environ.get("MODEL_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent
    packaged = here / "runtime"  # inside the zip: runtime/ beside lambda_handler.py
    return packaged if packaged.exists() else here.parent / "models" / "runtime"  # the repository layout


class Model:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        path = self.dir / "manifest.json"
        try:
            self.manifest = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelUnavailable(f"model manifest {path} is missing; package the function with models/runtime") from None
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(f"model manifest {path} is unreadable: {exc}") from None
        m = self.manifest
        for name, meta in m.get("files", {}).items():
            f = self.dir / name
            if not f.exists():
                raise ModelUnavailable(f"model file {name} is missing from {self.dir}")
            if hashlib.sha256(f.read_bytes()).hexdigest() != meta.get("sha256"):
                raise ModelUnavailable(f"model file {name} fails its sha256 check against manifest.json")
        import onnxruntime as ort  # after the checks: a broken package fails fast and cheap

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # Lambda below 1,769 MB has less than one vCPU: threads only contend
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(self.dir / m["onnx"]["file"]), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelUnavailable(f"onnxruntime cannot load {m['onnx']['file']}: {exc}") from None
        self.name, self.version = m["name"], m["version"]
        self.window, self.n_features = int(m["window"]), int(m["n_features"])
        self.shape = (self.window, self.n_features)
        self.size = self.window * self.n_features
        self.mean = np.asarray(m["scaler"]["mean"], dtype=np.float64)
        self.scale = np.asarray(m["scaler"]["scale"], dtype=np.float64)
        # scale is a standard deviation: predict() decides every close from the lowest, which needs it positive and
        # finite; a non-finite mean would blame every client's close (400 invalid_price) for the manifest's fault
        if not ((self.scale > 0) & np.isfinite(self.scale) & np.isfinite(self.mean)).all():
            raise ModelUnavailable(
                "manifest.json's scaler has a scale that is not a positive finite number or a mean that is not finite; "
                "re-export the model (python -m models.export)"
            )
        self.close_index, self.volatility_index = int(m["close_index"]), int(m["volatility_index"])
        self.close_scaler = float(self.scale[self.close_index]), float(self.mean[self.close_index])
        cal = m["calibration"]
        self.interval_quantile = float(cal["q"])  # split-conformal quantile of |residual| / volatility
        self.sigma, self.level, self.vol_floor = float(cal["sigma"]), float(cal["level"]), float(cal["vol_floor"])
        self.input_name = m["onnx"]["input"]
        self.outputs = ["ensemble", "volatility"]  # the point log return and the risk model's daily volatility
        missing = [o for o in self.outputs if o not in m["onnx"]["outputs"]]
        if missing:
            raise ModelUnavailable(f"model.onnx lacks the outputs {missing}; re-export the model (python -m models.export)")
        try:  # the ticker syntax is defined once, in models.data, and travels in the manifest
            self.ticker_re = re.compile(m["ticker_pattern"])
        except (KeyError, re.error) as exc:
            raise ModelUnavailable(f"manifest.json has no usable ticker_pattern ({exc}); re-export the model") from None
        self.card = m  # the model card GET /model serves

    def _shape_one(self, last: float, r: float, risk: float, factor: float = 1.0) -> dict | None:
        """One window's answer from the graph's outputs in plain floats: the same IEEE operations as the vectorized
        path below (bit for bit, tested), without its dozen small-array numpy calls, which cost a warm request more
        than the rest of its shaping (BENCHMARKS.md). None when the numbers are not tame: the general path decides."""
        vol = risk if risk > self.vol_floor else self.vol_floor
        half = self.interval_quantile * factor * vol  # factor: the ticker's calibration (1.0: the model's own)
        if not (abs(r) + half < 700.0 and last > 0.0 and risk == risk):  # exp() far from overflow; NaN fails each
            return None
        e = np.exp(np.array((r, r - half, r + half)))
        high = last * float(e[2])
        if not math.isfinite(high):
            return None
        z = abs(r) / (self.sigma * vol)
        return {
            "prediction": last * float(e[0]),
            "confidence": 0.5 * (1.0 + math.erf(z / _SQRT2)),
            "interval": {"low": last * float(e[1]), "high": high, "level": self.level},
            "last_close": last,
            "volatility": vol,
        }

    def predict(self, X: np.ndarray, factors: list[float] | None = None) -> list[dict]:
        """X (B, window*n_features) standardized -> one dict per row: prediction, interval, confidence. `factors`
        (one per row, default 1.0) widen or narrow each row's interval: the ticker's calibration state. A row whose
        numbers cannot give a finite answer is a 400 naming it, never a NaN or an overflow."""
        ci, n = self.close_index, self.n_features
        scale, mean = self.close_scaler
        # x * scale + mean rounds monotonically in x (scale > 0, checked at load): every close is positive exactly
        # when the lowest is, so one reduction decides, not a (B, T) array of prices (BENCHMARKS.md's warm path)
        if not float(X[:, ci::n].min()) * scale + mean > 0:
            closes = X[:, ci::n] * scale + mean  # (B, T) prices
            b, d = map(int, np.argwhere(~(closes > 0))[0])
            raise bad_request(
                "invalid_price",
                f"features[{d * n + ci}] (day {d} close) decodes to a "
                f"price <= 0 in row {b}: standardize with GET /model's scaler",
            )
        x = X.reshape(len(X), self.window, n).astype(np.float32)
        point, risk = self.session.run(self.outputs, {self.input_name: x})
        if len(X) == 1:  # the same IEEE operations as the array expression below, in plain floats
            f = 1.0 if factors is None else float(factors[0])
            one = self._shape_one(float(X[0, -n + ci]) * scale + mean, float(point.flat[0]), float(risk.flat[0]), f)
            if one is not None:
                return [one]
        last = X[:, -n + ci] * scale + mean  # (B,) the last day's close
        r = point.astype(np.float64).reshape(-1)  # (B,) log returns
        vol = np.maximum(risk.astype(np.float64).reshape(-1), self.vol_floor)  # (B,) predicted daily std of the log return
        q = self.interval_quantile if factors is None else self.interval_quantile * np.asarray(factors, dtype=np.float64)
        half = q * vol
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            prediction, low, high = last * np.exp(r), last * np.exp(r - half), last * np.exp(r + half)
            z = np.abs(r) / (self.sigma * vol)
        finite = np.isfinite(prediction) & np.isfinite(low) & np.isfinite(high) & np.isfinite(z) & (low > 0)
        if not finite.all():
            b = int(np.argmin(finite))
            raise bad_request(
                "unforecastable",
                f"row {b}: these features give no finite forecast (predicted volatility {vol[b]:.3g}); "
                "standardize with GET /model's scaler",
            )
        return [
            {
                "prediction": float(prediction[i]),
                "confidence": 0.5 * (1.0 + math.erf(float(z[i]) / _SQRT2)),
                "interval": {"low": float(low[i]), "high": float(high[i]), "level": self.level},
                "last_close": float(last[i]),
                "volatility": float(vol[i]),
            }
            for i in range(len(X))
        ]
