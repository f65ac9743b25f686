"""Package size: the function and layer zips against the guide's recipe (torch + pandas + scikit-learn installed)."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.workspace import Bench


def measure(bench: Bench) -> None:
    import package

    site = Path(next(p for p in sys.path if p.endswith("site-packages")))

    def du(path: Path) -> int:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0

    guide = {
        name: du(site / name)
        for name in (
            "torch",
            "numpy",
            "pandas",
            "sklearn",
            "scipy",
            "joblib",
            "numpy.libs",
            "scipy.libs",
            "scikit_learn.libs",
            "torch.libs",
        )
    }
    bench.results["size"] = {
        "function_zip": bench.fn_zip.stat().st_size,
        "layer_zip": bench.layer_zip.stat().st_size,
        "unzipped_total": package.unzipped_size(bench.fn_zip) + package.unzipped_size(bench.layer_zip),
        "guide_unzipped": sum(guide.values()),
        "guide_parts": guide,
        "old311_layer_zip": bench.old_layer.stat().st_size,
        "old311_unzipped_total": package.unzipped_size(bench.old_fn) + package.unzipped_size(bench.old_layer),
    }
    s = bench.results["size"]
    bench.log(
        f"package size: ours {s['unzipped_total'] / 2**20:.0f} MB unzipped; the guide's torch + pandas + scikit-learn "
        f"{s['guide_unzipped'] / 2**20:.0f} MB"
    )
