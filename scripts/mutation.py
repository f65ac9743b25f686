"""Plant each one-line bug of tests/mutations/*.yaml in a scratch copy of the checkout and see whether its tests fail.

    python scripts/mutation.py [FILES...] [--only ID ...] [--threshold 90] [--timeout 600]

A mutation is caught when its tests fail (or time out) on the mutated copy, and survives when they pass. The
working tree is never touched: the checkout (tracked and untracked, not ignored files, plus dist/) is copied
once to a temporary directory, each mutation is applied there and reverted after its run. Each distinct test
selection first runs on the unmutated copy: a selection that fails there proves nothing, and is reported.
The format of the lists is in tests/mutations/README.md. Exits 1 when the kill rate is below --threshold,
2 when a list is malformed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
INTERPRETERS = {"function": ".venv-fn/bin/python", "main": ".venv/bin/python"}
FIELDS = {"id", "file", "find", "replace", "interpreter", "tests"}
COPY_EXTRA = ("dist",)  # ignored, but rebuilding the layer in every scratch copy would take minutes


@dataclass(frozen=True)
class Mutation:
    area: str  # the list's file stem: function, metrics, deploy, ...
    id: str
    file: str
    find: str
    replace: str
    interpreter: str
    tests: tuple[str, ...]


class ListError(ValueError):
    """A mutation list that cannot be run as written."""


def load(paths: list[Path]) -> list[Mutation]:
    """Every mutation in `paths`, checked against the format and against the files it names."""
    out, seen = [], set()
    for path in paths:
        entries = yaml.safe_load(path.read_text()) or []
        if not isinstance(entries, list):
            raise ListError(f"{path}: expected a list of mutations, got {type(entries).__name__}")
        for i, e in enumerate(entries):
            where = f"{path.name}[{i}]"
            if not isinstance(e, dict) or set(e) != FIELDS:
                got = sorted(e) if isinstance(e, dict) else type(e).__name__
                raise ListError(f"{where}: needs exactly the fields {sorted(FIELDS)}, got {got}")
            if e["id"] in seen:
                raise ListError(f"{where}: the id {e['id']!r} is used twice")
            seen.add(e["id"])
            if e["interpreter"] not in INTERPRETERS:
                raise ListError(f"{where} ({e['id']}): interpreter must be one of {sorted(INTERPRETERS)}")
            if not isinstance(e["tests"], list) or not e["tests"]:
                raise ListError(f"{where} ({e['id']}): tests must be a non-empty list of pytest arguments")
            target = ROOT / e["file"]
            if not target.is_file():
                raise ListError(f"{where} ({e['id']}): {e['file']} does not exist")
            n = target.read_text().count(e["find"])
            if n != 1:
                raise ListError(f"{where} ({e['id']}): `find` occurs {n} times in {e['file']}; it must occur exactly once")
            if e["find"] == e["replace"]:
                raise ListError(f"{where} ({e['id']}): `replace` equals `find`")
            tests = tuple(map(str, e["tests"]))
            out.append(Mutation(path.stem, str(e["id"]), e["file"], e["find"], e["replace"], e["interpreter"], tests))
    return out


def scratch_copy(dest: Path) -> Path:
    """The checkout as git sees it (committed or not, never ignored files) plus dist/, under `dest`."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    copy = dest / "checkout"
    for name in filter(None, files):
        src = ROOT / name.decode()
        if src.is_file() and not src.is_symlink():
            (copy / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy / name.decode())
    for extra in COPY_EXTRA:
        if (ROOT / extra).is_dir():
            shutil.copytree(ROOT / extra, copy / extra, symlinks=True)
    for venv in (".venv", ".venv-fn"):  # tests that run `make` find the same interpreters (linked, never copied)
        if (ROOT / venv).exists():
            (copy / venv).symlink_to((ROOT / venv).resolve())
    return copy


