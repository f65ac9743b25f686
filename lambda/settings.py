"""Read the function's settings from template.yaml, so that deploy.py, local_api.py and SAM agree.

CloudFormation's short tags (!Ref, !Sub, !GetAtt ...) become their long form ({"Ref": ...}); `resolve`
substitutes parameters (defaults, or the values deploy.py chooses).
"""
from __future__ import annotations

from pathlib import Path

import yaml

TEMPLATE = Path(__file__).resolve().parent / "template.yaml"
FUNCTION_RESOURCE = "ForecastFunction"
API_RESOURCE = "ForecastApi"


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


def parameter_defaults(template: dict) -> dict:
    return {k: v.get("Default") for k, v in template.get("Parameters", {}).items()}


def resolve(value, params: dict):
    """Replace {"Ref": parameter} with its value, recursively; other intrinsics are left alone."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in params:
            return params[value["Ref"]]
        return {k: resolve(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, params) for v in value]
    return value


def function_settings(template: dict | None = None, params: dict | None = None) -> dict:
    """Globals.Function merged with the function's own properties, parameters resolved."""
    template = template or load_template()
    merged_params = {**parameter_defaults(template), **(params or {})}
    glob = dict(template.get("Globals", {}).get("Function", {}))
    own = template["Resources"][FUNCTION_RESOURCE]["Properties"]
    settings = {**glob, **{k: v for k, v in own.items() if k not in ("Environment",)}}
    env = dict(glob.get("Environment", {}).get("Variables", {}))
    env.update(own.get("Environment", {}).get("Variables", {}))
    settings["Environment"] = {"Variables": env}
    return resolve(settings, merged_params)


def api_routes(template: dict | None = None) -> list[dict]:
    """[{path, method, api_key_required}] from the function's Api events."""
    template = template or load_template()
    routes = []
    for event in template["Resources"][FUNCTION_RESOURCE]["Properties"].get("Events", {}).values():
        if event.get("Type") != "Api":
            continue
        props = event["Properties"]
        routes.append({"path": props["Path"], "method": props["Method"].upper(),
                       "api_key_required": bool(props.get("Auth", {}).get("ApiKeyRequired", False))})
    return sorted(routes, key=lambda r: (r["path"], r["method"]))


def resources_of_type(template: dict, type_name: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == type_name}
