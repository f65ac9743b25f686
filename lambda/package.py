"""Build the Lambda packages, reproducibly and within Lambda's limits, for the Runtime the template names.

    python lambda/package.py                 # dist/lambda_function.zip and dist/layer.zip (template's Runtime and arch)
    python lambda/package.py --arch arm64    # the same for Graviton (manylinux_2_28_aarch64 wheels); nothing here runs it
    python lambda/package.py --force         # rebuild even if the inputs are unchanged
    python lambda/package.py --ledger        # also the ledger's layer (a deploy with Ledger=on builds it itself)

dist/lambda_function.zip  lambda_handler.py + forecast/ + runtime/ (models/runtime), with .pyc compiled by the
                          runtime's own CPython (unchecked-hash: Lambda's read-only package cannot cache bytecode)
dist/layer.zip            python/ <- lambda/requirements.txt as cpXY wheels for manylinux_2_28 or older (Amazon
                          Linux 2023 has glibc 2.34), stripped of what the function never loads
dist/ledger_function.zip  ledger/ + the models/ modules it imports (the daily job's own function; no torch)
dist/ledger_layer.zip     python/ <- ledger/requirements.txt with its dependencies (--ledger only: pandas, scipy,
                          arch and yfinance take a while; sources only, as compiled .pyc would pass 250 MB)

Same inputs, same bytes: entries are sorted, dated 1980-01-01 and given fixed permissions.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from package_build import (  # noqa: E402
    FUNCTION_FILES,
    FUNCTION_ZIP,
    LAMBDA_DIR,
    LAYER_ZIP,
    LEDGER_FUNCTION_ZIP,
    LEDGER_LAYER_ZIP,
    LEDGER_REQUIREMENTS,
    LEDGER_STATE,
    MACHINE,
    MB,
    REQUIREMENTS,
    ROOT,
    RUNTIME_SRC,
    STATE,
    PackageError,
    Target,
    build_function,
    build_layer,
    build_ledger_function,
    interpreter,
    ledger_inputs,
    sha256_file,
)
from package_checks import (  # noqa: E402
    LAMBDA_UNZIPPED_LIMIT,
    LIMITS,
    MAX_GLIBC,
    check_glibc,
    glibc_needed,
    ledger_report,
    report,
    unzipped_size,
)

# what other code reaches as `package.NAME` (lambda/ on sys.path): the build, its freshness and its checks
__all__ = [
    "LAMBDA_UNZIPPED_LIMIT",
    "LAYER_ZIP",
    "LIMITS",
    "MAX_GLIBC",
    "REQUIREMENTS",
    "RUNTIME_SRC",
    "PackageError",
    "Target",
    "build_function",
    "build_layer",
    "build_ledger_function",
    "check_glibc",
    "ensure_built",
    "ensure_ledger_built",
    "function_inputs",
    "glibc_needed",
    "interpreter",
    "is_stale",
    "ledger_paths",
    "ledger_report",
    "main",
    "paths",
    "report",
    "sha256_file",
    "unzipped_size",
]


def tree_digest(paths: list[Path]) -> str:
    """Digest of every file under `paths` (names and contents): what makes a build stale."""
    h = hashlib.sha256()
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for f in files:
            h.update(str(f.relative_to(ROOT) if f.is_relative_to(ROOT) else f).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def function_inputs() -> list[Path]:
    return [LAMBDA_DIR / f for f in FUNCTION_FILES] + [RUNTIME_SRC]


def ensure_ledger_built(layer: bool, quiet: bool = False, target: Target | None = None) -> tuple[Path, Path | None]:
    """Build the ledger's function zip (cheap) and, when asked, its layer (pandas, scipy, arch, yfinance: a heavy
    build only a deploy with Ledger=on needs) if missing or stale; returns (function zip, layer zip or None)."""
    target = target or Target.from_template()
    fn, lay = target.out_dir / LEDGER_FUNCTION_ZIP.name, target.out_dir / LEDGER_LAYER_ZIP.name
    state_file = target.out_dir / LEDGER_STATE.name
    try:
        st = json.loads(state_file.read_text())
    except (OSError, ValueError):
        st = {}
    inputs = ledger_inputs()
    now = {"target": str(target), "function": tree_digest(inputs[:-1]), "layer": tree_digest(inputs[-1:])}
    same_target = st.get("target") == now["target"]
    if not fn.exists() or not same_target or st.get("function") != now["function"]:
        if not quiet:
            print(f"building {fn.relative_to(ROOT)} (ledger/ and the models/ modules it imports)", flush=True)
        build_ledger_function(fn, target)
    fresh_layer = lay.exists() and same_target and st.get("layer") == now["layer"]
    if layer and not fresh_layer:
        if not quiet:
            print(f"building {lay.relative_to(ROOT)} for {target} from ledger/requirements.txt", flush=True)
        build_layer(lay, quiet=quiet, target=target, requirements=LEDGER_REQUIREMENTS, resolve=True, byte_compile=False)
        fresh_layer = True
    now["layer"] = now["layer"] if fresh_layer else None
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(now, indent=1) + "\n")
    return fn, (lay if fresh_layer else None)


def ledger_paths(target: Target | None = None) -> tuple[Path, Path]:
    target = target or Target.from_template()
    return target.out_dir / LEDGER_FUNCTION_ZIP.name, target.out_dir / LEDGER_LAYER_ZIP.name


def _state(target: Target) -> dict:
    try:
        return json.loads((target.out_dir / STATE.name).read_text())
    except (OSError, ValueError):
        return {}


def _digests(target: Target) -> dict:
    return {"target": str(target), "function": tree_digest(function_inputs()), "layer": tree_digest([REQUIREMENTS])}


def paths(target: Target | None = None) -> tuple[Path, Path]:
    target = target or Target.from_template()
    return target.out_dir / FUNCTION_ZIP.name, target.out_dir / LAYER_ZIP.name


def is_stale(target: Target | None = None) -> bool:
    """True when a zip is missing, was built for another target, or its inputs changed since."""
    target = target or Target.from_template()
    fn, layer = paths(target)
    return not fn.exists() or not layer.exists() or _state(target) != _digests(target)


def ensure_built(force_layer: bool = False, quiet: bool = False, target: Target | None = None) -> tuple[Path, Path]:
    """Build what is missing or stale for `target` (default: the template's); returns (function zip, layer zip)."""
    target = target or Target.from_template()
    fn, layer = paths(target)
    st, now = _state(target), _digests(target)
    same_target = st.get("target") == now["target"]
    if force_layer or not layer.exists() or not same_target or st.get("layer") != now["layer"]:
        if not quiet:
            print(f"building {layer.relative_to(ROOT)} for {target}", flush=True)
        build_layer(layer, quiet=quiet, target=target)
    elif not quiet:
        print(f"{layer.relative_to(ROOT)} ({target}) is up to date with lambda/requirements.txt")
    if not fn.exists() or not same_target or st.get("function") != now["function"]:
        if not quiet:
            print(f"building {fn.relative_to(ROOT)} (.pyc by CPython {target.python})", flush=True)
        build_function(fn, target)
    elif not quiet:
        print(f"{fn.relative_to(ROOT)} is up to date")
    (target.out_dir / STATE.name).write_text(json.dumps(now, indent=1) + "\n")
    return fn, layer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--force", action="store_true", help="rebuild both zips even when their inputs are unchanged")
    p.add_argument("--arch", choices=sorted(MACHINE), default=None, help="x86_64 or arm64 (default: the template's Architecture)")
    p.add_argument(
        "--ledger", action="store_true", help="also build the ledger's layer (dist/ledger_layer.zip; pandas, scipy, arch: heavy)"
    )
    p.add_argument("--python", default=None, help="CPython version for a local-only build (default: the template's Runtime)")
    args = p.parse_args(argv)
    default = Target.from_template(args.arch)
    target = dataclasses.replace(default, python=args.python) if args.python else default
    if args.force:
        (target.out_dir / STATE.name).unlink(missing_ok=True)
    fn, layer = ensure_built(force_layer=args.force, target=target)
    failures = report(fn, layer) + check_glibc(layer)
    ledger_fn, ledger_layer = ensure_ledger_built(layer=args.ledger, target=target)
    if ledger_layer:
        failures += ledger_report(ledger_fn, ledger_layer) + check_glibc(ledger_layer)
    else:
        print(f"  ledger          {ledger_fn.stat().st_size / MB:7.2f} MB function (its layer: --ledger)")
    if failures:
        raise PackageError("; ".join(failures) + ". Trim lambda/requirements.txt or the model, or pin older wheels.")
    where = "deployable" if target.deployable else "local only: not the template's Runtime"
    built = "the predict function, its layer and the ledger's function" + (" and layer" if ledger_layer else "")
    print(f"ok: {built} for {target} are within their limits ({where})")
    if target.arch == "arm64":
        print("note: nothing on this machine can run arm64 code; this build is checked for size and glibc only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
