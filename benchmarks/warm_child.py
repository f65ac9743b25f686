"""Warm latency through the entry point, run as a child process:

    python -S -E warm_child.py ours N SINGLE.json BATCH.json TASK_DIR:LAYER_DIR
    python warm_child.py baseline N SINGLE.json BATCH.json REPO_ROOT

The function's log line goes to stdout, a pipe the parent drains, as on Lambda; the figures go to stderr.
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


s = timed(single, n)
b = timed(batch, max(50, n // 20))
assert json.loads(h.lambda_handler(single, None)["body"])["prediction"] > 0
sys.stderr.write(
    json.dumps({"single_ns": s, "batch_ns": b, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}) + "\n"
)
