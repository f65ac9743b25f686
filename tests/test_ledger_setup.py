"""`make ledger` installs and imports no torch: the track record needs arch (its GARCH baseline), not the trainer.

The Makefile is read with `make -n` against a venv path that does not exist, so every install it would run is
printed and nothing is installed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest


def requirement_names(path: Path) -> set[str]:
    """Every package a requirements file names, following its `-r` includes (names lower-cased, extras dropped)."""
    names: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r"):
            names |= requirement_names(path.parent / line[2:].strip())
            continue
        names.add(re.split(r"[\[<>=!~;\s]", line, maxsplit=1)[0].lower())
    return names


def installed_by(root: Path, target: str, venv: Path) -> tuple[set[str], str]:
    """The packages `make <target>` would pip-install into a fresh venv, and the dry run's text."""
    out = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"], capture_output=True, text=True, cwd=root, check=True, timeout=60
    ).stdout
    files = re.findall(r"pip install .*?-r (\S+)", out)
    assert files, f"`make -n {target}` installs nothing:\n{out}"
    return set().union(*(requirement_names(root / f) for f in files)), out


def test_make_ledger_installs_arch_and_no_torch(root, tmp_path):
    names, out = installed_by(root, "ledger", tmp_path / "venv")
    assert "arch" in names and "exchange-calendars" in names, names
    assert not {"torch", "scikit-learn", "mlflow"} & names, f"`make ledger` would install the trainer's packages: {out}"
    assert "-m ledger.replay" in out


@pytest.mark.parametrize("target", ["setup-dev", "train", "evaluate"])
def test_training_and_the_test_setup_still_install_arch(root, tmp_path, target):
    """.ci/run's `make setup-dev` (tests/test_metrics.py fits GARCH) and training still get arch, through the ledger's file."""
    names, _ = installed_by(root, target, tmp_path / "venv")
    assert {"arch", "torch"} <= names, names


NO_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("the ledger's path imported torch")

sys.meta_path.insert(0, NoTorch())
import numpy as np
import ledger.aci, ledger.baselines, ledger.handler, ledger.live, ledger.read, ledger.replay, ledger.scoring
import local_api.__main__, package  # what the replay starts when no local API runs
from models import metrics

g = metrics.fit_garch(np.random.default_rng(0).normal(0, 0.01, 500))
assert 0 < g["alpha"] + g["beta"] < 1, g
print(sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "sklearn", "mlflow", "joblib"}))
"""


def test_the_ledger_path_imports_no_torch(root):
    """Every module `make ledger` runs, and a GARCH fit, with torch made unimportable (as in a venv without it)."""
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", NO_TORCH], capture_output=True, text=True, cwd=root, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout
