"""Lambda's duration billing rule, in one place: the cost model, the local API's invocation log and the usage
summaries all bill a duration with `billed_ms`, so a figure on the dashboard and a line in the log agree."""

from __future__ import annotations

import math

GRANULARITY_MS = 1  # 1 ms billing since December 2020 (dashboard/pricing.json names the source)
FLOAT_SLACK_MS = 1e-9  # 2.0000000001 ms from float arithmetic is 2 ms, not 3


def billed_ms(duration_ms: float) -> int:
    """Milliseconds Lambda bills for one invocation's duration: rounded up to whole ms, and at least 1."""
    if duration_ms != duration_ms or duration_ms < 0:
        raise ValueError(f"a duration must be a number >= 0 ms, not {duration_ms!r}")
    return max(GRANULARITY_MS, math.ceil((duration_ms - FLOAT_SLACK_MS) / GRANULARITY_MS) * GRANULARITY_MS)
