"""onnxruntime against the same ensemble in plain numpy (the measurement behind the runtime choice):
`python runtime_child.py REPO_ROOT` prints one JSON line of p50 microseconds."""

import json
import sys
import time

sys.path.insert(0, sys.argv[1])
import joblib  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from benchmarks.numpy_lstm import NumpyEnsemble  # noqa: E402

root = sys.argv[1]
ckpt = torch.load(root + "/models/lstm_multi_ticker.pth", map_location="cpu", weights_only=False)
bundle = joblib.load(root + "/models/scaler_ensemble_multi.pkl")
state = {k: v.numpy() for k, v in ckpt["state_dict"].items()}
npm = NumpyEnsemble(state, ckpt["model_args"], bundle["linear"].coef_, float(bundle["linear"].intercept_), bundle["weights"])
o = ort.SessionOptions()
o.intra_op_num_threads = o.inter_op_num_threads = 1
sess = ort.InferenceSession(root + "/models/runtime/model.onnx", o, providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
res = {}
for b in (1, 32):
    x = rng.normal(size=(b, 60, 10)).astype(np.float32)
    x[:, :, 0] = 0.1 + rng.normal(0, 0.01, size=(b, 60)).astype(np.float32)
    ref = sess.run(["ensemble"], {"x": x})[0]
    assert np.allclose(npm(x), ref, atol=1e-4), (npm(x), ref)
    for name, f in (("onnxruntime", lambda x=x: sess.run(["ensemble"], {"x": x})), ("numpy", lambda x=x: npm(x))):
        for _ in range(30):
            f()
        ts = []
        for _ in range(400 if b == 1 else 100):
            t = time.perf_counter_ns()
            f()
            ts.append(time.perf_counter_ns() - t)
        ts.sort()
        res[f"{name}_b{b}_p50_us"] = ts[len(ts) // 2] / 1e3
print(json.dumps(res))
