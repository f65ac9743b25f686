"""Release: publish a version, check it, move `live` (at once or through a watched canary), and roll back.

Every version's post-publish verdict is recorded (passed, failed, unchecked), so rollback can only go to a version
that passed, and by default to the one `live` was on before. A canary is recorded while it runs: a rollback
cancels it, the canary re-reads the alias before promoting, and one whose watcher died is found and repaired.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from . import record
from .aws import Aws, DeployError, say, tag_list
from .plan import canary_alarm_configs
from .steps import Context

EVENTS = Path(__file__).resolve().parents[1] / "lambda" / "events"  # the sample events the function is checked with
CANARY_GRACE_S = 120  # a canary this far past its end with traffic still split has lost its watcher
clock, sleep = time.time, time.sleep  # the canary's time; tests drive it


def versions(aws: Aws, function: str) -> list[dict]:
    lam, out, marker = aws("lambda"), [], None
    while True:
        page = lam.list_versions_by_function(FunctionName=function, **({"Marker": marker} if marker else {}))
        out += [v for v in page["Versions"] if v["Version"] != "$LATEST"]
        marker = page.get("NextMarker")
        if not marker:
            return sorted(out, key=lambda v: int(v["Version"]))


def get_alias(aws: Aws, p: dict) -> dict | None:
    try:
        return aws("lambda").get_alias(FunctionName=p["names"]["function"], Name=p["names"]["alias"])
    except aws.exc.ClientError as e:
        if not aws.missing(e):
            raise
        return None


def weights(alias: dict | None) -> dict:
    return ((alias or {}).get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


def set_alias(aws: Aws, p: dict, version: str, routing: dict | None = None) -> None:
    """Point `live` at `version` (plus a canary share), and remember where it went."""
    lam, names = aws("lambda"), p["names"]
    args = {"FunctionName": names["function"], "Name": names["alias"], "FunctionVersion": version}
    cfg = {"AdditionalVersionWeights": routing or {}}
    try:
        lam.update_alias(**args, RoutingConfig=cfg)
    except aws.exc.ClientError as e:
        if not aws.missing(e):
            raise
        lam.create_alias(**args, RoutingConfig=cfg)
    r = record.read(aws, p)
    history = r["live_history"] if r["live_history"][-1:] == [version] else r["live_history"] + [version]
    record.update(aws, p, live_history=history, canary=r["canary"] if routing else None)


def step_publish(ctx: Context, manifest: dict) -> str:
    lam, names = ctx.aws("lambda"), ctx.plan["names"]
    alias = get_alias(ctx.aws, ctx.plan)
    ctx.previous_version = alias["FunctionVersion"] if alias else None
    ctx.version = lam.publish_version(FunctionName=names["function"], Description=f"model {manifest['version']}")["Version"]
    ctx.alias_arn = f"arn:aws:lambda:{ctx.aws.region}:{ctx.aws.account()}:function:{names['function']}:{names['alias']}"
    before = ctx.previous_version or "nothing yet"
    return f"published version {ctx.version} (model {manifest['version']}); `{names['alias']}` is still on {before}"


def verify_version(lam, function: str, version: str) -> list[str]:
    """Invoke the new version itself (not the alias) with the direct-invoke sample and a /health event."""
    checks = [
        (
            "direct invoke (direct_invoke.json)",
            json.loads((EVENTS / "direct_invoke.json").read_text()),
            lambda a: isinstance(a, dict) and isinstance(a.get("prediction"), int | float),
        ),
        (
            "GET /health (http_v2_health.json)",
            json.loads((EVENTS / "http_v2_health.json").read_text()),
            lambda a: isinstance(a, dict) and a.get("statusCode") == 200,
        ),
    ]
    failures = []
    for what, event, ok in checks:
        r = lam.invoke(FunctionName=function, Qualifier=version, Payload=json.dumps(event).encode())
        raw = r["Payload"].read()
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = raw.decode(errors="replace")
        if r.get("FunctionError") or not ok(answer):
            failures.append(f"{what}: {r.get('FunctionError') or 'unexpected answer'}: {str(answer)[:400]}")
    return failures


def step_verify(ctx: Context, verify: bool) -> str:
    """Check the new version and record the verdict: rollback only ever goes to a version that passed."""
    names = ctx.plan["names"]
    if not verify:
        _verdict(ctx, "unchecked")
        return f"version {ctx.version} not invoked (--no-verify): recorded as unchecked, so rollback will not offer it"
    failures = verify_version(ctx.aws("lambda"), names["function"], ctx.version)
    _verdict(ctx, "failed" if failures else "passed")
    if failures:
        keep = ctx.previous_version or "no version (it was never moved)"
        raise DeployError(
            f"version {ctx.version} did not answer as it must, so `{names['alias']}` stays on {keep}:\n  " + "\n  ".join(failures)
        )
    return f"version {ctx.version} answers the direct-invoke sample and /health (recorded as passed)"


def _verdict(ctx: Context, verdict: str) -> None:
    r = record.read(ctx.aws, ctx.plan)
    record.update(ctx.aws, ctx.plan, versions={**r["versions"], ctx.version: verdict})


def alarm_states(aws: Aws, names: list[str]) -> dict:
    return {a["AlarmName"]: a["StateValue"] for a in aws("cloudwatch").describe_alarms(AlarmNames=names).get("MetricAlarms", [])}


def version_5xx(aws: Aws, p: dict, version: str, since_ms: int) -> int:
    """5xx answers of one version, from its own EMF lines (Lambda names each log stream `YYYY/MM/DD/[version]...`)."""
    logs, group, count = aws("logs"), p["names"]["log_group"], 0
    days = {datetime.fromtimestamp(t / 1000, UTC).strftime("%Y/%m/%d") for t in (since_ms, int(clock() * 1000))}
    for day in sorted(days):
        kwargs = {"logGroupName": group, "logStreamNamePrefix": f"{day}/[{version}]", "startTime": since_ms}
        try:
            for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
                for e in page.get("events", []):
                    if not e.get("logStreamName", "").startswith(kwargs["logStreamNamePrefix"]):
                        continue  # moto ignores the prefix; AWS applies it
                    try:
                        line = json.loads(e["message"])
                    except ValueError:
                        continue
                    count += isinstance(line, dict) and isinstance(line.get("status"), int) and line["status"] >= 500
        except aws.exc.ClientError as e:
            if not aws.missing(e):
                raise
    return count


def step_alias(ctx: Context, canary: float | None, canary_minutes: float, poll_s: float = 30.0) -> str:
    """Move `live` to the new version - at once, or through a canary watched on the new version's own metrics."""
    aws, p, names = ctx.aws, ctx.plan, ctx.plan["names"]
    if not canary or ctx.previous_version is None:
        set_alias(aws, p, ctx.version)
        return f"alias {names['alias']} -> version {ctx.version}" + (" (first deploy: no canary)" if canary else "")
    share, primary, version = canary / 100, ctx.previous_version, ctx.version
    watched = canary_alarm_configs(p["alarms"], names["function"], names["alias"], version)
    for a in watched:
        aws("cloudwatch").put_metric_alarm(**a, Tags=tag_list(p["tags"]))
    start = clock()
    until = start + canary_minutes * 60
    record.update(aws, p, canary={"version": version, "primary": primary, "weight": share, "until": until})
    set_alias(aws, p, primary, {version: share})
    alarm_names = [a["AlarmName"] for a in watched] + [a["AlarmName"] for a in p["alarms"] if a["Namespace"] != "AWS/Lambda"]
    say(
        "canary",
        f"{canary:g}% of {names['alias']} goes to version {version}, the rest to {primary}; watching {', '.join(alarm_names)} "
        f"and version {version}'s own 5xx lines for {canary_minutes:g} min",
    )
    try:
        while True:
            states = alarm_states(aws, alarm_names)
            firing = sorted(n for n, s in states.items() if s == "ALARM")
            errors = version_5xx(aws, p, version, int(start * 1000))
            if errors:
                firing.append(f"{errors} answers of 5xx from version {version}")
            alias = get_alias(aws, p)
            if alias is None or alias["FunctionVersion"] != primary or weights(alias) != {version: share}:
                raise DeployError(
                    f"canary aborted: `{names['alias']}` was changed by someone else while version {version} was on canary "
                    f"(it is now on {alias and alias['FunctionVersion']} with {weights(alias) or 'no split'}); left as it is"
                )
            if firing:
                set_alias(aws, p, primary)
                raise DeployError(
                    f"canary rolled back: {', '.join(firing)} while version {version} took {canary:g}% of traffic; "
                    f"`{names['alias']}` is back on version {primary} only"
                )
            left = until - clock()
            if left <= 0:
                break
            say("canary", f"{left / 60:.1f} min left; alarms: " + ", ".join(f"{n} {s}" for n, s in sorted(states.items())))
            sleep(min(poll_s, left))
    except KeyboardInterrupt:
        set_alias(aws, p, primary)
        raise DeployError(f"canary interrupted: `{names['alias']}` is back on version {primary} only") from None
    finally:
        _drop_canary_alarms(aws, watched)
    set_alias(aws, p, version)
    return f"canary passed: alias {names['alias']} -> version {version} (100%)"


