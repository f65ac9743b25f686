"""The dashboard against endpoints that answer nonsense: every page shows a clear message, never a traceback.

A real HTTP server on loopback plays the hostile endpoint; its answers are the ones a wrong URL, a broken
deployment or an attacker's server would give."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.test_dashboard import app


def real_card() -> dict:
    from tests.support import RUNTIME_DIR

    return json.loads((RUNTIME_DIR / "manifest.json").read_text())


def good_prediction(ticker="AAPL") -> dict:
    return {
        "ticker": ticker,
        "prediction": 101.0,
        "confidence": 0.6,
        "interval": {"low": 99.0, "high": 103.0, "level": 0.8},
        "last_close": 100.0,
        "model": "m",
        "model_version": real_card()["version"],
        "timestamp": "t",
        "request_id": "r",
    }


# (name, {path: (status, content type, body bytes)}) - what the endpoint answers to each route
DEEP = ("[" * 100_000 + "]" * 100_000).encode()
SCENARIOS = {
    "a JSON list": {"/model": (200, "application/json", b"[1, 2, 3]")},
    "JSON nested 100k deep": {"/model": (200, "application/json", DEEP)},
    "a card without name": {
        "/model": (200, "application/json", json.dumps({k: v for k, v in real_card().items() if k != "name"}).encode())
    },
    "a card without ensemble": {
        "/model": (200, "application/json", json.dumps({k: v for k, v in real_card().items() if k != "ensemble"}).encode())
    },
    "a null prediction": {"/predict": (200, "application/json", json.dumps({**good_prediction(), "prediction": None}).encode())},
    "a string prediction": {
        "/predict": (200, "application/json", json.dumps({**good_prediction(), "prediction": "101"}).encode())
    },
    "{} from /predict": {"/predict": (200, "application/json", b"{}")},
    "HTML from /predict": {"/predict": (200, "text/html", b"<html><body>Welcome to nginx!</body></html>")},
    "a batch without predictions": {"/predict": (200, "application/json", json.dumps(good_prediction()).encode())},
    "HTML with a 502": {"/model": (502, "text/html", b"<html>Bad Gateway</html>")},
}


class Hostile(ThreadingHTTPServer):
    daemon_threads = True
    answers: dict = {}


class Handler(BaseHTTPRequestHandler):
    server: Hostile

    def log_message(self, *args):
        pass

    def _answer(self):
        path = self.path.split("?")[0].removeprefix("/prod")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        default = {
            "/model": (200, "application/json", json.dumps(real_card()).encode()),
            "/health": (200, "application/json", b'{"status": "ok"}'),
        }
        if path == "/predict":
            batch = b'"instances"' in body
            n = len(json.loads(body)["instances"]) if batch else 1
            default["/predict"] = (
                200,
                "application/json",
                json.dumps({"predictions": [good_prediction()] * n} if batch else good_prediction()).encode(),
            )
        status, ctype, data = self.server.answers.get(path, default.get(path, (404, "application/json", b'{"error": "no"}')))
        if path == "/predict" and self.server.answers.get("batch_only") and not batch:
            status, ctype, data = default["/predict"]
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer


@pytest.fixture(autouse=True)
def fresh_caches():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def hostile():
    srv = Hostile(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()


@pytest.mark.integration
@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.parametrize("page", [None, "views/model.py", "views/deploy.py"])
def test_every_page_explains_a_broken_endpoint(hostile, name, page):
    hostile.answers = dict(SCENARIOS[name])
    if name == "a batch without predictions":
        hostile.answers["batch_only"] = True
    at = app(f"http://127.0.0.1:{hostile.server_address[1]}/prod", page=page)
    assert not at.exception, [e.value for e in at.exception]
    messages = " ".join(str(m.value) for m in [*at.error, *at.warning])
    if page is None and name not in ("HTML with a 502",) or page == "views/model.py" and "/model" in SCENARIOS[name]:
        assert messages, f"{name}: the page showed no message"
        assert "Traceback" not in messages


LURE = "[re-enter your API key here](http://evil.example/key) ![x](http://evil.example/a.png) :red[alarm]"


@pytest.mark.integration
@pytest.mark.parametrize("page", [None, "views/model.py", "views/deploy.py"])
@pytest.mark.parametrize("where", ["model card", "error message"])
def test_endpoint_strings_are_shown_as_text(hostile, where, page):
    """A hostile endpoint's strings (card fields, /health status, error messages) reach the page as text: every
    Markdown character escaped, so no link, remote image or colour is drawn, yet the words are all there."""
    card = {**real_card(), "name": LURE, "confidence": LURE}
    hostile.answers = {
        "/model": (200, "application/json", json.dumps(card).encode()),
        "/health": (200, "application/json", json.dumps({"status": LURE, "model_version": LURE}).encode()),
    }
    if where == "error message":
        hostile.answers["/model"] = (400, "application/json", json.dumps({"error": LURE, "code": "bad"}).encode())
        hostile.answers["/health"] = (400, "application/json", json.dumps({"error": LURE, "code": "bad"}).encode())
    at = app(f"http://127.0.0.1:{hostile.server_address[1]}/prod", page=page)
    assert not at.exception, [e.value for e in at.exception]
    shown = "\n".join(str(e.value) for e in [*at.markdown, *at.caption, *at.error, *at.warning, *at.success, *at.info])
    assert LURE in re.sub(r"\\(.)", r"\1", shown), "the endpoint's words are not shown, each of them, as sent"
    assert "](" not in shown and "![" not in shown and ":red[" not in shown, shown
