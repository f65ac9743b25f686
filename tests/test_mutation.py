"""scripts/mutation.py: the lists it reads are runnable as written, and a run never touches the working tree."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import mutation  # noqa: E402

ENTRY = {
    "id": "x",
    "file": "models/metrics.py",
    "find": "k = min(n, math.ceil((n + 1) * level))",
    "replace": "k = min(n, math.ceil(n * level))",
    "interpreter": "main",
    "tests": ["tests/test_metrics.py", "-k", "conformal"],
}


def write(tmp_path: Path, *entries: dict) -> Path:
    import yaml

    path = tmp_path / "area.yaml"
    path.write_text(yaml.safe_dump(list(entries)))
    return path


def test_every_committed_list_is_runnable_as_written():
    """Each `find` occurs exactly once in its file today: a refactor that moves the code must move the mutation too."""
    lists = sorted((ROOT / "tests" / "mutations").glob("*.yaml"))
    assert lists, "no mutation lists"
    mutations = mutation.load(lists)
    assert {"function", "metrics"} <= {m.area for m in mutations}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"find": "return float(np.mean("}, "occurs [2-9] times"),
        ({"find": "no such text"}, "occurs 0 times"),
        ({"replace": ENTRY["find"]}, "equals `find`"),
        ({"interpreter": "py2"}, "interpreter must be one of"),
        ({"tests": []}, "non-empty list"),
        ({"file": "models/nope.py"}, "does not exist"),
        ({"extra": 1}, "needs exactly the fields"),
    ],
)
def test_a_malformed_entry_is_refused_naming_what_is_wrong(tmp_path, change, message):
    with pytest.raises(mutation.ListError, match=message):
        mutation.load([write(tmp_path, {**ENTRY, **change})])


def test_duplicate_ids_are_refused(tmp_path):
    with pytest.raises(mutation.ListError, match="used twice"):
        mutation.load([write(tmp_path, ENTRY, {**ENTRY, "replace": "k = n"})])


def test_a_run_reports_caught_and_survived_and_leaves_the_tree_alone(tmp_path, capsys):
    survivor = {**ENTRY, "id": "comment", "find": "# nominal coverage of the served", "replace": "# nominal coverage, served"}
    path = write(tmp_path, ENTRY, survivor)
    before = hashlib.sha256((ROOT / ENTRY["file"]).read_bytes()).hexdigest()
    assert mutation.main([str(path), "--threshold", "60", "--no-baseline"]) == 1  # 1 of 2 caught: 50% is below 60%
    out = capsys.readouterr().out
    assert "caught" in out and "SURVIVED" in out and "area/comment" in out
    assert "kill rate 50.0% (1 of 2)" in out
    assert hashlib.sha256((ROOT / ENTRY["file"]).read_bytes()).hexdigest() == before
