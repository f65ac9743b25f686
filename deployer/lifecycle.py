"""Is a Lambda runtime still deployable? Dates live in deployer/runtimes.json; this file only reads them.

    python -m deployer.lifecycle              # every Python runtime with its dates, as of today
    python -m deployer.lifecycle python3.11   # one verdict; exit 1 if AWS blocks it

A runtime with no known block date counts as blocked from its deprecation date: AWS has blocked creates
4.5 months after deprecation before, and a deploy that half-succeeds is worse than one that refuses.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

DATA = Path(__file__).resolve().parent / "runtimes.json"


@dataclass(frozen=True)
class Verdict:
    runtime: str
    state: str  # "supported", "deprecating" (warn), "blocked" or "unknown"
    deprecated: date | None
    message: str

    @property
    def blocked(self) -> bool:
        return self.state in ("blocked", "unknown")


def load(path: Path = DATA) -> dict:
    return json.loads(path.read_text())


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def verdict(runtime: str, today: date | None = None, creating: bool = True, data: dict | None = None) -> Verdict:
    """What AWS does with `runtime` on `today`: the deployer refuses a blocked one before it creates anything."""
    data = data or load()
    today = today or datetime.now(UTC).date()
    entry = data["runtimes"].get(runtime)
    fix = "set the PythonRuntime parameter in lambda/template.yaml to a supported runtime (python3.13)"
    if entry is None:
        return Verdict(
            runtime,
            "unknown",
            None,
            f"runtime {runtime!r} is not in deployer/runtimes.json, so its support "
            f"dates are unknown; {fix}, or add its dates from AWS's Lambda runtimes page",
        )
    deprecated = _day(entry["deprecated"])
    block = _day(entry["block_create"] if creating else entry["block_update"]) or deprecated
    action = "creating" if creating else "updating"
    if block and today >= block:
        known = entry["block_create" if creating else "block_update"]
        when = f"since {block}" if known else f"since its deprecation on {deprecated} (AWS's block date is not confirmed)"
        return Verdict(
            runtime, "blocked", deprecated, f"AWS blocks {action} functions on {runtime} ({entry['os']}) {when}; {fix}"
        )
    warn_days = int(data.get("warn_days_before_deprecation", 180))
    if deprecated and today >= deprecated:
        return Verdict(
            runtime,
            "deprecating",
            deprecated,
            f"{runtime} was deprecated on {deprecated}: no security patches; "
            f"{action} is blocked from {block}. {fix[0].upper()}{fix[1:]}",
        )
    if deprecated and (deprecated - today).days <= warn_days:  # a warning, never "retired" before its date
        blocks = f"creating functions on it is blocked from {_day(entry['block_create']) or deprecated}"
        if entry["block_update"]:
            blocks += f", updating them from {entry['block_update']}"
        return Verdict(
            runtime,
            "deprecating",
            deprecated,
            f"{runtime} ({entry['os']}) still deploys, but AWS deprecates it on {deprecated} "
            f"({(deprecated - today).days} days from now); {blocks}. Plan the move: {fix}",
        )
    return Verdict(runtime, "supported", deprecated, f"{runtime} ({entry['os']}) is supported until {deprecated}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m deployer.lifecycle", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("runtime", nargs="*", help="Lambda runtime identifiers such as python3.13 (default: every one known)")
    argv = p.parse_args(sys.argv[1:] if argv is None else argv).runtime
    data = load()
    names = argv or sorted(data["runtimes"], key=lambda r: tuple(int(x) for x in r.removeprefix("python").split(".")))
    worst = 0
    for name in names:
        v = verdict(name, data=data)
        print(f"{name:11s} {v.state:12s} {v.message}")
        worst = max(worst, 1 if v.blocked else 0)
    print(f"(dates checked {data['checked']}; sources in deployer/runtimes.json)")
    return worst if argv else 0


if __name__ == "__main__":
    sys.exit(main())
