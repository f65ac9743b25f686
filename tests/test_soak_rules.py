"""The soak's verdict (benchmarks/soak_common.flat): the issue's "within 10% of the first minute's", both ways, with
absolute floors; and the sections each soak condition keeps in BENCHMARKS.md."""

from __future__ import annotations

import pytest

from benchmarks.soak_common import flat, kept_sections, update_section


@pytest.mark.parametrize(
    ("first", "last", "ok"),
    [
        ([100, 100, 100], [109, 110, 108], True),  # +9%
        ([100, 100, 100], [112, 111, 115], False),  # +12%: a leak's direction
        ([100, 100, 100], [88, 87, 89], False),  # -12%: no steady state either
        ([100, 100, 100], [91, 92, 93], True),
        ([2.0, 2.0], [6.5, 6.9], True),  # a small series: within the absolute floor of 5
        ([2.0, 2.0], [7.5, 7.5], False),
    ],
)
def test_flat_is_within_ten_percent_either_way_or_the_floor(first, last, ok):
    assert flat(first, last, 0.10, 5.0)["ok"] is ok


def test_flat_without_samples_fails():
    assert flat([], [1.0], 0.10, 0.0)["ok"] is False


def test_each_soak_condition_keeps_its_own_section(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## Cold start\nfigures\n")
    update_section(md, "soak", "## Soak, idle\nA", script="soak")
    update_section(md, "soak_busy2", "## Soak, beside two busy loops\nB", script="soak")
    update_section(md, "soak", "## Soak, idle\nA2", script="soak")
    text = md.read_text()
    assert "A2" in text and "\nA\n" not in text and "\nB\n" in text and text.count("<!-- soak_busy2:") == 1
    kept = kept_sections(text)
    assert "A2" in kept and "\nB\n" in kept and "Cold start" not in kept
