"""Every parameter checked against template.yaml and AWS's documented bounds before anything is looked up or made."""

from __future__ import annotations

import math
import re

import settings

from . import lifecycle
from .aws import DeployError

# AWS's documented bounds that an emulator does not enforce (checked against AWS's English API references)
MEMORY_MB = (128, 10240)  # Lambda CreateFunction MemorySize
TIMEOUT_S = (1, 900)  # Lambda CreateFunction Timeout
FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # Lambda: a bare function name is at most 64 characters
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


def _number(name: str, value, whole: bool = False) -> float:
    try:
        n = float(value)
    except (TypeError, ValueError):
        raise DeployError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(n):  # NaN passes every Min/Max comparison; AWS refuses both
        raise DeployError(f"{name} must be a finite number, got {value!r}")
    if whole and n != int(n):
        raise DeployError(f"{name} must be a whole number (like its default), got {value!r}")
    return n


def check_parameter(name: str, spec: dict, value, template: dict) -> None:
    """One template parameter against its Type, AllowedValues, AllowedPattern, Min/MaxValue and Min/MaxLength."""
    if spec.get("Type") == "Number":
        n = _number(name, value, whole=isinstance(spec.get("Default"), int))
        if "MinValue" in spec and n < float(spec["MinValue"]):
            raise DeployError(f"{name} must be at least {spec['MinValue']}, got {value!r}")
        if "MaxValue" in spec and n > float(spec["MaxValue"]):
            raise DeployError(f"{name} must be at most {spec['MaxValue']}, got {value!r}")
    allowed = spec.get("AllowedValues")
    if allowed is not None and str(value) not in {str(v) for v in allowed}:
        raise DeployError(f"{name} must be one of {', '.join(str(v) for v in allowed)}; got {value!r}")
    text = str(value)
    if "MinLength" in spec and len(text) < int(spec["MinLength"]):
        raise DeployError(f"{name} must have at least {spec['MinLength']} characters, got {len(text)}")
    if "MaxLength" in spec and len(text) > int(spec["MaxLength"]):
        raise DeployError(f"{name} must have at most {spec['MaxLength']} characters, got {len(text)}")
    pattern = spec.get("AllowedPattern")
    if pattern and not re.fullmatch(pattern, text):
        why = spec.get("ConstraintDescription") or f"the template's pattern {pattern}"
        raise DeployError(f"{name} {text!r} is not allowed: it must match {why}")


def route_names(template: dict) -> set[str]:
    """The function's first path segments: a stage with one of these names would make /<stage>/<route> ambiguous."""
    return {r["path"].strip("/").split("/")[0] for r in settings.api_routes(template)}


def check_params(template: dict, params: dict) -> None:
    """Raise DeployError with a one-line reason for the first parameter the template or AWS would refuse."""
    specs = template.get("Parameters", {})
    unknown = sorted(set(params) - set(specs))
    if unknown:
        raise DeployError(f"unknown parameter {unknown[0]}: template.yaml declares {', '.join(sorted(specs))}")
    values = settings.params_with_defaults(template, params)
    stage = str(values.get("StageName", ""))
    if stage in route_names(template):
        raise DeployError(
            f"StageName {stage!r} is one of the API's routes ({', '.join(sorted(route_names(template)))}): "
            f"/{stage}/{stage} would not route; choose another stage name"
        )
    for name, spec in specs.items():
        if name in values and values[name] is not None:
            check_parameter(name, spec, values[name], template)
    days = int(_number("LogRetentionDays", values["LogRetentionDays"]))
    if days not in LOG_RETENTION_DAYS:
        raise DeployError(f"LogRetentionDays must be one of CloudWatch Logs' values {LOG_RETENTION_DAYS}; got {days}")


def check_function(cfg: dict) -> None:
    """The resolved function settings against Lambda's documented bounds."""
    lo, hi = MEMORY_MB
    if not lo <= cfg["MemorySize"] <= hi:
        raise DeployError(f"MemorySize must be {lo}-{hi} MB (Lambda's bounds), got {cfg['MemorySize']}")
    lo, hi = TIMEOUT_S
    if not lo <= cfg["Timeout"] <= hi:
        raise DeployError(f"Timeout must be {lo}-{hi} s (Lambda's bounds), got {cfg['Timeout']}")
    if not FUNCTION_NAME.fullmatch(cfg["FunctionName"]):
        raise DeployError(
            f"FunctionName {cfg['FunctionName']!r} is not a Lambda function name: letters, digits, - and _, at most 64 characters"
        )


def check_runtime(runtime: str, creating: bool, today=None) -> lifecycle.Verdict:
    """Refuse a runtime AWS blocks (or one runtimes.json does not know) before anything is created."""
    v = lifecycle.verdict(runtime, today=today, creating=creating)
    if v.blocked:
        raise DeployError(f"refusing to deploy: {v.message}. Nothing was created or changed.")
    return v
