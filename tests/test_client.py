"""models/client.py's contract check: an answer whose numbers are not finite, or whose low is above its high, is refused
naming the field and the ticker; the dashboard shows that for the ticker alone while the others still chart."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from models.client import EndpointError, ForecastClient, RefusedAnswer, check_prediction
from tests import test_dashboard
from tests.test_dashboard import app, texts

fresh_caches = test_dashboard.fresh_caches  # the same autouse fixture

GOOD = {
    "ticker": "AAPL",
    "prediction": 450.25,
    "confidence": 0.83,
    "interval": {"low": 445.10, "high": 455.40, "level": 0.8},
    "model": "LSTM Multi-Ticker Ensemble",
    "model_version": "v1",
}


def spoiled(field: str, value) -> dict:
    answer = json.loads(json.dumps(GOOD))
    if field.startswith("interval."):
        answer["interval"][field.removeprefix("interval.")] = value
    else:
        answer[field] = value
    return answer


NOT_FINITE = [float("nan"), float("inf"), float("-inf"), "450.25", True, None]


@pytest.mark.parametrize("value", NOT_FINITE, ids=repr)
@pytest.mark.parametrize("field", ["prediction", "interval.low", "interval.high", "confidence"])
def test_a_number_that_is_not_finite_is_refused_naming_field_and_ticker(field, value):
    with pytest.raises(RefusedAnswer) as e:
        check_prediction(spoiled(field, value))
    assert (e.value.kind, e.value.ticker, e.value.field) == ("contract", "AAPL", field)
    assert f"AAPL with {field} = " in e.value.message and "\n" not in e.value.message


@pytest.mark.parametrize(
    "interval, refused",
    [
        ({"low": 455.40, "high": 445.10}, True),  # low above high
        ({"low": 450.0, "high": 449.999}, True),
        ({"low": 450.25, "high": 450.25}, False),  # a zero-width interval is still an interval
        ({"low": 445.10, "high": 455.40}, False),
    ],
)
def test_low_above_high_is_refused(interval, refused):
    answer = {**GOOD, "interval": {**interval, "level": 0.8}}
    if not refused:
        assert check_prediction(answer) is answer
        return
    with pytest.raises(RefusedAnswer, match=r"answered AAPL with interval low 45\d\.?\d* above its high") as e:
        check_prediction(answer)
    assert e.value.field == "interval"


def test_an_answer_without_a_ticker_is_named_by_the_ticker_asked_for():
    answer = {k: v for k, v in spoiled("interval.high", float("nan")).items() if k != "ticker"}
    with pytest.raises(RefusedAnswer) as e:
        check_prediction(answer, asked="MSFT")
    assert e.value.ticker == "MSFT" and "MSFT with interval.high = nan" in e.value.message


class Loopback:
    """A request handler served on a free loopback port, in a thread, until close()."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Canned(Loopback):
    """A tiny HTTP endpoint answering POST /predict with a fixed JSON body (NaN written as JSON's NaN token)."""

    def __init__(self, body: dict):
        canned = json.dumps(body).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(canned)))
                self.end_headers()
                self.wfile.write(canned)

            def log_message(self, *args):
                pass

        super().__init__(Handler)


def test_a_batch_names_the_refused_ticker_and_keeps_the_others():
    tickers = ["AAPL", "MSFT", "IBM", "^GSPC"]
    items = [{**GOOD, "ticker": t} for t in tickers]
    items[1] = {**spoiled("interval.low", float("-inf")), "ticker": "MSFT"}
    items[3] = {**spoiled("prediction", float("nan")), "ticker": "^GSPC"}
    endpoint = Canned({"predictions": items})
    try:
        with pytest.raises(RefusedAnswer) as e:
            ForecastClient(endpoint.url, "k").predict_batch([{"ticker": t, "features": [0.0]} for t in tickers])
    finally:
        endpoint.close()
    err = e.value
    assert isinstance(err, EndpointError) and (err.ticker, err.field, err.index) == ("MSFT", "interval.low", 1)
    assert [(r.ticker, r.field, r.index) for r in err.refused] == [("MSFT", "interval.low", 1), ("^GSPC", "prediction", 3)]
    assert [a and a["ticker"] for a in err.answers] == ["AAPL", None, "IBM", None]
    assert "(and 1 more in this batch: ^GSPC)" in str(err) and "\n" not in str(err)


def test_a_single_answer_over_http_is_refused():
    endpoint = Canned(spoiled("interval.high", float("inf")))
    try:
        with pytest.raises(RefusedAnswer, match="POST /predict answered AAPL with interval.high = inf"):
            ForecastClient(endpoint.url, "k").predict("AAPL", [0.0])
    finally:
        endpoint.close()


class Spoiler(Loopback):
    """A proxy in front of the real local API that spoils POST /predict's answer for one ticker."""

    def __init__(self, upstream: str, ticker: str, field: str, value):
        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))) or None
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("x-api-key", "content-type")}
                r = requests.request(method, upstream + self.path, data=body, headers=headers, timeout=60)
                out = r.content
                if method == "POST" and r.status_code == 200:
                    data = r.json()
                    if data.get("ticker") == ticker:
                        data["interval" if field.startswith("interval.") else field] = (
                            {**data["interval"], field.removeprefix("interval."): value}
                            if field.startswith("interval.")
                            else value
                        )
                        out = json.dumps(data).encode()
                self.send_response(r.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self):
                self._forward("GET")

            def do_POST(self):
                self._forward("POST")

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.mark.integration
@pytest.mark.parametrize("field, value", [("interval.low", float("nan")), ("prediction", float("inf"))])
def test_the_dashboard_shows_the_refusal_for_that_ticker_alone(local_api, field, value):
    proxy = Spoiler(local_api.url, "MSFT", field, value)
    try:
        at = app(proxy.url)
    finally:
        proxy.close()
    errors = [e.value.replace("\\", "") for e in at.error]  # shown as text: Markdown's characters are escaped
    assert len(errors) == 1 and errors[0].startswith("MSFT: POST /predict answered MSFT with " + field), errors
    cards = [m.label for m in at.metric]  # one forecast card per ticker answered (the page's first screen)
    assert len(cards) == 2 and not any(c.startswith("MSFT") for c in cards), f"the other tickers still chart: {cards}"
    assert all(m.value.replace(",", "").replace(".", "").isdigit() for m in at.metric), [m.value for m in at.metric]
    assert "nan" not in texts(at).replace(at.error[0].value, "")


def test_a_redirect_is_not_followed_so_the_key_never_reaches_another_host():
    """The hostile pass: requests carries X-API-Key across hosts on a 3xx (it strips only Authorization)."""
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append(self.headers.get("X-API-Key"))
            if self.path.startswith("/prod"):  # the endpoint redirects to "another host" (its own /elsewhere)
                self.send_response(307)
                self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    endpoint = Loopback(Handler)
    try:
        client = ForecastClient(f"{endpoint.url}/prod", "SECRET-KEY-1234567890", timeout=10)
        with pytest.raises(EndpointError) as e:
            client.predict("AAPL", [0.0] * 600)
    finally:
        endpoint.close()
    assert seen == ["SECRET-KEY-1234567890"], "the key went to the redirect's target"
    assert e.value.kind == "client" and "redirect to http://localhost:" in e.value.message
