"""The README's reliability figures, each from a command anyone can run (`make reliability` runs all three).

    .venv-fn/bin/python scripts/reliability.py function [--n 20000]   # hostile events through the entry point, on 3.13
    .venv/bin/python scripts/reliability.py local-api                  # load, slow clients, a killed worker,
                                                                       # slow chunked, non-reading, pipelining, 1,000 mixed

`function` builds random and crafted events (broken JSON, lone surrogates, extreme and non-finite numbers, wrong
shapes, oversized and multi-byte bodies, every event source) with a fixed seed and counts statuses: the claim is
0 answers of 5xx and 0 exceptions out of the handler. `local-api` starts the local API (python -m local_api) and measures what
its clients see. Every loop is bounded in count and time, and only loopback is used.
"""

from __future__ import annotations

import argparse
import json
import sys

from reliability_function import run_function
from reliability_local_api import run_local_api


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["function", "local-api"])
    p.add_argument("--n", type=int, default=20000, help="function: how many hostile events")
    p.add_argument("--load-seconds", type=float, default=20.0, help="local-api: seconds of load at 8 connections")
    args = p.parse_args(argv)
    result = run_function(args.n) if args.what == "function" else run_local_api(args.load_seconds)
    print(json.dumps(result, indent=1))
    bad = result.get("answers_5xx", 0) + result.get("exceptions_escaped", 0) + result.get("non_finite_or_unserializable", 0)
    return 1 if bad or result.get("load", {}).get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
