"""`python -m deployer status`: versions with their checks, every front door found, canaries, alarms, the key, CloudWatch."""

from __future__ import annotations

from . import lifecycle, record
from .aws import Aws, Collision, bucket_name
from .front_doors import doors_found, url_config_of
from .release import alarm_states, get_alias, rollback_target, unwatched_canary, versions, weights
from .survey import Found, alarm_names, survey


def status(aws: Aws, p: dict, show_key: bool = False, hours: int = 24) -> dict:
    names = p["names"]
    out: dict = {
        "region": aws.region,
        "account": aws.account(),
        "stage": names["stage"],
        "deployed": False,
        "front_door": None,
        "warnings": [],
    }
    found = Found()
    try:
        found = survey(aws, p)
    except Collision as e:
        out["collision"] = str(e)
    rec = record.read(aws, p) if found.record else {"versions": {}, "live_history": [], "front_door": None}
    if found.function:
        c, alias = found.function, get_alias(aws, p)
        live, split = (alias or {}).get("FunctionVersion"), weights(alias)
        out["function"] = {
            "name": names["function"],
            "state": c.get("State", "Active"),
            "runtime": c["Runtime"],
            "memory_mb": c["MemorySize"],
            "timeout_s": c["Timeout"],
            "architectures": c.get("Architectures", ["x86_64"]),
            "tracing": c.get("TracingConfig", {}).get("Mode"),
            "code_size": c.get("CodeSize"),
            "alias": names["alias"],
            "alias_version": live,
            "canary": split,
            "versions": [
                {
                    "version": v["Version"],
                    "model": v.get("Description", "").removeprefix("model "),
                    "date": v.get("LastModified"),
                    "live": v["Version"] == live,
                    "canary_share": split.get(v["Version"]),
                    "check": rec["versions"].get(v["Version"], "unrecorded"),
                }
                for v in versions(aws, names["function"])
            ],
            "layers": [layer["Arn"] for layer in c.get("Layers", [])],
            "runtime_support": lifecycle.verdict(c["Runtime"], creating=False).message,
            "snapstart": (c.get("SnapStart") or {}).get("ApplyOn", "None"),
        }
        out["function"]["rollback_to"] = rollback_target(live or "", rec["versions"], rec.get("live_history", []))
        problem = unwatched_canary(aws, p, alias)
        if problem:
            out["warnings"].append(problem)
    doors = doors_found(aws, p, found)
    out["front_doors"] = doors
    if len(doors) > 1:
        out["warnings"].append(
            f"{len(doors)} front doors exist ({', '.join(doors)}): a switch was interrupted; the next deploy keeps "
            f"{rec.get('front_door') or 'the one you name with --api'} and removes the others"
        )
    door = rec.get("front_door") if rec.get("front_door") in doors else next(iter(doors), None)
    if door:
        out["front_door"], out["url"] = door, doors[door]
        if door == "url":
            out["api"] = {"auth": url_config_of(aws, p, found)["AuthType"]}
        else:
            api_id = found.rest_api["id"] if door == "rest" else found.http_api["ApiId"]
            routes = p["routes"] if door == "rest" else p["http"]["routes"]
            out["api"] = {"id": api_id, "name": names["api"], "routes": routes}
    if found.usage_plan:
        out["usage_plan"] = {
            "id": found.usage_plan["id"],
            "throttle": found.usage_plan.get("throttle"),
            "quota": found.usage_plan.get("quota"),
        }
    if found.api_key:
        out["api_key"] = {"id": found.api_key["id"], "enabled": found.api_key.get("enabled")}
    if found.key_value:
        out.setdefault("api_key", {})["kept_in"] = f"ssm:{names['key_parameter']}"
        if show_key:
            out["api_key"]["value"] = found.key_value
    try:
        out["alarms"] = alarm_states(aws, alarm_names(p))
    except aws.exc.ClientError:
        out["alarms"] = {}
    out["bucket"] = bucket_name(aws, names["project"]) if found.bucket else None
    if found.function:
        from models.cloudwatch import cloudwatch_usage

        out["metrics"] = cloudwatch_usage(aws("cloudwatch"), names["function"], hours)
    out["deployed"] = bool(found.function and out["front_door"])
    out["ledger"] = ledger_status(aws, p, found)
    return out


