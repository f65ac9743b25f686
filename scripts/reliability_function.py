"""Hostile events through the function's entry point: crafted and random events, a fixed seed, statuses counted.

Runs on the function's own interpreter (.venv-fn), so it imports nothing beyond the standard library and lambda/.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_DIR = ROOT / "lambda"


def _hostile_text(rng: random.Random, n: int) -> str:
    pools = ["AAPL", "\ud800", "\udfff", "\x00", "\n", "€", "𝔘", "%", "{", '"', "\\", "/prod/predict", " ", "NaN"]
    return "".join(rng.choice(pools) if rng.random() < 0.5 else chr(rng.randrange(32, 0x2FFF)) for _ in range(n))


def _number(rng: random.Random):
    return rng.choice(
        [
            0.0,
            -0.0,
            1e-308,
            5e-324,
            1e308,
            -1e308,
            3.5e38,
            1e39,
            999.9,
            1000.0,
            1000.0001,
            -1000.0001,
            rng.uniform(-5, 5),
            rng.uniform(-2000, 2000),
            float("nan"),
            float("inf"),
            float("-inf"),
            10**400,
            -(10**20),
            True,
            None,
            "1.5",
            [],
            {},
        ]
    )


def hostile_events(n: int, seed: int = 20261126) -> list:
    """A fixed, reproducible mix of crafted and random events."""
    rng = random.Random(seed)
    base = json.loads((LAMBDA_DIR / "events" / "rest_v1_predict.json").read_text())
    v2 = json.loads((LAMBDA_DIR / "events" / "http_v2_predict.json").read_text())
    features = json.loads(base["body"])["features"]
    out = []
    for i in range(n):
        kind = i % 10
        f = list(features)
        for _ in range(rng.randrange(0, 4)):
            f[rng.randrange(len(f))] = _number(rng)
        if rng.random() < 0.2:
            f = f[: rng.randrange(0, 700)] + [rng.uniform(-1, 1)] * rng.randrange(0, 3)
        body_obj = {"ticker": rng.choice(["AAPL", "aapl\n", "^GSPC", "", _hostile_text(rng, 6), 42, None]), "features": f}
        if rng.random() < 0.3:
            body_obj[_hostile_text(rng, rng.choice([3, 300]))] = 1
        if rng.random() < 0.2:
            body_obj = {"instances": [body_obj] * rng.choice([0, 1, 2, 65])}
        try:
            body = json.dumps(body_obj, allow_nan=True)
        except (TypeError, ValueError):
            body = str(body_obj)
        if rng.random() < 0.1:
            body = body[: rng.randrange(len(body) + 1)]  # cut anywhere
        if rng.random() < 0.02:
            body = '{"ticker": "' + "€" * 600_000 + '"}'  # 1.8 MB of UTF-8 in 0.6 M characters
        if kind < 5:
            ev = json.loads(json.dumps(base))
            ev["httpMethod"] = rng.choice(["POST", "GET", "OPTIONS", "DELETE", _hostile_text(rng, 3)])
            ev["path"] = rng.choice(["/predict", "/prod/predict", "/model", "/health", "/x", _hostile_text(rng, 8)])
            ev["headers"] = {"X-API-Key": rng.choice(["local-dev-key", "", _hostile_text(rng, 20)])}
            ev["requestContext"]["requestId"] = rng.choice(["r", _hostile_text(rng, 10)])
            if rng.random() < 0.1:
                ev["isBase64Encoded"] = True
                body = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode() if rng.random() < 0.5 else body
            ev["body"] = body
        elif kind < 8:
            ev = json.loads(json.dumps(v2))
            ev["rawPath"] = rng.choice(["/predict", "/health", _hostile_text(rng, 8)])
            ev["requestContext"]["http"]["method"] = rng.choice(["POST", "GET", _hostile_text(rng, 4)])
            ev["headers"] = {"x-api-key": rng.choice(["local-dev-key", _hostile_text(rng, 5)])}
            ev["body"] = body
        else:
            try:
                ev = json.loads(body) if rng.random() < 0.7 else rng.choice([None, 7, "x", [1], _hostile_text(rng, 5)])
            except ValueError:
                ev = body
        out.append(ev)
    return out


def run_function(n: int) -> dict:
    sys.path.insert(0, str(LAMBDA_DIR))
    os.environ["API_KEY_SHA256"] = hashlib.sha256(b"local-dev-key").hexdigest()
    import lambda_handler

    statuses: dict[int, int] = {}
    escapes, non_finite = 0, 0
    sink = io.StringIO()
    t0 = time.perf_counter()
    for ev in hostile_events(n):
        try:
            with redirect_stdout(sink), redirect_stderr(sink):
                out = lambda_handler.lambda_handler(ev, None)
            text = out["body"] if "statusCode" in out else json.dumps(out, allow_nan=False)
            status = out.get("statusCode", out.get("status", 200))
            answer = json.loads(text or "null")
            for item in (answer.get("predictions") or [answer]) if isinstance(answer, dict) and status == 200 else []:
                if "prediction" in item:  # orjson writes NaN as null: a 200 must carry finite numbers
                    nums = [item["prediction"], item["confidence"], item["interval"]["low"], item["interval"]["high"]]
                    if not all(isinstance(v, float) and v == v and abs(v) != float("inf") for v in nums):
                        raise ValueError("a 200 with a number that is not finite")
        except ValueError:
            non_finite += 1
            status = -1
        except Exception:  # noqa: BLE001 - counting escapes is the point
            escapes += 1
            status = -2
        statuses[status] = statuses.get(status, 0) + 1
        sink.seek(0)
        sink.truncate()
    return {
        "events": n,
        "seconds": round(time.perf_counter() - t0, 1),
        "statuses": dict(sorted(statuses.items())),
        "answers_5xx": sum(c for s, c in statuses.items() if s >= 500),
        "exceptions_escaped": escapes,
        "non_finite_or_unserializable": non_finite,
        "python": sys.version.split()[0],
    }
