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
import functools
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import runtime_python  # noqa: E402
import settings  # noqa: E402

LAMBDA_DIR = Path(__file__).resolve().parent
ROOT = LAMBDA_DIR.parent
DIST = ROOT / "dist"
FUNCTION_ZIP = DIST / "lambda_function.zip"
LAYER_ZIP = DIST / "layer.zip"
STATE = DIST / "build-inputs.json"
RUNTIME_SRC = ROOT / "models" / "runtime"
REQUIREMENTS = LAMBDA_DIR / "requirements.txt"
# the ledger's daily job: its own function and layer (never in the predict function's zips)
LEDGER_FUNCTION_ZIP = DIST / "ledger_function.zip"
LEDGER_LAYER_ZIP = DIST / "ledger_layer.zip"
LEDGER_STATE = DIST / "ledger-build-inputs.json"
LEDGER_REQUIREMENTS = ROOT / "ledger" / "requirements.txt"
# what ledger.handler imports from models/ (torch-free: net, train and export stay out; a test imports the zip alone)
LEDGER_MODELS = ["__init__.py", "client.py", "data/__init__.py", "dataset.py", "features.py", "local.py", "metrics.py"]

MB = 1024 * 1024
LIMITS = {  # ours, then Lambda's: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
    "function_zip": 5 * MB,  # our target for code + model
    "layer_zip": 50 * MB,  # Lambda's direct-upload limit for a zip
    "unzipped_total": 150 * MB,  # our target; Lambda allows 250 MB for function + layers unzipped
}
LAMBDA_UNZIPPED_LIMIT = 250 * MB
MAX_GLIBC = (2, 34)  # Amazon Linux 2023, which every supported Python runtime runs on
MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}


@dataclasses.dataclass(frozen=True)
class Target:
    """What a build is for: CPython version and Lambda architecture."""

    python: str = "3.13"  # CPython major.minor
    arch: str = "x86_64"  # Lambda's name: x86_64 or arm64

    @classmethod
    def from_template(cls, arch: str | None = None) -> Target:
        s = settings.function_settings()
        return cls(runtime_python.version_of(s["Runtime"]), arch or s["Architectures"][0])

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")

    @property
    def deployable(self) -> bool:
        """Built for the template's Runtime: what deploy.py and SAM upload."""
        return self.python == Target.from_template().python

    @property
    def out_dir(self) -> Path:
        # the deployable build is where template.yaml's CodeUri/ContentUri point; a local-only build sits apart
        return DIST if self.deployable else DIST / f"local-{self.abi}-{self.arch}"

    def pip_args(self) -> list[str]:
        """pip tags for manylinux_2_28 down to manylinux2014 (glibc 2.17): nothing that needs a newer glibc."""
        machine = MACHINE[self.arch]
        tags = [f"manylinux_2_{minor}_{machine}" for minor in range(28, 16, -1)] + [f"manylinux2014_{machine}"]
        return [
            *(a for t in tags for a in ("--platform", t)),
            "--only-binary=:all:",
            "--python-version",
            self.python,
            "--implementation",
            "cp",
            "--abi",
            self.abi,
        ]

    def __str__(self) -> str:
        return f"{self.abi} {self.arch}"


# what the function never imports: tests, headers, typing stubs, build tools, optional onnxruntime tooling
STRIP_DIRS = {
    "tests",
    "test",
    "testing",
    "__pycache__",
    "include",
    "f2py",
    "distutils",
    "_pyinstaller",
    "tools",
    "transformers",
    "quantization",
    "datasets",
    "backend",
    "doc",
    "docs",
    "benchmarks",
}
# onnxruntime >= 1.17 ships its C API library beside the Python binding, which links the runtime statically and
# never loads it (tests/test_package.py runs the stripped package to prove it): about 16-35 MB for nothing
STRIP_GLOBS = ("onnxruntime/capi/libonnxruntime.so*",)
STRIP_SUFFIXES = (".pyi", ".h", ".c", ".pxd", ".pyx", ".cpp", ".hpp", ".a", ".md", ".txt", ".typed")
# the ledger layer's wider tree (pandas, scipy, statsmodels) has real modules named tools, testing, backend, datasets:
# strip only test suites and build sources there, and lxml: yfinance requires it but the ledger's calls never load it
# (its HTML pages go through html.parser; lxml serves only pandas.read_html, in a lookup the ledger does not make)
LEDGER_STRIP = {
    "dirs": {"tests", "__pycache__"},
    "suffixes": (".pyi", ".h", ".c", ".pxd", ".pyx", ".cpp", ".hpp"),
    "globs": ("lxml", "lxml-*.dist-info"),
}
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
            h.update(str(f.relative_to(ROOT) if f.is_relative_to(ROOT) else f).encode())
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


