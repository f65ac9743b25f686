"""A local stand-in for API Gateway (REST API, one stage) in front of the Lambda runtime (runtime.py).

    python -m local_api [--port 3000] [--workers 2] [--stage prod]

It serves dist/lambda_function.zip + dist/layer.zip (rebuilt when missing or stale) the way AWS would:
  * API Gateway: the exact REST v1 proxy event; 403 without the API key on POST /predict (usage plan);
    403 "Missing Authentication Token" for routes the template does not define; 413 above 10 MB;
    429 when the throttle's token bucket is empty; 504 after the 29 s integration timeout.
    Framing like a careful proxy (http_framing.py): chunked bodies read, repeated, folded or malformed lengths 400
    and closed. One gatekeeper thread (gatekeeper.py) does every read and write, so a client that sends or reads
    slowly costs a buffer, not a thread: --read-timeout to send a request, --write-timeout to take an answer,
    --max-connections requests handled at once, a buffer budget, and SIGTERM drains within a few seconds.
  * Lambda (runtime.py): each worker is a separate process running the real runtime client (awslambdaric)
    on the template Runtime's CPython, against a Lambda Runtime API served there, with the package extracted
    and nothing else on its path. A worker that crashes or hangs past the function's Timeout is replaced.
Every invocation is appended to .local/invocations.jsonl with its duration and billed duration (whole ms,
rounded up as Lambda bills); the cost monitor reads it. The function's own log lines go to .local/function.log.
Every 5 s .local/local_api_stats.json is replaced with the gatekeeper's held bytes and connections and each worker's
pid and restarts: what to watch for a leak.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

import package
import runtime_python
import settings

from models.local import LOCAL_DIR, saved_key

from . import ROOT, gatekeeper
from .gateway import DRAIN_S, INTEGRATION_TIMEOUT_S, Gateway, InvocationLog, TokenBucket
from .runtime import Pool


def write_private(path: Path, text: str) -> None:
    """Create a file only its owner can read from the first byte (the key must never sit world-readable)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


STATS_FILE = "local_api_stats.json"
STATS_EVERY_S = 5.0


def write_stats(path: Path, server: Gateway, pool: Pool, stopping: threading.Event) -> None:
    """Every STATS_EVERY_S, the gatekeeper's counters and each worker's pid in one small JSON file, replaced whole:
    what an operator (or benchmarks/soak.py) reads to see a leak coming, without a request that would itself be
    traffic. One file rewritten, never appended: hours of uptime cost no disk."""
    tmp = path.with_name(f".{path.name}.tmp")
    while True:
        stats = {"time": time.time(), "pid": os.getpid(), **server.gatekeeper.stats(), "workers": pool.stats()}
        try:
            tmp.write_text(json.dumps(stats) + "\n")
            os.replace(tmp, path)
        except OSError:
            pass  # a full disk: the server serves on, the file is simply older
        if stopping.wait(STATS_EVERY_S):
            return


