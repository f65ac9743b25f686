"""One cold start of the guide's torch handler: `python cold_baseline_child.py REPO_ROOT EVENT.json`; the answer
goes to stderr the moment it exists, as cold_child.py does for ours."""

import sys
import time

t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import json  # noqa: E402

from benchmarks import baseline_handler as h  # noqa: E402

with open(sys.argv[2]) as f:
    event = json.load(f)
r = h.lambda_handler(event, None)
assert r["statusCode"] == 200
sys.stderr.write(
    json.dumps(
        {"prediction": json.loads(r["body"])["prediction"], "init_ms": None, "in_process_ms": (time.perf_counter() - t0) * 1000}
    )
    + "\n"
)
sys.stderr.flush()
