"""The README against what is true: `make help` and the README say the same thing."""

from __future__ import annotations

import subprocess


def test_make_help_and_the_readme_agree(root):
    """`make help` and the README name the same runs (experiments.RUNS) and the same training time."""
    import re

    from models.experiments import RUNS

    make = subprocess.run(["make", "-s", "help"], capture_output=True, text=True, cwd=root).stdout
    readme = (root / "README.md").read_text()
    runs = "runs " + ", ".join(list(RUNS)[:-1]) + " and " + list(RUNS)[-1]  # "runs A, A0, B and C"
    assert runs in make and runs in readme
    train_help = next(line for line in make.splitlines() if line.strip().startswith("make train "))
    seconds = set(re.findall(r"about (\d+) s", train_help))
    mentioned = set(re.findall(r"`?make train`?\s.{0,60}?(?:about |takes (?:about )?)(\d+) s", readme))
    assert len(seconds) == 1 and mentioned == seconds, (train_help, mentioned)
