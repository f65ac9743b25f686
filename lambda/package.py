"""Build the Lambda packages, reproducibly and within Lambda's limits.

    python lambda/package.py            # dist/lambda_function.zip and dist/layer.zip
    python lambda/package.py --force    # rebuild the layer even if lambda/requirements.txt is unchanged

dist/lambda_function.zip  lambda_handler.py + forecast/ + runtime/ (models/runtime), with .pyc compiled
                          (unchecked-hash: Lambda's read-only package cannot cache bytecode itself)
dist/layer.zip            python/ <- lambda/requirements.txt as manylinux2014 x86_64 cp311 wheels, stripped

Same inputs, same bytes: entries are sorted, dated 1980-01-01 and given fixed permissions.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

LAMBDA_DIR = Path(__file__).resolve().parent
ROOT = LAMBDA_DIR.parent
DIST = ROOT / "dist"
FUNCTION_ZIP = DIST / "lambda_function.zip"
LAYER_ZIP = DIST / "layer.zip"
STATE = DIST / "build-inputs.json"
RUNTIME_SRC = ROOT / "models" / "runtime"
REQUIREMENTS = LAMBDA_DIR / "requirements.txt"

MB = 1024 * 1024
LIMITS = {  # ours, then Lambda's: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
    "function_zip": 5 * MB,        # our target for code + model
    "layer_zip": 50 * MB,          # Lambda's direct-upload limit for a zip
    "unzipped_total": 150 * MB,    # our target; Lambda allows 250 MB for function + layers unzipped
}
LAMBDA_UNZIPPED_LIMIT = 250 * MB
PLATFORM = ["--platform", "manylinux2014_x86_64", "--only-binary=:all:", "--python-version", "3.11",
            "--implementation", "cp", "--abi", "cp311"]

# what the function never imports: tests, headers, typing stubs, build tools, optional onnxruntime tooling
STRIP_DIRS = {"tests", "test", "testing", "__pycache__", "include", "f2py", "distutils", "_pyinstaller",
              "tools", "transformers", "quantization", "datasets", "backend", "doc", "docs", "benchmarks"}
STRIP_SUFFIXES = (".pyi", ".h", ".c", ".pxd", ".pyx", ".cpp", ".hpp", ".a", ".md", ".txt", ".typed")
KEEP_IN_DIST_INFO = {"METADATA", "RECORD", "WHEEL", "top_level.txt", "LICENSE", "LICENSE.txt"}
FUNCTION_FILES = ["lambda_handler.py", "forecast"]


class PackageError(SystemExit):
    """A limit or a build step failed; the message says which and what to do."""

    def __init__(self, message: str):
        super().__init__(f"package.py: {message}")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(paths: list[Path]) -> str:
    """Digest of every file under `paths` (names and contents): what makes a build stale."""
    h = hashlib.sha256()
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for f in files:
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def function_inputs() -> list[Path]:
    return [LAMBDA_DIR / f for f in FUNCTION_FILES] + [RUNTIME_SRC]


def write_zip(src: Path, dest: Path) -> None:
    """Deterministic zip of everything under src."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(src.rglob("*")):
            if path.is_dir():
                continue
            info = zipfile.ZipInfo(str(path.relative_to(src)), date_time=(1980, 1, 1, 0, 0, 0))
            mode = 0o755 if os.access(path, os.X_OK) and path.suffix in (".so", "") else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            zf.writestr(info, path.read_bytes(), compresslevel=9)
    tmp.replace(dest)


def compile_tree(root: Path) -> None:
    """Byte-compile in a fresh interpreter: marshal's output depends on which strings the compiling
    process has already interned, so compiling in-process (under pytest, say) would change the bytes."""
    cmd = [sys.executable, "-E", "-s", "-m", "compileall", "-q", "-j", "1", "-d", "/",
           "--invalidation-mode", py_compile.PycInvalidationMode.UNCHECKED_HASH.name.lower().replace("_", "-"), str(root)]
    r = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0"})
    if r.returncode != 0:
        raise PackageError(f"byte-compiling {root} failed: {r.stdout[-500:]}{r.stderr[-500:]}")