def _drop_canary_alarms(aws: Aws, alarms: list[dict]) -> None:
    if alarms:
        aws("cloudwatch").delete_alarms(AlarmNames=[a["AlarmName"] for a in alarms])


def unwatched_canary(aws: Aws, p: dict, alias: dict | None = None) -> str | None:
    """A message when `live`'s traffic is split but no canary is watching it (its deploy was killed)."""
    alias = alias or get_alias(aws, p)
    if not weights(alias):
        return None
    c = record.read(aws, p)["canary"]
    if c and clock() < c["until"] + CANARY_GRACE_S:
        return None
    return (
        f"`{p['names']['alias']}` splits traffic {weights(alias)} beside version {alias['FunctionVersion']} and no canary is "
        "watching it (its deploy was interrupted); the next deploy or rollback puts it back on the primary"
    )


def repair_canary(aws: Aws, p: dict) -> str | None:
    """Put an unwatched split back on its primary (the version that was live before); refuse while a canary runs."""
    alias = get_alias(aws, p)
    if not weights(alias):
        return None
    problem = unwatched_canary(aws, p, alias)
    if problem is None:
        c = record.read(aws, p)["canary"]
        raise DeployError(
            f"a canary of version {c['version']} is running until {datetime.fromtimestamp(c['until'], UTC):%H:%M:%S} UTC; "
            "wait for it, or cancel it with `python -m deployer rollback`"
        )
    _drop_canary_alarms(aws, canary_alarm_configs(p["alarms"], p["names"]["function"], p["names"]["alias"], "0"))
    set_alias(aws, p, alias["FunctionVersion"])
    return f"repaired an unwatched canary: `{p['names']['alias']}` is back on version {alias['FunctionVersion']} only"


