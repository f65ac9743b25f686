"""lambda/openapi.yaml is a valid OpenAPI 3.1 document, and real answers conform to it."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate

from tests.support import BAD, LAMBDA_DIR, call, load_event, rest


@pytest.fixture(scope="module")
def spec():
    doc = yaml.safe_load((LAMBDA_DIR / "openapi.yaml").read_text())
    validate(doc)
    return doc


def schema_for(spec, path, method, status):
    content = spec["paths"][path][method]["responses"][str(status)]
    if "$ref" in content:
        content = spec["components"]["responses"][content["$ref"].rsplit("/", 1)[1]]
    schema = content["content"]["application/json"]["schema"]
    return {**schema, "components": spec["components"]}


def conforms(spec, path, method, status, body):
    jsonschema.validate(body, schema_for(spec, path, method, status), cls=jsonschema.Draft202012Validator)


def test_single_batch_model_health_conform(spec, handler, keyed, features):
    status, _, body = call(handler, load_event("rest_v1_predict.json"))
    conforms(spec, "/predict", "post", status, body)
    status, _, body = call(handler, rest({"instances": [{"ticker": "AAPL", "features": features}] * 2}))
    conforms(spec, "/predict", "post", status, body)
    status, _, body = call(handler, load_event("rest_v1_model.json"))
    conforms(spec, "/model", "get", status, body)
    status, _, body = call(handler, load_event("http_v2_health.json"))
    conforms(spec, "/health", "get", status, body)


@pytest.mark.parametrize("name, build, status, code", BAD, ids=[b[0] for b in BAD])
def test_errors_conform(spec, handler, keyed, features, manifest, name, build, status, code):
    ev = build(features)
    got, _, body = call(handler, ev)
    path = ev["path"] if ev["path"] in spec["paths"] else "/predict"
    ops = spec["paths"][path]
    method = ev["httpMethod"].lower() if ev["httpMethod"].lower() in ops else next(m for m in ops if m != "options")
    responses = spec["paths"][path][method]["responses"]
    schema_status = got if str(got) in responses else 400
    conforms(spec, path, method, schema_status, body)


def test_request_examples_conform(spec, features):
    schema = {
        **spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"],
        "components": spec["components"],
    }
    jsonschema.validate(json.loads(load_event("rest_v1_predict.json")["body"]), schema, cls=jsonschema.Draft202012Validator)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"ticker": "AAPL", "features": features[:10]}, schema, cls=jsonschema.Draft202012Validator)