def compile_tree(root: Path, target: Target) -> None:
    """Byte-compile with the target's own CPython (a 3.11 .pyc is ignored by 3.13, which would then compile on every
    cold start), in a fresh interpreter: marshal's output depends on which strings the compiling process has
    already interned, so compiling in-process (under pytest, say) would change the bytes."""
    python = interpreter(target)
    cmd = [
        str(python),
        "-E",
        "-s",
        "-m",
        "compileall",
        "-q",
        "-j",
        "1",
        "-d",
        "/",
        "--invalidation-mode",
        py_compile.PycInvalidationMode.UNCHECKED_HASH.name.lower().replace("_", "-"),
        str(root),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0"})
    if r.returncode != 0:
        raise PackageError(f"byte-compiling {root} failed: {r.stdout[-500:]}{r.stderr[-500:]}")


@functools.lru_cache(maxsize=8)
def interpreter(target: Target) -> Path:
    """The CPython that compiles (and later runs) a build for `target`; looked for once (each probe runs it)."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == target.python:
        return Path(sys.executable)
    found = runtime_python.find(target.python)
    if found is None:
        raise PackageError(runtime_python.how_to_get(target.python))
    return found


def build_function(out: Path | None = None, target: Target | None = None) -> Path:
    target = target or Target.from_template()
    out = out or target.out_dir / FUNCTION_ZIP.name
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
        compile_tree(stage, target)
        write_zip(stage, out)
    return out


def strip(site: Path, dirs=STRIP_DIRS, suffixes=STRIP_SUFFIXES, globs=STRIP_GLOBS) -> int:
    """Delete what the runtime never imports; returns bytes saved."""
    saved = 0
    for pattern in globs:
        for path in site.glob(pattern):
            if path.is_dir():
                saved += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                shutil.rmtree(path)
            else:
                saved += path.stat().st_size
                path.unlink()
    for path in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if not path.exists():
            continue
        rel = path.relative_to(site)
        drop = False
        if path.is_dir() and path.name in dirs and not rel.parts[0].endswith(".dist-info"):
            drop = True
        elif path.is_file() and path.suffix in suffixes and not rel.parts[0].endswith(".dist-info"):
            drop = True
        elif path.is_file() and rel.parts[0].endswith(".dist-info") and path.name not in KEEP_IN_DIST_INFO:
            drop = True
        elif path.is_dir() and path.name == "bin":
            drop = True
        if drop:
            saved += sum(f.stat().st_size for f in ([path] if path.is_file() else path.rglob("*")) if f.is_file())
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return saved


def build_layer(
    out: Path | None = None,
    quiet: bool = False,
    target: Target | None = None,
    requirements: Path = REQUIREMENTS,
    resolve: bool = False,
    byte_compile: bool = True,
) -> Path:
    """The layer's wheels for the target. `resolve` lets pip add dependencies (the ledger's ranges); the predict layer
    pins every package, so it is --no-deps. `byte_compile` off ships sources only (the ledger layer: its .pyc would
    push it past Lambda's 250 MB)."""
    target = target or Target.from_template()
    out = out or target.out_dir / LAYER_ZIP.name
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "python"
        if not target.deployable and requirements == REQUIREMENTS:
            # a local-only build (no CPython for the Runtime here): the pins may have no wheel for this Python, so
            # take the newest that does; local_api.py says plainly that this is not the deployed runtime
            loose = Path(tmp) / "requirements-local.txt"
            names = [
                line.split("==")[0].strip()
                for line in requirements.read_text().splitlines()
                if line.strip() and not line.startswith("#")
            ]
            loose.write_text("\n".join(names) + "\n")
            requirements = loose
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            *([] if resolve else ["--no-deps"]),
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
            str(site),
            *target.pip_args(),
            "-r",
            str(requirements),
        ]
        if not quiet:
            print(f"  pip install ({target}, manylinux_2_28 or older) -r {requirements.name}", flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            tail = "\n".join(r.stderr.strip().splitlines()[-5:])
            raise PackageError(
                f"pip could not fetch the layer's wheels for {target} (is PyPI reachable? does every pin "
                f"in {requirements.name} have a {target.abi} wheel?):\n{tail}"
            )
        saved = strip(site, **(LEDGER_STRIP if resolve else {}))
        if not quiet:
            print(
                f"  stripped {saved / MB:.1f} MB of tests, headers, stubs, onnxruntime's unused C API library and tooling",
                flush=True,
            )
        if byte_compile:
            compile_tree(site, target)
        write_zip(site.parent, out)
    return out


def build_ledger_function(out: Path | None = None, target: Target | None = None) -> Path:
    """ledger/ and the models/ modules it imports, byte-compiled for the runtime: the daily job's code."""
    target = target or Target.from_template()
    out = out or target.out_dir / LEDGER_FUNCTION_ZIP.name
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        for src in ledger_inputs()[:-1]:
            dest = stage / src.relative_to(ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
        compile_tree(stage, target)
        write_zip(stage, out)
    return out


def ledger_inputs() -> list[Path]:
    """The ledger function's sources, then its requirements (the layer's input)."""
    ledger = sorted((ROOT / "ledger").glob("*.py"))
    return ledger + [ROOT / "models" / m for m in LEDGER_MODELS] + [LEDGER_REQUIREMENTS]


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


def ledger_report(fn: Path, layer: Path) -> list[str]:
    """The ledger function against Lambda's 250 MB unzipped (function and layer together); the limits exceeded."""
    total = unzipped_size(fn) + unzipped_size(layer)
    ok = total <= LAMBDA_UNZIPPED_LIMIT
    print(
        f"  ledger          {fn.stat().st_size / MB:7.2f} MB function + {layer.stat().st_size / MB:.2f} MB layer zipped; "
        f"{total / MB:.2f} MB unzipped of {LAMBDA_UNZIPPED_LIMIT / MB:.0f} MB  {'ok' if ok else 'OVER'}"
    )
    return [] if ok else [f"the ledger function and layer unzip to {total / MB:.2f} MB, over Lambda's 250 MB"]


def glibc_needed(layer_zip: Path) -> dict[str, tuple[int, int]]:
    """Highest GLIBC_x.y symbol version each shared object in the layer requires (readelf -V)."""
    import re

    readelf = shutil.which("readelf")
    if readelf is None:
        raise PackageError("readelf is not installed (Debian: apt-get install binutils); it checks the layer's glibc needs")
    out: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(layer_zip) as zf:
        for name in zf.namelist():
            if not re.search(r"\.so(\.[\d.]+)?$", name):
                continue
            path = Path(zf.extract(name, tmp))
            r = subprocess.run([readelf, "-V", "-W", str(path)], capture_output=True, text=True)
            versions = [tuple(map(int, v)) for v in re.findall(r"Name: GLIBC_(\d+)\.(\d+)", r.stdout)]
            out[name] = max(versions, default=(0, 0))
    return out


def unzipped_size(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return sum(i.file_size for i in zf.infolist())


def report(function_zip: Path, layer_zip: Path) -> list[str]:
    """Print each size against its limit; return the limits exceeded."""
    sizes = {
        "function_zip": function_zip.stat().st_size,
        "layer_zip": layer_zip.stat().st_size,
        "unzipped_total": unzipped_size(function_zip) + unzipped_size(layer_zip),
    }
    failures = []
    for key, size in sizes.items():
        limit = LIMITS[key]
        ok = size <= limit
        print(
            f"  {key:15s} {size / MB:7.2f} MB  of {limit / MB:5.0f} MB  {'ok' if ok else 'OVER'}"
            f"{'  (Lambda allows 250 MB)' if key == 'unzipped_total' else ''}"
        )
        if not ok:
            failures.append(f"{key} is {size / MB:.2f} MB, over the {limit / MB:.0f} MB limit")
    for z in (function_zip, layer_zip):
        print(f"  sha256 {z.name:20s} {sha256_file(z)}")
    return failures


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


def check_glibc(layer_zip: Path) -> list[str]:
    needs = glibc_needed(layer_zip)
    worst = max(needs.values(), default=(0, 0))
    over = {n: v for n, v in needs.items() if v > MAX_GLIBC}
    print(
        f"  glibc needed  {worst[0]}.{worst[1]} at most, across {len(needs)} shared objects "
        f"(Amazon Linux 2023 has {MAX_GLIBC[0]}.{MAX_GLIBC[1]})"
    )
    return [
        f"{n} needs GLIBC_{v[0]}.{v[1]}, newer than Amazon Linux 2023's {MAX_GLIBC[0]}.{MAX_GLIBC[1]}"
        for n, v in sorted(over.items())
    ]


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
    print(f"ok: both packages for {target} are within their limits ({where})")
    if target.arch == "arm64":
        print("note: nothing on this machine can run arm64 code; this build is checked for size and glibc only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
