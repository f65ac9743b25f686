"""Warm latency through the entry point, run as a child process:

    python -S -E warm_child.py ours N SINGLE.json BATCH.json TASK_DIR:LAYER_DIR
    python warm_child.py baseline N SINGLE.json BATCH.json REPO_ROOT

The function's log line goes to stdout, a pipe the parent drains, as on Lambda; the figures go to stderr. For ours,
the ONNX graph alone is timed interleaved with the handler on the same window in the same process (the ratio
`make bench` reports), and the warm path is profiled stage by stage.
"""

import json
import os
import resource
import sys
import time

mode, n, single_path, batch_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if mode == "ours":
    sys.path[:0] = sys.argv[5].split(os.pathsep)
    import lambda_handler as h
else:
    sys.path.insert(0, sys.argv[5])
    from benchmarks import baseline_handler as h
with open(single_path) as f:
    single = json.load(f)
with open(batch_path) as f:
    batch = json.load(f)
for _ in range(200):
    h.lambda_handler(single, None)


def timed(ev, k):
    out = []
    for _ in range(k):
        t = time.perf_counter_ns()
        h.lambda_handler(ev, None)
        out.append(time.perf_counter_ns() - t)
    return out


def median_us(values) -> float:
    return sorted(values)[len(values) // 2] / 1e3


def graph_and_stages(k: int) -> tuple[list, list, dict]:
    """(handler ns, graph-alone ns, stage medians in µs): the handler and its own ONNX graph alternate, same window."""
    import numpy as np
    from forecast.events import parse_event
    from forecast.jsonio import dumps, loads
    from forecast.telemetry import emit
    from forecast.validation import parse_predict

    m = h.MODEL
    req = parse_event(single)
    payload = loads(req.body)
    _, X, _, _ = parse_predict(payload, m.shape, m.ticker_re)
    x = X.reshape(1, m.window, m.n_features).astype(np.float32)
    answer = json.loads(h.lambda_handler(single, None)["body"])
    sink = open(os.devnull, "w")  # noqa: SIM115
    stages = {
        "event -> request": lambda: parse_event(single),
        "JSON body -> objects (orjson)": lambda: loads(req.body),
        "validation -> float64 window": lambda: parse_predict(payload, m.shape, m.ticker_re),
        "ONNX graph alone": lambda: m.session.run(m.outputs, {m.input_name: x}),
        "graph + answer shaping (Model.predict)": lambda: m.predict(X),
        "answer -> JSON": lambda: dumps(answer),
        "EMF log line": lambda: emit(
            request_id="r",
            route="/predict",
            method="POST",
            status=200,
            latency_ms=0.2,
            model_version=m.version,
            ticker="AAPL",
            predictions=1,
            cold_start=False,
            out=sink,
        ),  # fmt: skip
    }
    stages["freeing the parsed body"] = None  # timed below: the request drops 600 floats when it returns
    hs, gs = [], []
    for _ in range(k):
        t = time.perf_counter_ns()
        h.lambda_handler(single, None)
        hs.append(time.perf_counter_ns() - t)
        t = time.perf_counter_ns()
        m.session.run(m.outputs, {m.input_name: x})
        gs.append(time.perf_counter_ns() - t)
    # each stage twice: repeated back to back (hot caches), and right after a graph run, as inside a request,
    # where the graph has just evicted the stage's code and data from the caches
    hot, cold = {k: [] for k in stages}, {k: [] for k in stages}
    for _ in range(max(200, k // 5)):
        for name, f in stages.items():
            for per, evict in ((hot, False), (cold, True)):
                if evict:
                    m.session.run(m.outputs, {m.input_name: x})
                if f is None:
                    held = [loads(req.body)]
                    if not evict:
                        held.append(loads(req.body))
                        held.pop()
                    t = time.perf_counter_ns()
                    held.clear()
                else:
                    if not evict:
                        f()
                    t = time.perf_counter_ns()
                    f()
                per[name].append(time.perf_counter_ns() - t)
    return hs, gs, {name: [median_us(hot[name]), median_us(cold[name])] for name in stages}


s = timed(single, n)
b = timed(batch, max(50, n // 20))
assert json.loads(h.lambda_handler(single, None)["body"])["prediction"] > 0
out = {"single_ns": s, "batch_ns": b, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
if mode == "ours":
    out["paired_handler_ns"], out["graph_ns"], out["stages_us"] = graph_and_stages(n)
sys.stderr.write(json.dumps(out) + "\n")