def rollback_target(current: str, verdicts: dict, history: list[str]) -> str | None:
    """The version `live` was on before `current` that passed its check; else the newest passed one older than it."""
    for v in reversed(history):
        if v != current and verdicts.get(v) == "passed":
            return v
    if not current.isdigit():  # $LATEST: no order to go back along
        return None
    older = [v for v in verdicts if verdicts[v] == "passed" and int(v) < int(current)]
    return max(older, key=int) if older else None


def rollback(aws: Aws, p: dict, to: str | None = None) -> dict:
    """Move `live` back to a version that passed its check; a canary in progress is cancelled (100% to the primary)."""
    names = p["names"]
    alias = get_alias(aws, p)
    if alias is None:
        raise DeployError(f"`{names['alias']}` does not exist yet: nothing to roll back")
    current = alias["FunctionVersion"]
    if current == "$LATEST" and to is None:
        raise DeployError(
            f"`{names['alias']}` points at $LATEST, not a published version, so there is no version before it: "
            "name one that passed its check with `rollback --to N`, or run `python -m deployer deploy` to publish one"
        )
    if weights(alias):  # a canary: cancelling it is the rollback
        c = record.read(aws, p)["canary"]
        set_alias(aws, p, current)
        _drop_canary_alarms(aws, canary_alarm_configs(p["alarms"], names["function"], names["alias"], "0"))
        say(
            "rollback",
            f"cancelled the canary of version {', '.join(weights(alias))}: `{names['alias']}` is on version {current} only",
        )
        return {"from": current, "to": current, "cancelled_canary": (c or {}).get("version") or next(iter(weights(alias)))}
    r = record.read(aws, p)
    known = [v["Version"] for v in versions(aws, names["function"])]
    if to is None:
        to = rollback_target(current, r["versions"], r["live_history"])
        if to is None:
            raise DeployError(
                f"`{names['alias']}` is on version {current} and no other version passed its check: nothing to roll back to"
            )
    if to not in known:
        raise DeployError(f"version {to} does not exist; versions: {', '.join(known)}")
    if r["versions"].get(to) != "passed":
        why = {"failed": "failed its post-publish check", "unchecked": "was never checked (--no-verify)"}.get(
            r["versions"].get(to), "has no recorded check"
        )
        ok = [v for v in known if r["versions"].get(v) == "passed"]
        raise DeployError(f"version {to} {why}; rollback goes only to versions that passed: {', '.join(ok) or 'none'}")
    set_alias(aws, p, to)
    say("rollback", f"alias {names['alias']}: version {current} -> {to}")
    return {"from": current, "to": to}