def function_runtime() -> tuple[Path, package.Target, str | None]:
    """(interpreter, build target, caveat): the template's Runtime when its CPython exists here; otherwise this
    interpreter with a layer built for it, and a caveat that says plainly it is not the deployed runtime."""
    target = package.Target.from_template(arch="x86_64")
    try:
        return runtime_python.ensure_venv(target.python, quiet=True), target, None
    except SystemExit as exc:
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        caveat = (
            f"serving the function on CPython {here}, NOT the deployed {settings.function_settings()['Runtime']}: "
            f"{str(exc).removeprefix('runtime_python: ')}"
        )
        import dataclasses

        return Path(sys.executable), dataclasses.replace(target, python=here), caveat


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m local_api", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_API_PORT", 3000)))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--workers", type=int, default=2, help="warm execution environments (default 2: one per core here)")
    p.add_argument("--stage", default="prod")
    p.add_argument("--rate-limit", type=float, default=1000.0, help="throttle: requests per second (API Gateway's token bucket)")
    p.add_argument("--burst-limit", type=int, default=2000, help="throttle: bucket size")
    p.add_argument("--integration-timeout", type=float, default=INTEGRATION_TIMEOUT_S)
    p.add_argument(
        "--log-dir", type=Path, default=LOCAL_DIR, help="where invocations.jsonl, function.log and the extracted package live"
    )
    p.add_argument(
        "--calibration",
        type=Path,
        help="the ledger's per-ticker calibration state the function reads (default LOG_DIR/calibration.json; "
        "`make ledger` writes it, the workers pick up a change without a restart)",
    )
    p.add_argument("--no-build", action="store_true", help="serve dist/ as it is, even if stale")
    p.add_argument(
        "--function-zip", type=Path, default=None, help="serve this function zip instead of dist/'s (implies --no-build)"
    )
    p.add_argument(
        "--layer-zip", type=Path, default=None, help="with --function-zip: the layer to serve (default dist/layer.zip)"
    )
    p.add_argument("--timeout", type=float, default=None, help="override the function Timeout from template.yaml (seconds)")
    p.add_argument(
        "--read-timeout",
        type=float,
        default=gatekeeper.READ_TIMEOUT_S,
        help=f"seconds a client gets to send a request, or to idle between requests (default {gatekeeper.READ_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--write-timeout",
        type=float,
        default=gatekeeper.WRITE_TIMEOUT_S,
        help=f"seconds a client gets to take an answer before it is closed (default {gatekeeper.WRITE_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=gatekeeper.MAX_CONNECTIONS,
        help=f"requests handled at once, one thread each (default {gatekeeper.MAX_CONNECTIONS}); a connection still "
        "sending its request, or taking its answer, waits without a thread",
    )
    p.add_argument(
        "--max-pending",
        type=int,
        default=gatekeeper.MAX_PENDING,
        help=f"open connections; more get 503 at once (default {gatekeeper.MAX_PENDING}, lowered to fit the open-file limit)",
    )
    p.add_argument(
        "--buffer-budget-mb",
        type=float,
        default=gatekeeper.BUFFER_BUDGET / 2**20,
        help=f"bytes held across all connections (requests being read, answers unsent); past it a connection gets 503 "
        f"(default {gatekeeper.BUFFER_BUDGET // 2**20} MiB)",
    )
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error(f"--port must be 0..65535, not {args.port}")
    for name in ("workers", "max_connections", "max_pending", "burst_limit"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}: the API could answer nothing")
    units = {"integration_timeout": "s", "read_timeout": "s", "write_timeout": "s", "timeout": "s"}
    units |= {"buffer_budget_mb": "MiB", "rate_limit": "requests a second"}
    for name, unit in units.items():
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            p.error(f"--{name.replace('_', '-')} must be a positive number ({unit}), not {value}")

    args.log_dir.mkdir(parents=True, exist_ok=True)
    python, target, caveat = function_runtime()
    if args.function_zip:
        fn, layer = args.function_zip.resolve(), (args.layer_zip or package.LAYER_ZIP).resolve()
        if not fn.exists() or not layer.exists():
            raise SystemExit(f"local_api: {fn if not fn.exists() else layer} does not exist")
    elif args.no_build:
        fn, layer = package.paths(target)
        if not fn.exists() or not layer.exists():
            raise SystemExit("local_api: dist/ has no packages; run `python lambda/package.py` or drop --no-build")
    else:
        fn, layer = package.ensure_built(quiet=not package.is_stale(target), target=target)
    # the key the last run served (owner-only file), so a README's `$KEY` survives a restart
    api_key = os.environ.get("LOCAL_API_KEY") or saved_key(args.log_dir) or secrets.token_urlsafe(24)
    calibration = (args.calibration or args.log_dir / "calibration.json").resolve()
    pool = Pool(fn, layer, args.workers, api_key, args.log_dir, timeout_s=args.timeout, python=python, calibration=calibration)
    log = InvocationLog(args.log_dir / "invocations.jsonl", pool.memory_mb)
    try:
        server = Gateway(
            (args.host, args.port),
            pool,
            api_key,
            args.stage,
            TokenBucket(args.rate_limit, args.burst_limit),
            args.integration_timeout,
            log,
            read_timeout=args.read_timeout,
            write_timeout=args.write_timeout,
            max_connections=args.max_connections,
            max_pending=args.max_pending,
            buffer_budget=int(args.buffer_budget_mb * 2**20),
        )
    except OSError as exc:
        pool.stop()
        raise SystemExit(
            f"local_api: cannot listen on {args.host}:{args.port} ({exc.strerror}); "
            "another local API running? choose another --port"
        ) from None
    url = f"http://{args.host}:{server.server_address[1]}/{args.stage}"
    info = args.log_dir / "local_api.json"  # for the dashboard's defaults; a local development key, owner-only
    write_private(
        info,
        json.dumps(
            {
                "url": url,
                "pid": os.getpid(),
                "api_key": api_key,
                "runtime": pool.settings["Runtime"],
                "python": f"{target.python}",
                "caveat": caveat,
                "calibration_state": str(calibration),
            }
        )
        + "\n",
    )
    print(f"local API  {url}   POST /predict (X-API-Key), GET /model, GET /health", flush=True)
    print(
        f"API key    {api_key}{'' if os.environ.get('LOCAL_API_KEY') else '   (kept in local_api.json; LOCAL_API_KEY sets it)'}",
        flush=True,
    )
    print(
        f"function   {fn.relative_to(ROOT) if fn.is_relative_to(ROOT) else fn} on {args.workers} awslambdaric "
        f"worker(s), {pool.memory_mb} MB, "
        f"timeout {pool.timeout_s:g}s; invocations -> {log.path}",
        flush=True,
    )
    print(
        f"runtime    CPython {target.python} ({python}) for {pool.settings['Runtime']}"
        + (f"\nWARNING    {caveat}" if caveat else ", as on Lambda"),
        flush=True,
    )

    print(
        f"limits     {server.gatekeeper.max_pending} connections (open-file limit), {args.max_connections} handled at once, "
        f"{args.buffer_budget_mb:g} MiB buffered; read {args.read_timeout:g}s, write {args.write_timeout:g}s",
        flush=True,
    )
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGINT too: it may arrive inherited as ignored
        signal.signal(sig, lambda *_: stopping.set())
    server.serve()
    threading.Thread(target=write_stats, args=(args.log_dir / STATS_FILE, server, pool, stopping), daemon=True).start()
    stopping.wait()
    # drain: stop accepting, queued requests 503 now, in-flight ones get DRAIN_S, then the workers stop
    t0 = time.monotonic()
    server.gatekeeper.drain(DRAIN_S)
    server.gatekeeper.stopped.wait(DRAIN_S + 1.0)
    pool.stop()
    print(f"local API stopped (drained in {time.monotonic() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
