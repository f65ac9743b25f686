"""The served ensemble in plain numpy, for choosing the runtime by measuring (benchmarks/runtime.py, `--only runtime`).

Not used by the function: onnxruntime won the measurement (BENCHMARKS.md). Kept so the choice can be re-checked.
"""

from __future__ import annotations

import numpy as np


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class NumpyEnsemble:
    def __init__(self, state: dict, cfg: dict, coef, intercept: float, weights):
        self.cfg = cfg
        self.layers = [
            (
                state[f"lstm.weight_ih_l{k}"].T.astype(np.float32),
                state[f"lstm.weight_hh_l{k}"].T.astype(np.float32),
                (state[f"lstm.bias_ih_l{k}"] + state[f"lstm.bias_hh_l{k}"]).astype(np.float32),
            )
            for k in range(cfg["layers"])
        ]
        self.head_w = state["head.weight"].T.astype(np.float32)
        self.head_b = state["head.bias"].astype(np.float32)
        self.coef = np.asarray(coef, dtype=np.float32).reshape(-1)
        self.intercept = np.float32(intercept)
        self.weights = np.asarray(weights, dtype=np.float32)

    def _scale_free(self, x):
        c = self.cfg
        close = np.maximum(x[:, :, c["close_index"]] * c["close_scale"] + c["close_mean"], 1e-6)
        out = x.copy()
        out[:, :, c["close_index"]] = np.log(close / close[:, -1:]) * c["rel_scale"]
        return out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x (B, T, F) standardized -> ensemble log return (B,)."""
        sf = self._scale_free(x)
        seq = sf
        H = self.cfg["hidden"]
        for w_ih, w_hh, b in self.layers:
            pre = seq @ w_ih + b  # (B, T, 4H)
            h = np.zeros((x.shape[0], H), dtype=np.float32)
            c = np.zeros_like(h)
            outs = []
            for t in range(x.shape[1]):
                g = pre[:, t] + h @ w_hh
                i, f, gg, o = _sigmoid(g[:, :H]), _sigmoid(g[:, H : 2 * H]), np.tanh(g[:, 2 * H : 3 * H]), _sigmoid(g[:, 3 * H :])
                c = f * c + i * gg
                h = o * np.tanh(c)
                outs.append(h)
            seq = np.stack(outs, axis=1)
        lstm = (h @ self.head_w + self.head_b)[:, 0] / self.cfg["target_scale"]
        linear = (sf.reshape(len(x), -1) @ self.coef + self.intercept) / self.cfg["target_scale"]
        return self.weights[0] * lstm + self.weights[1] * linear
