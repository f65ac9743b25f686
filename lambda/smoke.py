"""Run the built zips the way Lambda would, before anyone uploads them: the runtime's own CPython, `-S -E`, and
nothing on the path but the extracted function and layer.

    python lambda/smoke.py          # build if stale, then check the sample events; exit 1 with the failing event

The deployer calls `check()` before it uploads anything; tests call `run_isolated()` to compare answers.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

LAMBDA_DIR = Path(__file__).resolve().parent
EVENTS = LAMBDA_DIR / "events"
SAMPLE_KEY = "local-dev-key"  # the key lambda/events/*.json carry

# reads a JSON list of events on stdin, answers a JSON list on stdout; the function's log lines go to stderr
_CHILD = r"""
import sys, json
task, layer = sys.argv[1], sys.argv[2]
sys.path[:0] = [task, layer]
log, sys.stdout = sys.stdout, sys.stderr
import lambda_handler
events = json.loads(sys.stdin.read())
answers = [lambda_handler.lambda_handler(e, None) for e in events]
import numpy, onnxruntime
paths = [numpy.__file__, onnxruntime.__file__, lambda_handler.__file__]
log.write(json.dumps({"answers": answers, "paths": paths, "sys_path": sys.path,
                      "version": "%d.%d" % sys.version_info[:2]}))
"""


class SmokeError(Exception):
    """The package did not answer as it must; the message names the event and what came back."""


def run_isolated(
    fn_zip: Path,
    layer_zip: Path,
    events: list,
    python: Path,
    env: dict | None = None,
    workdir: Path | None = None,
    timeout_s: float = 120,
) -> dict:
    """-> {"answers": [...], "paths": [...], "sys_path": [...], "version": "3.13"}."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        task, opt = Path(tmp) / "task", Path(tmp) / "opt"
        zipfile.ZipFile(fn_zip).extractall(task)
        zipfile.ZipFile(layer_zip).extractall(opt)
        base = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
        try:
            r = subprocess.run(
                [str(python), "-S", "-E", "-c", _CHILD, str(task), str(opt / "python")],
                input=json.dumps(events, allow_nan=True),
                capture_output=True,
                text=True,
                cwd=tmp,
                env={**base, **(env or {})},
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise SmokeError(f"the package did not answer {len(events)} sample events within {timeout_s:.0f} s") from None
        if r.returncode != 0 or not r.stdout.strip():
            tail = "\n".join(r.stderr.strip().splitlines()[-8:])
            raise SmokeError(f"the package failed to import or run on {python}:\n{tail}")
        return json.loads(r.stdout)


def _body(answer: dict) -> dict:
    try:
        return json.loads(answer.get("body") or "{}")
    except ValueError:
        return {}


def sample_checks() -> list[tuple[str, dict, object]]:
    """(what, event, expectation(answer) -> None or the reason it failed)."""
    predict = json.loads((EVENTS / "rest_v1_predict.json").read_text())
    health = json.loads((EVENTS / "http_v2_health.json").read_text())
    bad = dict(predict, body='{"ticker": "AAPL", "features": [1, 2, 3]}')
    nokey = dict(
        predict, headers={k: v for k, v in predict["headers"].items() if k.lower() != "x-api-key"}, multiValueHeaders=None
    )
    direct = json.loads((EVENTS / "direct_invoke.json").read_text())

    def status(want: int, field: str | None = None):
        def expect(a):
            got = a.get("statusCode")
            body = _body(a)
            if got != want:
                return f"expected HTTP {want}, got {got}: {json.dumps(body)[:300]}"
            if field and not isinstance(body.get(field), int | float):
                return f"expected a numeric {field!r}, got {json.dumps(body)[:300]}"
            return None

        return expect

    def direct_ok(a):
        return None if isinstance(a.get("prediction"), int | float) else f"expected a prediction, got {json.dumps(a)[:300]}"

    return [
        ("GET /health", health, status(200)),
        ("POST /predict (rest_v1_predict.json)", predict, status(200, "prediction")),
        ("POST /predict with a 3-number body", bad, status(400)),
        ("POST /predict without X-API-Key", nokey, status(401)),
        ("direct invoke (direct_invoke.json)", direct, direct_ok),
    ]


def check(fn_zip: Path, layer_zip: Path, python: Path) -> list[str]:
    """Run every sample check in one isolated process; returns what failed (empty: the package is sound)."""
    checks = sample_checks()
    env = {"API_KEY_SHA256": hashlib.sha256(SAMPLE_KEY.encode()).hexdigest()}
    try:
        out = run_isolated(fn_zip, layer_zip, [event for _, event, _ in checks], python, env)
    except SmokeError as exc:
        return [str(exc)]
    failures = []
    for (what, _, expect), answer in zip(checks, out["answers"], strict=True):
        reason = expect(answer)
        if reason:
            failures.append(f"{what}: {reason}")
    return failures


def main() -> int:
    import package

    target = package.Target.from_template()
    fn, layer = package.ensure_built(target=target)
    python = package.interpreter(target)
    failures = check(fn, layer, python)
    for f in failures:
        print(f"smoke: FAILED {f}", file=sys.stderr)
    if not failures:
        print(f"smoke: the packages for {target} answer every sample event on {python}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(LAMBDA_DIR))
    sys.exit(main())
