"""The endpoint over HTTP: GET /health, GET /model, POST /predict. Every failure becomes an EndpointError
whose message says what to do next."""
from __future__ import annotations

import time

import requests

from dashboard.config import REQUEST_TIMEOUT_S


class EndpointError(Exception):
    """kind: down | auth | version | client | server."""

    def __init__(self, kind: str, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.kind, self.message, self.status, self.code = kind, message, status, code


class ForecastClient:
    def __init__(self, url: str, key: str, timeout: float = REQUEST_TIMEOUT_S):
        self.url, self.key, self.timeout = url.rstrip("/"), key, timeout
        self.session = requests.Session()
        self.last_latency_ms = 0.0

    def _call(self, method: str, path: str, body: dict | None = None):
        headers = {"X-API-Key": self.key} if self.key else {}
        t0 = time.perf_counter()
        try:
            r = self.session.request(method, self.url + path, json=body, headers=headers, timeout=self.timeout)
        except requests.ConnectionError:
            raise EndpointError("down", f"nothing answers at {self.url}: start the local API (`make run`, or "
                                "`python lambda/local_api.py`) or set the endpoint URL in the sidebar") from None
        except requests.Timeout:
            raise EndpointError("down", f"{self.url} did not answer within {self.timeout:g} s") from None
        except requests.RequestException as e:  # a malformed URL, a bad TLS certificate...
            raise EndpointError("down", f"cannot call {self.url}: {type(e).__name__}: {e}") from None
        self.last_latency_ms = (time.perf_counter() - t0) * 1000
        try:
            data = r.json()
        except ValueError:
            data = {}
        if r.status_code < 400:
            return data
        msg = data.get("error") or data.get("message") or r.text[:200]
        if r.status_code in (401, 403) and path != "/predict" and "Missing Authentication Token" in str(msg):
            raise EndpointError("client", f"{self.url}{path} is not a route of this API: is the URL the stage "
                                "(…/prod), without /predict?", r.status_code)
        if r.status_code in (401, 403):
            raise EndpointError("auth", f"the endpoint refused the API key ({r.status_code}: {msg}); paste the key that "
                                "`make run` or the deploy page printed into the sidebar", r.status_code, data.get("code"))
        if r.status_code == 409:
            raise EndpointError("version", msg, 409, data.get("code"))
        if r.status_code == 429:
            raise EndpointError("client", "the endpoint is throttling (429): wait a moment, or raise the usage plan", 429)
        if r.status_code < 500:
            raise EndpointError("client", f"{r.status_code} {data.get('code', '')}: {msg}", r.status_code, data.get("code"))
        raise EndpointError("server", f"the endpoint failed ({r.status_code}: {msg}); see its logs", r.status_code, data.get("code"))

    def health(self) -> dict:
        return self._call("GET", "/health")

    def model(self) -> dict:
        return self._call("GET", "/model")

    def predict(self, ticker: str, features: list[float], model_version: str | None = None) -> dict:
        body = {"ticker": ticker, "features": features}
        if model_version:
            body["model_version"] = model_version
        out = self._call("POST", "/predict", body)
        out["latency_ms"] = self.last_latency_ms
        return out

    def predict_batch(self, instances: list[dict], model_version: str | None = None) -> list[dict]:
        body: dict = {"instances": instances}
        if model_version:
            body["model_version"] = model_version
        return self._call("POST", "/predict", body)["predictions"]
