"""The endpoint over HTTP: GET /health, GET /model, POST /predict. Every failure - the network, the status, or an
answer that breaks the API contract - becomes an EndpointError whose message says what to do next."""

from __future__ import annotations

import json
import math
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

# the HTTP client the dashboard and the ledger share: it lives below both (DESIGN: imports only point down)
REQUEST_TIMEOUT_S = 10.0
# predictions per POST /predict: the API's contract (lambda/openapi.yaml's instances.maxItems, which the function's
# MAX_BATCH is tested against; tests/test_tracking.py holds this one to the same file)
MAX_BATCH = 64

# idempotent GETs are retried on a reset connection or a gateway hiccup; a refused connection fails at once
GET_RETRIES = Retry(
    total=2,
    connect=0,
    read=1,
    status=2,
    backoff_factor=0.2,
    allowed_methods=frozenset({"GET"}),
    status_forcelist=(502, 503, 504),
    raise_on_status=False,
)


class EndpointError(Exception):
    """kind: down | auth | version | client | server | contract."""

    def __init__(self, kind: str, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.kind, self.message, self.status, self.code = kind, message, status, code


def _broken(where: str, what: str) -> EndpointError:
    return EndpointError(
        "contract",
        f"{where} answered something that is not this API's contract ({what}): is the URL the forecasting API's stage?",
    )


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class RefusedAnswer(EndpointError):
    """One prediction that breaks contract v1 (a number that is not finite, low above high): kind "contract", with the
    ticker and the field named, so a caller can skip that ticker alone. From a batch, `index` is its place in the
    batch, `refused` lists every refused item of that batch (this one first) and `answers` holds the batch's checked
    answers, None where refused."""

    def __init__(self, where: str, ticker: str, field: str, problem: str, index: int | None = None):
        super().__init__(
            "contract",
            f"{where} answered {ticker} with {field} {problem}: the API's contract is finite numbers and low <= high; "
            "check the endpoint's logs and model version",
        )
        self.ticker, self.field, self.index = ticker, field, index
        self.refused: list[RefusedAnswer] = [self]
        self.answers: list[dict | None] = []


def _refusal(item: dict, ticker: str) -> tuple[str, str] | None:
    """(field, problem) for the first number of an answer that breaks the contract, or None."""
    interval = item.get("interval")
    if not isinstance(interval, dict):
        return "interval", f"= {interval!r:.40}, not an object with low and high"
    values = {
        "prediction": item.get("prediction"),
        "confidence": item.get("confidence"),
        "interval.low": interval.get("low"),
        "interval.high": interval.get("high"),
    }
    for name, value in values.items():
        if not _finite(value):
            return name, f"= {value!r:.40}, not a finite number"
    if interval["low"] > interval["high"]:
        return "interval", f"low {interval['low']:g} above its high {interval['high']:g}"
    return None


def check_prediction(item, where: str = "POST /predict", asked: str = "?", index: int | None = None) -> dict:
    """A prediction as contract v1 defines it: finite numbers, low <= high. `asked` is the ticker the request named,
    used when the answer names none."""
    if not isinstance(item, dict):
        raise _broken(where, f"a prediction for {asked} must be an object, got {type(item).__name__}")
    ticker = item.get("ticker")
    problem = _refusal(item, ticker if isinstance(ticker, str) else asked)
    if problem:
        raise RefusedAnswer(where, ticker if isinstance(ticker, str) else asked, *problem, index=index)
    if not isinstance(ticker, str):
        raise _broken(where, f"ticker must be a string (asked for {asked})")
    return item


def check_model_card(card) -> dict:
    if not isinstance(card, dict):
        raise _broken("GET /model", f"the model card must be an object, got {type(card).__name__}")
    missing = [k for k in ("name", "version", "window", "n_features", "features", "scaler", "ensemble") if k not in card]
    if missing:
        raise _broken("GET /model", f"the model card lacks {', '.join(missing)}")
    scaler = card["scaler"]
    n = card["n_features"]
    if not (
        isinstance(n, int)
        and isinstance(card["window"], int)
        and isinstance(scaler, dict)
        and all(
            isinstance(scaler.get(k), list) and len(scaler[k]) == n and all(map(_finite, scaler[k])) for k in ("mean", "scale")
        )
    ):
        raise _broken("GET /model", "window, n_features and the scaler's mean and scale must agree")
    if not isinstance(card["features"], list) or len(card["features"]) != n:
        raise _broken("GET /model", "features must name each of the n_features")
    return card


class ForecastClient:
    def __init__(self, url: str, key: str, timeout: float = REQUEST_TIMEOUT_S):
        self.url, self.key, self.timeout = url.rstrip("/"), key, timeout
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=GET_RETRIES)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.last_latency_ms = 0.0

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"X-API-Key": self.key} if self.key else {}
        t0 = time.perf_counter()
        try:
            # no redirects: requests would carry X-API-Key to whatever host a 3xx names (it strips only Authorization)
            r = self.session.request(
                method, self.url + path, json=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.ConnectionError:
            raise EndpointError(
                "down",
                f"nothing answers at {self.url}: start the local API (`make run`, or "
                "`python -m local_api`) or set the endpoint URL in the sidebar",
            ) from None
        except requests.Timeout:
            raise EndpointError("down", f"{self.url} did not answer within {self.timeout:g} s") from None
        except requests.RequestException as e:  # a malformed URL, a bad TLS certificate...
            raise EndpointError("down", f"cannot call {self.url}: {type(e).__name__}: {e}") from None
        self.last_latency_ms = (time.perf_counter() - t0) * 1000
        if 300 <= r.status_code < 400:
            where = r.headers.get("Location", "?")[:200]
            raise EndpointError(
                "client",
                f"{self.url}{path} answered {r.status_code}, a redirect to {where}: the key is not sent on; "
                "use the endpoint's own URL",
                r.status_code,
            )
        try:  # the standard library, not r.json(): requests uses simplejson when installed (awslambdaric pulls it in),
            # which refuses NaN; parsing NaN here lets the contract check name the field and the ticker either way
            data = json.loads(r.content)
        except (ValueError, RecursionError):  # not JSON, or JSON nested too deep to parse
            data = None
        if not isinstance(data, dict):
            if r.status_code < 400:
                raise _broken(f"{method} {path}", "not a JSON object" if data is None else f"a JSON {type(data).__name__}")
            data = {}
        if r.status_code < 400:
            return data
        msg = str(data.get("error") or data.get("message") or r.text[:200])[:300]
        if r.status_code in (401, 403) and path != "/predict" and "Missing Authentication Token" in msg:
            raise EndpointError(
                "client",
                f"{self.url}{path} is not a route of this API: is the URL the stage (…/prod), without /predict?",
                r.status_code,
            )
        if r.status_code in (401, 403):
            raise EndpointError(
                "auth",
                f"the endpoint refused the API key ({r.status_code}: {msg}); paste the key that "
                "`make run` or the deploy page printed into the sidebar",
                r.status_code,
                data.get("code"),
            )
        if r.status_code == 409:
            raise EndpointError("version", msg, 409, data.get("code"))
        if r.status_code == 429:
            raise EndpointError("client", "the endpoint is throttling (429): wait a moment, or raise the usage plan", 429)
        if r.status_code < 500:
            raise EndpointError("client", f"{r.status_code} {data.get('code', '')}: {msg}", r.status_code, data.get("code"))
        raise EndpointError(
            "server", f"the endpoint failed ({r.status_code}: {msg}); see its logs", r.status_code, data.get("code")
        )

    def health(self) -> dict:
        data = self._call("GET", "/health")
        if not isinstance(data.get("status"), str):
            raise _broken("GET /health", "no status")
        return data

    def model(self) -> dict:
        return check_model_card(self._call("GET", "/model"))

    def predict(self, ticker: str, features: list[float], model_version: str | None = None) -> dict:
        body = {"ticker": ticker, "features": features}
        if model_version:
            body["model_version"] = model_version
        out = check_prediction(self._call("POST", "/predict", body), asked=ticker)
        out["latency_ms"] = self.last_latency_ms
        return out

    def predict_batch(self, instances: list[dict], model_version: str | None = None) -> list[dict]:
        body: dict = {"instances": instances}
        if model_version:
            body["model_version"] = model_version
        preds = self._call("POST", "/predict", body).get("predictions")
        if not isinstance(preds, list) or len(preds) != len(instances):
            raise _broken("POST /predict (batch)", f"predictions must be a list of {len(instances)}")
        answers: list[dict | None] = []
        refused: list[RefusedAnswer] = []
        for i, (item, asked) in enumerate(zip(preds, instances, strict=True)):
            try:
                answers.append(check_prediction(item, "POST /predict (batch)", str(asked.get("ticker", "?")), i))
            except RefusedAnswer as e:  # the others are checked too: a caller skips exactly the refused tickers
                answers.append(None)
                refused.append(e)
        if refused:
            first = refused[0]
            first.refused, first.answers = refused, answers
            if len(refused) > 1:
                first.message += f" (and {len(refused) - 1} more in this batch: {', '.join(e.ticker for e in refused[1:])})"
                first.args = (first.message,)
            raise first
        return answers  # type: ignore[return-value]


if __name__ == "__main__":  # `python -m models.client AAPL`: the command line lives in models/client_cli.py, which
    import runpy  # imports this module: run by name, so the import graph keeps no circle

    runpy.run_module("models.client_cli", run_name="__main__", alter_sys=True)
