"""How each Lambda zip is made: the function, the layer and the ledger's, byte for byte reproducible."""

from __future__ import annotations

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

import runtime_python
import settings

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
        """Built for the template's Runtime: what the deployer and SAM upload."""
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
    return saved + prune_records(site)


def prune_records(site: Path) -> int:
    """Keep only the RECORD lines of files that ship. pip's RECORD also lists what it wrote outside the package,
    above all the console scripts in bin/ (`../../bin/f2py,sha256=...`), whose shebang is the installing
    interpreter's path: left in, the layer's bytes would depend on the folder it was built in. Lines for files
    stripped above would only make RECORD lie about the layer. Returns bytes saved."""
    saved = 0
    for record in site.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        kept = []
        for line in lines:
            name = line.split(",", 1)[0].strip('"')
            target = (site / name).resolve()
            if target.is_relative_to(site.resolve()) and target.is_file():
                kept.append(line)
        if len(kept) != len(lines):
            text = "".join(kept)
            saved += record.stat().st_size - len(text.encode())
            record.write_text(text)
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
            # take the newest that does; the local API says plainly that this is not the deployed runtime
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