def ledger_status(aws: Aws, p: dict, found: Found) -> dict:
    """The ledger's resources that exist (Ledger=on made them), with the schedule's time and the alarms' states."""
    names = p["names"]
    out = {
        "table": names["ledger_table"] if found.ledger_table else None,
        "function": names["ledger_function"] if found.ledger_function else None,
        "dead_letter_queue": names["ledger_queue"] if found.ledger_queue else None,
        "schedule": None,
        "alarms": {a["AlarmName"]: a["StateValue"] for a in found.ledger_alarms},
    }
    if found.schedule_group:
        try:
            s = aws("scheduler").get_schedule(Name=names["schedule"], GroupName=names["schedule_group"])
            when = f"{s['ScheduleExpression']} {s['ScheduleExpressionTimezone']}"
            out["schedule"] = f"{names['schedule_group']}/{s['Name']}: {when}"
        except aws.exc.ClientError:
            out["schedule"] = f"{names['schedule_group']} (no schedule in it)"
    return out


def print_status(s: dict) -> None:
    print(f"region {s['region']}, account {s['account']}, stage {s['stage']}: {'deployed' if s['deployed'] else 'not deployed'}")
    if s.get("collision"):
        print(f"  WARNING   {s['collision']}")
    for w in s.get("warnings", []):
        print(f"  WARNING   {w}")
    f = s.get("function")
    if f:
        snap = "off" if f["snapstart"] == "None" else f["snapstart"]
        print(
            f"  function  {f['name']} {f['state']} {f['runtime']} {f['architectures'][0]} "
            f"{f['memory_mb']} MB {f['timeout_s']} s, "
            f"tracing {f['tracing']}, SnapStart {snap}; alias {f['alias']} -> version {f['alias_version']}"
            + (f" (canary: {f['canary']})" if f.get("canary") else "")
        )
        print(f"  runtime   {f['runtime_support']}")
        for v in f["versions"]:
            mark = "live" if v["live"] else (f"canary {v['canary_share']:.0%}" if v.get("canary_share") else "")
            print(f"  version   {v['version']:>4}  model {v['model']:<28} {v['date']}  check {v['check']:<10} {mark}")
    else:
        print("  function  none")
    doors = s.get("front_doors") or {}
    if not doors:
        print("  front     none")
    for door, url in doors.items():
        print(f"  front     {door}: {url}" + ("  (live)" if door == s.get("front_door") and len(doors) > 1 else ""))
    if s.get("usage_plan"):
        u = s["usage_plan"]
        print(f"  plan      throttle {u['throttle']}, quota {u['quota']}")
    if s.get("api_key"):
        k = s["api_key"]
        print(
            f"  key       {k.get('id', '(function checks it)')}, value in {k.get('kept_in', '?')}"
            + (f": {k['value']}" if k.get("value") else "")
        )
    print(f"  bucket    {s['bucket'] or 'none'}")
    for a, st in (s.get("alarms") or {}).items():
        print(f"  alarm     {a}: {st}")
    led = s.get("ledger") or {}
    if any(led.get(k) for k in ("table", "function", "dead_letter_queue", "schedule")):
        print(
            f"  ledger    table {led['table'] or 'none'}, function {led['function'] or 'none'}, "
            f"dead-letter queue {led['dead_letter_queue'] or 'none'}"
        )
        print(f"  schedule  {led['schedule'] or 'none'}")
        for a, st in led["alarms"].items():
            print(f"  alarm     {a}: {st}")
    else:
        print("  ledger    none (deploy --ledger on)")
    m = s.get("metrics") or {}
    if m:
        print(
            f"  last {m['hours']} h  invocations {m['invocations']:.0f}, errors {m['errors']:.0f}, throttles "
            f"{m['throttles']:.0f}, duration avg {m['duration'] or 0:.1f} ms"
        )
