"""Write the sample events beside this file from the bundled snapshot and the served scaler.

    python lambda/events/generate.py

The events are what API Gateway (REST v1), an HTTP API / Function URL (v2.0) and a direct invoke
deliver; tests use them, and so can `sam local invoke -e lambda/events/rest_v1_predict.json`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE.parent))

from models.data import load_prices  # noqa: E402
from models.features import window  # noqa: E402

KEY_HEADER = "x-api-key"
from smoke import SAMPLE_KEY  # noqa: E402  (what the tests configure; never a real key)


def main() -> None:
    manifest = json.loads((ROOT / "models" / "runtime" / "manifest.json").read_text())
    features = [round(v, 8) for v in window(load_prices("AAPL", source="snapshot"), manifest["scaler"]).tolist()]
    body = json.dumps({"ticker": "AAPL", "features": features})
    rest_ctx = {
        "accountId": "123456789012",
        "apiId": "abcdef1234",
        "resourcePath": "/predict",
        "stage": "prod",
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "httpMethod": "POST",
        "path": "/prod/predict",
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "curl/8.0", "apiKey": SAMPLE_KEY},
    }
    events = {
        "direct_invoke.json": {"ticker": "AAPL", "features": features},
        "rest_v1_predict.json": {
            "resource": "/predict",
            "path": "/predict",
            "httpMethod": "POST",
            "headers": {
                "Content-Type": "application/json",
                "X-API-Key": SAMPLE_KEY,
                "Host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            },
            "multiValueHeaders": {"Content-Type": ["application/json"], "X-API-Key": [SAMPLE_KEY]},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": rest_ctx,
            "body": body,
            "isBase64Encoded": False,
        },
        "rest_v1_preflight.json": {
            "resource": "/predict",
            "path": "/predict",
            "httpMethod": "OPTIONS",
            "headers": {
                "Origin": "http://localhost:8501",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-api-key",
            },
            "multiValueHeaders": None,
            "queryStringParameters": None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {**rest_ctx, "httpMethod": "OPTIONS", "identity": {"sourceIp": "127.0.0.1"}},
            "body": None,
            "isBase64Encoded": False,
        },
        "rest_v1_model.json": {
            "resource": "/model",
            "path": "/model",
            "httpMethod": "GET",
            "headers": {"Accept": "application/json"},
            "multiValueHeaders": None,
            "queryStringParameters": None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {**rest_ctx, "resourcePath": "/model", "httpMethod": "GET", "path": "/prod/model"},
            "body": None,
            "isBase64Encoded": False,
        },
        "http_v2_predict.json": {
            "version": "2.0",
            "routeKey": "POST /predict",
            "rawPath": "/predict",
            "rawQueryString": "",
            "headers": {"content-type": "application/json", "x-api-key": SAMPLE_KEY, "host": "abc.lambda-url.us-east-1.on.aws"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc",
                "domainName": "abc.lambda-url.us-east-1.on.aws",
                "http": {
                    "method": "POST",
                    "path": "/predict",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "curl/8.0",
                },
                "requestId": "2a7d6f1e-0000-4000-8000-000000000001",
                "routeKey": "POST /predict",
                "stage": "$default",
                "time": "26/Nov/2026:03:00:00 +0000",
                "timeEpoch": 1795662000000,
            },
            "body": body,
            "isBase64Encoded": False,
        },
        "http_v2_health.json": {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/health",
            "rawQueryString": "",
            "headers": {"host": "abc.lambda-url.us-east-1.on.aws"},
            "requestContext": {
                "http": {"method": "GET", "path": "/health", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
                "requestId": "2a7d6f1e-0000-4000-8000-000000000002",
                "stage": "$default",
            },
            "isBase64Encoded": False,
        },
    }
    for name, event in events.items():
        (HERE / name).write_text(json.dumps(event, indent=1) + "\n")
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
