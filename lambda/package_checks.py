"""What a build must pass before it ships: sizes against Lambda's limits, the glibc the layer needs, the report."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from package_build import MB, PackageError, sha256_file

LIMITS = {  # ours, then Lambda's: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
    "function_zip": 5 * MB,  # our target for code + model
    "layer_zip": 50 * MB,  # Lambda's direct-upload limit for a zip
    "unzipped_total": 150 * MB,  # our target; Lambda allows 250 MB for function + layers unzipped
}
LAMBDA_UNZIPPED_LIMIT = 250 * MB
MAX_GLIBC = (2, 34)  # Amazon Linux 2023, which every supported Python runtime runs on


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