def run_tests(copy: Path, interpreter: str, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """-> ("pass" | "fail" | "timeout" | "error", seconds, output tail). pytest's 1 and 2 are failures (a mutation
    that breaks an import fails collection); 3-5 say the selection itself is wrong."""
    python = ROOT / INTERPRETERS[interpreter]
    cmd = [str(python), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    t0 = time.monotonic()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen(
        cmd, cwd=copy, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: servers the tests started go too
        out, _ = proc.communicate()
        return "timeout", time.monotonic() - t0, (out or "")[-800:]
    finally:
        try:  # stragglers a finished run left in its group
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    took = time.monotonic() - t0
    verdict = {0: "pass", 1: "fail", 2: "fail"}.get(proc.returncode, "error")
    return verdict, took, out[-800:]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("lists", nargs="*", type=Path, help="mutation lists (default: tests/mutations/*.yaml)")
    p.add_argument("--only", nargs="+", default=None, metavar="ID", help="run only these mutation ids")
    p.add_argument("--threshold", type=float, default=0.0, help="exit 1 when the kill rate (%%) is below this")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per test run; a run that exceeds it counts as caught")
    p.add_argument("--no-baseline", action="store_true", help="skip running each selection on the unmutated copy first")
    args = p.parse_args(argv)

    paths = args.lists or sorted((ROOT / "tests" / "mutations").glob("*.yaml"))
    if not paths:
        print("mutation: no lists in tests/mutations/*.yaml", file=sys.stderr)
        return 2
    try:
        mutations = load([Path(x).resolve() for x in paths])
    except (ListError, yaml.YAMLError, OSError) as exc:
        print(f"mutation: {exc}", file=sys.stderr)
        return 2
    if args.only:
        unknown = set(args.only) - {m.id for m in mutations}
        if unknown:
            print(f"mutation: no mutation with id {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        mutations = [m for m in mutations if m.id in args.only]
    for name in {m.interpreter for m in mutations}:
        if not (ROOT / INTERPRETERS[name]).exists():
            print(f"mutation: {INTERPRETERS[name]} is missing; run `make setup-dev setup-function` first", file=sys.stderr)
            return 2

    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        copy = scratch_copy(Path(tmp))
        print(f"mutation: {len(mutations)} mutations from {len(paths)} lists, scratch copy {copy}", flush=True)
        broken: dict[tuple[str, tuple[str, ...]], str] = {}
        if not args.no_baseline:
            for sel in dict.fromkeys((m.interpreter, m.tests) for m in mutations):
                verdict, took, tail = run_tests(copy, *sel, args.timeout)
                if verdict != "pass":
                    broken[sel] = verdict
                    print(f"  BASELINE {verdict.upper()} ({took:.0f} s) {sel[0]}: {' '.join(sel[1])}\n{tail}", flush=True)
        results: list[tuple[Mutation, str]] = []
        for m in mutations:
            if (m.interpreter, m.tests) in broken:
                results.append((m, "baseline failed"))
                print(f"  SKIPPED   {m.area}/{m.id}: its test selection does not pass unmutated (see BASELINE above)", flush=True)
                continue
            target = copy / m.file
            original = target.read_text()
            target.write_text(original.replace(m.find, m.replace, 1))
            try:
                verdict, took, tail = run_tests(copy, m.interpreter, m.tests, args.timeout)
            finally:
                target.write_text(original)
            outcome = {"fail": "caught", "timeout": "caught (timeout)", "pass": "SURVIVED", "error": "error"}[verdict]
            results.append((m, outcome))
            print(f"  {outcome:<16} {took:6.1f} s  {m.area}/{m.id}", flush=True)
            if verdict == "error":
                print(tail, flush=True)

    print("\narea          caught / total")
    for area in dict.fromkeys(m.area for m, _ in results):
        rows = [o for m, o in results if m.area == area]
        print(f"  {area:<12} {sum(o.startswith('caught') for o in rows):>3} / {len(rows)}")
    caught = sum(o.startswith("caught") for _, o in results)
    rate = 100.0 * caught / len(results) if results else 0.0
    survivors = [f"{m.area}/{m.id}" for m, o in results if not o.startswith("caught")]
    print(f"kill rate {rate:.1f}% ({caught} of {len(results)}) in {time.monotonic() - t_start:.0f} s")
    if survivors:
        print("not caught: " + ", ".join(survivors))
    if rate < args.threshold:
        print(f"mutation: kill rate {rate:.1f}% is below the threshold {args.threshold:g}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