def build_function(out: Path = FUNCTION_ZIP) -> Path:
    manifest = RUNTIME_SRC / "manifest.json"
    if not manifest.exists():
        raise PackageError(f"{manifest} is missing: run `make train` (or `python -m models.export`) first")
    files = json.loads(manifest.read_text()).get("files", {})
    for name, meta in files.items():
        if sha256_file(RUNTIME_SRC / name) != meta["sha256"]:
            raise PackageError(f"models/runtime/{name} does not match its sha256 in manifest.json; re-export the model")
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        shutil.copy2(LAMBDA_DIR / "lambda_handler.py", stage)
        shutil.copytree(LAMBDA_DIR / "forecast", stage / "forecast", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(RUNTIME_SRC, stage / "runtime", ignore=shutil.ignore_patterns("__pycache__", ".*"))
        compile_tree(stage)
        write_zip(stage, out)
    return out


def strip(site: Path) -> int:
    """Delete what the runtime never imports; returns bytes saved."""
    saved = 0
    for path in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if not path.exists():
            continue
        rel = path.relative_to(site)
        drop = False
        if path.is_dir() and path.name in STRIP_DIRS and not rel.parts[0].endswith(".dist-info"):
            drop = True
        elif path.is_file() and path.suffix in STRIP_SUFFIXES and not rel.parts[0].endswith(".dist-info"):
            drop = True
        elif path.is_file() and rel.parts[0].endswith(".dist-info") and path.name not in KEEP_IN_DIST_INFO:
            drop = True
        elif path.is_dir() and path.name == "bin":
            drop = True
        if drop:
            saved += sum(f.stat().st_size for f in ([path] if path.is_file() else path.rglob("*")) if f.is_file())
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return saved


def build_layer(out: Path = LAYER_ZIP, quiet: bool = False) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "python"
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--disable-pip-version-check",
               "--target", str(site), *PLATFORM, "-r", str(REQUIREMENTS)]
        if not quiet:
            print("  pip install (manylinux2014_x86_64, cp311) -r lambda/requirements.txt", flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            tail = "\n".join(r.stderr.strip().splitlines()[-5:])
            raise PackageError(f"pip could not fetch the layer's wheels (is PyPI reachable?):\n{tail}")
        saved = strip(site)
        if not quiet:
            print(f"  stripped {saved / MB:.1f} MB of tests, headers, stubs and unused onnxruntime tooling", flush=True)
        compile_tree(site)
        write_zip(site.parent, out)
    return out


def unzipped_size(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return sum(i.file_size for i in zf.infolist())


def report(function_zip: Path, layer_zip: Path) -> list[str]:
    """Print each size against its limit; return the limits exceeded."""
    sizes = {"function_zip": function_zip.stat().st_size, "layer_zip": layer_zip.stat().st_size,
             "unzipped_total": unzipped_size(function_zip) + unzipped_size(layer_zip)}
    failures = []
    for key, size in sizes.items():
        limit = LIMITS[key]
        ok = size <= limit
        print(f"  {key:15s} {size / MB:7.2f} MB  of {limit / MB:5.0f} MB  {'ok' if ok else 'OVER'}"
              f"{'  (Lambda allows 250 MB)' if key == 'unzipped_total' else ''}")
        if not ok:
            failures.append(f"{key} is {size / MB:.2f} MB, over the {limit / MB:.0f} MB limit")
    for z in (function_zip, layer_zip):
        print(f"  sha256 {z.name:20s} {sha256_file(z)}")
    return failures


def _state() -> dict:
    try:
        return json.loads(STATE.read_text())
    except (OSError, ValueError):
        return {}


def is_stale() -> bool:
    """True when a zip is missing or its inputs changed since it was built."""
    st = _state()
    return (not FUNCTION_ZIP.exists() or not LAYER_ZIP.exists()
            or st.get("function") != tree_digest(function_inputs())
            or st.get("layer") != tree_digest([REQUIREMENTS]))


def ensure_built(force_layer: bool = False, quiet: bool = False) -> tuple[Path, Path]:
    """Build what is missing or stale; returns (function zip, layer zip)."""
    st = _state()
    fn_digest, layer_digest = tree_digest(function_inputs()), tree_digest([REQUIREMENTS])
    if force_layer or not LAYER_ZIP.exists() or st.get("layer") != layer_digest:
        if not quiet:
            print(f"building {LAYER_ZIP.relative_to(ROOT)}", flush=True)
        build_layer(quiet=quiet)
    elif not quiet:
        print(f"{LAYER_ZIP.relative_to(ROOT)} is up to date with lambda/requirements.txt")
    if not FUNCTION_ZIP.exists() or st.get("function") != fn_digest:
        if not quiet:
            print(f"building {FUNCTION_ZIP.relative_to(ROOT)}", flush=True)
        build_function()
    elif not quiet:
        print(f"{FUNCTION_ZIP.relative_to(ROOT)} is up to date")
    STATE.write_text(json.dumps({"function": fn_digest, "layer": layer_digest}, indent=1) + "\n")
    return FUNCTION_ZIP, LAYER_ZIP


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--force", action="store_true", help="rebuild both zips even when their inputs are unchanged")
    args = p.parse_args(argv)
    if args.force:
        STATE.unlink(missing_ok=True)
    fn, layer = ensure_built(force_layer=args.force)
    failures = report(fn, layer)
    if failures:
        raise PackageError("; ".join(failures) + ". Trim lambda/requirements.txt or the model.")
    print("ok: both packages are within their limits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
