"""Find the CPython that the template's Runtime names, so the function is built, tested and run on it.

    python lambda/runtime_python.py            # print the interpreter for the template's Runtime, or how to get one
    python lambda/runtime_python.py --venv     # create/refresh .venv-fn on it: the layer's exact pins + test tools

Lambda's python3.13 is CPython 3.13; a function tested on 3.11 proves little about it. The interpreter is looked
for where a user would expect it: $FUNCTION_PYTHON, then python3.13 on PATH, then pyenv's versions.
.venv-fn holds lambda/requirements.txt exactly (what the layer ships) plus requirements-function.txt (pytest and
the runtime client), so the function's tests import what the deployed function imports.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

LAMBDA_DIR = Path(__file__).resolve().parent
ROOT = LAMBDA_DIR.parent
sys.path.insert(0, str(LAMBDA_DIR))

import settings  # noqa: E402

FN_VENV = Path(os.environ.get("FUNCTION_VENV") or ROOT / ".venv-fn")
REQUIREMENTS = [LAMBDA_DIR / "requirements.txt", ROOT / "requirements-function.txt"]


def version_of(runtime: str) -> str:
    """ "python3.13" -> "3.13"."""
    if not runtime.startswith("python3."):
        raise ValueError(f"not a Lambda Python runtime: {runtime!r}")
    return runtime.removeprefix("python")


def template_version() -> str:
    return version_of(settings.function_settings()["Runtime"])


def _reports(path: str | Path, version: str) -> bool:
    """True when `path` runs and is CPython `version` (a pyenv shim for an unselected version fails here)."""
    try:
        r = subprocess.run(
            [str(path), "-c", "import sys, platform; print(platform.python_implementation(), '%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and r.stdout.split() == ["CPython", version]


def _pyenv_root() -> Path | None:
    env = os.environ.get("PYENV_ROOT")
    if env:
        return Path(env)
    exe = shutil.which("pyenv")
    if exe:
        r = subprocess.run([exe, "root"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            return Path(r.stdout.strip())
    home = Path.home() / ".pyenv"
    return home if home.exists() else None


def candidates(version: str) -> list[tuple[str, Path]]:
    """(where it came from, path), in the order a user would expect them to win."""
    out: list[tuple[str, Path]] = []
    if os.environ.get("FUNCTION_PYTHON"):
        out.append(("$FUNCTION_PYTHON", Path(os.environ["FUNCTION_PYTHON"])))
    on_path = shutil.which(f"python{version}")
    if on_path:
        out.append((f"python{version} on PATH", Path(on_path)))
    root = _pyenv_root()
    if root:
        found = sorted(
            glob.glob(str(root / "versions" / f"{version}.*" / "bin" / f"python{version}")),
            key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parts[-3].split(".")],
            reverse=True,
        )
        out += [("pyenv", Path(p)) for p in found]
    return out


def find(version: str) -> Path | None:
    for origin, path in candidates(version):
        if _reports(path, version):
            return path
        if origin == "$FUNCTION_PYTHON":
            raise SystemExit(f"FUNCTION_PYTHON={path} is not a working CPython {version}; unset it or point it at one")
    return None


def how_to_get(version: str) -> str:
    return (
        f"no CPython {version} found (looked at $FUNCTION_PYTHON, python{version} on PATH and pyenv's versions). "
        f"Lambda's python{version} runtime is CPython {version}; install one with `pyenv install {version}`, "
        f"`apt-get install python{version}` where your distribution has it, or `uv python install {version}`, "
        f"or set FUNCTION_PYTHON=/path/to/python{version}"
    )


def venv_python(venv: Path = FN_VENV) -> Path:
    return venv / "bin" / "python"


def _digest() -> str:
    h = hashlib.sha256()
    for f in REQUIREMENTS:
        h.update(f.read_bytes())
    return h.hexdigest()


def ensure_venv(version: str | None = None, venv: Path = FN_VENV, quiet: bool = False) -> Path:
    """.venv-fn on CPython `version` with the layer's exact pins; reinstalled only when a requirements file changes."""
    version = version or template_version()
    py = venv_python(venv)
    stamp = venv / ".stamp"
    if py.exists() and _reports(py, version) and stamp.exists() and stamp.read_text() == _digest():
        return py
    base = find(version)
    if base is None:
        raise SystemExit(f"runtime_python: {how_to_get(version)}")
    if not (py.exists() and _reports(py, version)):
        shutil.rmtree(venv, ignore_errors=True)
        if not quiet:
            print(f"creating {venv.name} on {base} (CPython {version}, the function's runtime)", flush=True)
        subprocess.run([str(base), "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    args = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for f in REQUIREMENTS:
        args += ["-r", str(f)]
    if not quiet:
        print(f"installing the layer's pins and the function's test tools into {venv.name}", flush=True)
    r = subprocess.run(args)
    if r.returncode != 0:
        raise SystemExit(
            f"runtime_python: pip could not install {', '.join(f.name for f in REQUIREMENTS)} into {venv} (is PyPI reachable?)"
        )
    stamp.write_text(_digest())
    return py


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--venv", action="store_true", help=f"create or refresh {FN_VENV.name} and print its python")
    p.add_argument("--version", default=None, help="CPython version (default: the template's Runtime)")
    args = p.parse_args(argv)
    version = args.version or template_version()
    if args.venv:
        print(ensure_venv(version))
        return 0
    path = find(version)
    if path is None:
        print(f"runtime_python: {how_to_get(version)}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
