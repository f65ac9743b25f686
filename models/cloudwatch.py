"""CloudWatch's view of the deployed function: the one reader that the deployer's status and the cost monitor share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.billing import billed_ms  # the one rounding rule


def cloudwatch_usage(cloudwatch, function_name: str, hours: int = 24) -> dict:
    """Invocations, Duration, Errors and Throttles of the deployed function over the last `hours`."""
    end = datetime.now(UTC) + timedelta(minutes=1)  # include the period still filling up
    start = end - timedelta(hours=hours)
    dims = [{"Name": "FunctionName", "Value": function_name}]
    out: dict = {"hours": hours}
    for metric, stat in (("Invocations", "Sum"), ("Errors", "Sum"), ("Throttles", "Sum"), ("Duration", "Average")):
        r = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName=metric,
            Dimensions=dims,
            StartTime=start,
            EndTime=end,
            Period=3600,
            Statistics=[stat],
        )
        pts = [p[stat] for p in r.get("Datapoints", [])]
        out[metric.lower()] = (sum(pts) / len(pts) if pts else None) if stat == "Average" else float(sum(pts))
    out["projected_requests_per_day"] = out["invocations"] / hours * 24
    out["billed_mean_ms"] = billed_ms(out["duration"]) if out["duration"] else None
    return out
