"""Build the Lambda packages, reproducibly and within Lambda's limits, for the Runtime the template names.

    python lambda/package.py                 # dist/lambda_function.zip and dist/layer.zip (template's Runtime and arch)
    python lambda/package.py --arch arm64    # the same for Graviton (manylinux_2_28_aarch64 wheels); nothing here runs it
    python lambda/package.py --force         # rebuild even if the inputs are unchanged

dist/lambda_function.zip  lambda_handler.py + forecast/ + runtime/ (models/runtime), with .pyc compiled by the
                          runtime's own CPython (unchecked-hash: Lambda's read-only package cannot cache bytecode)
dist/layer.zip            python/ <- lambda/requirements.txt as cpXY wheels for manylinux_2_28 or older (Amazon
                          Linux 2023 has glibc 2.34), stripped of what the function never loads

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


def strip(site: Path) -> int:
    """Delete what the runtime never imports; returns bytes saved."""
    saved = 0
    for pattern in STRIP_GLOBS:
        for path in site.glob(pattern):
            saved += path.stat().st_size
            path.unlink()
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


def build_layer(
    out: Path | None = None, quiet: bool = False, target: Target | None = None, requirements: Path = REQUIREMENTS
) -> Path:
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
            "--no-deps",
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
        saved = strip(site)
        if not quiet:
            print(
                f"  stripped {saved / MB:.1f} MB of tests, headers, stubs, onnxruntime's unused C API library and tooling",
                flush=True,
            )
        compile_tree(site, target)
        write_zip(site.parent, out)
    return out


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
    p.add_argument("--python", default=None, help="CPython version for a local-only build (default: the template's Runtime)")
    args = p.parse_args(argv)
    default = Target.from_template(args.arch)
    target = dataclasses.replace(default, python=args.python) if args.python else default
    if args.force:
        (target.out_dir / STATE.name).unlink(missing_ok=True)
    fn, layer = ensure_built(force_layer=args.force, target=target)
    failures = report(fn, layer) + check_glibc(layer)
    if failures:
        raise PackageError("; ".join(failures) + ". Trim lambda/requirements.txt or the model, or pin older wheels.")
    where = "deployable" if target.deployable else "local only: not the template's Runtime"
    print(f"ok: both packages for {target} are within their limits ({where})")
    if target.arch == "arm64":
        print("note: nothing on this machine can run arm64 code; this build is checked for size and glibc only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
