"""One cold start, run as `python -S -E cold_child.py TASK_DIR LAYER_DIR EVENT.json`: nothing on the path but the
package, as on Lambda. The answer goes to stderr as one JSON line the moment it exists, so the parent can time
the first answer apart from interpreter shutdown (which Lambda never bills); the function's own log line goes
to stdout, a pipe, as it does on Lambda."""

import sys
import time

t0 = time.perf_counter()
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import json  # noqa: E402

import lambda_handler  # noqa: E402

with open(sys.argv[3]) as f:
    event = json.load(f)
out = lambda_handler.lambda_handler(event, None)
body = json.loads(out["body"]) if "body" in out else out
sys.stderr.write(
    json.dumps(
        {
            "prediction": body.get("prediction"),
            "interval": body.get("interval"),
            "confidence": body.get("confidence"),
            "init_ms": lambda_handler.INIT_MS,
            "in_process_ms": (time.perf_counter() - t0) * 1000,
        }
    )
    + "\n"
)
sys.stderr.flush()
