"""The guide's handler, as the baseline: import torch at start, load the .pth, run the LSTM in PyTorch.

Kept honest in its favour: it loads our own (scale-free, same-shape) checkpoint and skips the guide's
double scaling; what it costs is what torch costs.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from models.net import load_checkpoint  # noqa: E402

torch.set_num_threads(1)
MODEL, CKPT = load_checkpoint(ROOT / "models" / "lstm_multi_ticker.pth")
MEAN = np.asarray(CKPT["scaler"]["mean"])
SCALE = np.asarray(CKPT["scaler"]["scale"])


def lambda_handler(event, context=None):
    body = json.loads(event["body"]) if "body" in event else event
    rows = [body] if "features" in body else body["instances"]
    x = torch.tensor([r["features"] for r in rows], dtype=torch.float32).reshape(len(rows), 60, 10)
    with torch.no_grad():
        r, _ = MODEL(x)
    last = x[:, -1, 0].numpy() * SCALE[0] + MEAN[0]
    preds = [
        {"ticker": row["ticker"], "prediction": float(lc * math.exp(float(ri)))}
        for row, lc, ri in zip(rows, last, r, strict=True)
    ]
    out = preds[0] if "features" in body else {"predictions": preds}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(out)}
