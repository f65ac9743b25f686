"""Read the function's settings from template.yaml, so that the deployer, the local API and SAM agree.

CloudFormation's short tags (!Ref, !Sub, !GetAtt ...) become their long form ({"Ref": ...}); `resolve`
substitutes parameters (defaults, or the values the deployer chooses).
"""

from __future__ import annotations

from pathlib import Path

import yaml

TEMPLATE = Path(__file__).resolve().parent / "template.yaml"
FUNCTION_RESOURCE = "ForecastFunction"


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


# the front doors a deploy may choose: the template's FrontDoor parameter is their one definition
# (dashboard/costs.py reads the same list from the same file)
FRONT_DOORS: tuple[str, ...] = tuple(load_template()["Parameters"]["FrontDoor"]["AllowedValues"])


def parameter_defaults(template: dict) -> dict:
    return {k: v.get("Default") for k, v in template.get("Parameters", {}).items()}


def resolve(value, params: dict):
    """Replace {"Ref": parameter} and {"Fn::Sub": "...${Parameter}..."} with their values, recursively; other
    intrinsics (and Subs naming resources) are left alone."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in params:
            return params[value["Ref"]]
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            import re

            names = re.findall(r"\$\{([^}!]+)\}", value["Fn::Sub"])
            if all(n in params for n in names):
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(params[m.group(1)]), value["Fn::Sub"])
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
    """[{path, method, api_key_required}] from the REST API's OpenAPI body: the one route table (the HTTP API's
    routes and the local API's are checked against it)."""
    template = template or load_template()
    body = template["Resources"]["ForecastApi"]["Properties"]["DefinitionBody"]
    routes = []
    for path, methods in body["paths"].items():
        for method, op in methods.items():
            routes.append({"path": path, "method": method.upper(), "api_key_required": bool(op.get("security"))})
    return sorted(routes, key=lambda r: (r["path"], r["method"]))


def params_with_defaults(template: dict, params: dict | None = None) -> dict:
    return {**{k: v for k, v in parameter_defaults(template).items() if v is not None}, **(params or {})}


def names(template: dict | None = None, params: dict | None = None) -> dict:
    """Every name a deploy uses, resolved from the template's parameters and resources."""
    template = template or load_template()
    p = params_with_defaults(template, params)
    res = template["Resources"]

    def prop(resource: str, key: str):
        return resolve(res[resource]["Properties"][key], p)

    return {
        "function": p["FunctionName"],
        "api": p["ApiName"],
        "layer": prop("DependenciesLayer", "LayerName"),
        "key": p["ApiKeyName"],
        "plan": p["UsagePlanName"],
        "key_parameter": p["KeyParameterName"],
        "stage": p["StageName"],
        # the deployer's own record (layer versions, version checks, canary, front door): not a CloudFormation resource
        "record": f"/{p['FunctionName']}/deploy-record",
        "alias": res[FUNCTION_RESOURCE]["Properties"]["AutoPublishAlias"],
        "role": prop("FunctionRole", "RoleName"),
        "log_group": prop("FunctionLogGroup", "LogGroupName"),
        "access_log_group": prop("ApiAccessLogGroup", "LogGroupName"),
        "project": p["ProjectTag"],
        "front_door": p["FrontDoor"],
        "url_auth": p["UrlAuthType"],
        # the ledger's (Ledger=on): named after the stack, so two stacks never share one
        "ledger_table": prop("LedgerTable", "TableName"),
        "ledger_function": prop("LedgerFunction", "FunctionName"),
        "ledger_layer": prop("LedgerLayer", "LayerName"),
        "ledger_role": prop("LedgerRole", "RoleName"),
        "ledger_scheduler_role": prop("LedgerSchedulerRole", "RoleName"),
        "ledger_log_group": prop("LedgerLogGroup", "LogGroupName"),
        "ledger_queue": prop("LedgerDeadLetterQueue", "QueueName"),
        "schedule_group": prop("LedgerScheduleGroup", "Name"),
        "schedule": prop("LedgerDailySchedule", "Name"),
    }


def tags(template: dict | None = None, params: dict | None = None) -> dict:
    """The tags that mark a resource as this stack's: the deployer acts only on resources that carry all of them."""
    template = template or load_template()
    return {
        k: str(v) for k, v in resolve(template["Globals"]["Function"]["Tags"], params_with_defaults(template, params)).items()
    }


def resource_props(template: dict, logical_id: str, params: dict | None = None) -> dict:
    return resolve(template["Resources"][logical_id]["Properties"], params_with_defaults(template, params))


def resources_of_type(template: dict, type_name: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == type_name}
