"""Validate a predict body into numbers the model can take; each failure names its field."""

from __future__ import annotations

import re
from array import array

import numpy as np

from .errors import ApiError, bad_request, quote
from .jsonio import JSONDecodeError, loads

MAX_BATCH = 64  # instances per request: the one definition (openapi.yaml's maxItems is tested against it)
SINGLE_KEYS = frozenset({"ticker", "features", "model_version"})
INSTANCE_KEYS = frozenset({"ticker", "features"})
BATCH_KEYS = frozenset({"instances", "model_version"})
# Every standardized value must lie within this many training standard deviations of the training mean (raw value
# within mean ± 1,000 x scale of GET /model's scaler). Real windows stay within about ±40; beyond the bound the
# model's float32 graph and the interval's exp() leave their range. Documented in openapi.yaml (Features).
MAX_STANDARDIZED = 1000.0


def decode(body) -> object:
    if body is None or (isinstance(body, str | bytes) and not body.strip()):
        raise bad_request("missing_body", 'request body is empty; send JSON {"ticker": ..., "features": [600 numbers]}')
    try:
        return loads(body)
    except (JSONDecodeError, ValueError, UnicodeDecodeError) as exc:
        raise bad_request(
            "invalid_json", f"body is not valid JSON ({str(exc).splitlines()[0][:120]}); NaN and Infinity are not JSON either"
        ) from None


def _ticker(value, where: str, ticker_re: re.Pattern) -> str:
    if value is None:
        raise bad_request("missing_field", f"{where}ticker is required")
    if not isinstance(value, str) or not ticker_re.fullmatch(value):  # the whole string: no "AAPL\n"
        raise bad_request(
            "invalid_ticker", f"{where}ticker must be a symbol of 1-15 letters, digits or ^ . - =, got {quote(value)}"
        )
    return value.upper()


def _features(value, where: str, shape: tuple[int, int], exact: bool = True) -> array | list:
    days, per_day = shape
    n = days * per_day
    if value is None:
        raise bad_request("missing_field", f"{where}features is required: a flat list of {n} numbers")
    if not isinstance(value, list):
        raise bad_request("invalid_features", f"{where}features must be a list of {n} numbers, got {type(value).__name__}")
    if len(value) != n:
        nested = " (send it flat, day-major, not nested)" if value and isinstance(value[0], list) else ""
        raise bad_request(
            "wrong_length", f"{where}features must hold {n} numbers ({days} days x {per_day} features), got {len(value)}{nested}"
        )
    try:  # a few µs for 600 numbers; it refuses strings, nulls and lists, but takes booleans (and too large ints)
        row = array("d", value)
    except (TypeError, OverflowError):
        row = None
    if row is None or exact:  # the type of each item: only needed when the body may hold booleans
        for i, v in enumerate(value):
            if type(v) not in (float, int):
                raise bad_request("non_numeric", f"{where}features[{i}] must be a number, got {type(v).__name__}")
        return value  # an int too large for a float is refused below, after every row's own checks
    return row


def _check_keys(obj: dict, allowed: frozenset, where: str) -> None:
    extra = obj.keys() - allowed
    if extra:
        raise bad_request(
            "unknown_field", f"unknown field {where}{quote(sorted(extra)[0])}; allowed: {', '.join(sorted(allowed))}"
        )


def may_hold_booleans(body) -> bool:
    """False when a JSON body cannot contain true or false anywhere: then array('d') alone proves every feature is a
    number (it refuses strings, nulls and lists, and booleans are the only thing it would wrongly take)."""
    if isinstance(body, bytes):
        return b"true" in body or b"false" in body
    return not isinstance(body, str) or "true" in body or "false" in body


def parse_predict(
    payload, shape: tuple[int, int], ticker_re: re.Pattern, exact: bool = True
) -> tuple[list[str], np.ndarray, bool, object]:
    """`shape` is (window days, features per day) and `ticker_re` the manifest's ticker syntax -> (tickers,
    features (B, days*per_day) float64, is_batch, requested model_version). `exact=False` (see may_hold_booleans)
    skips the per-item type check."""
    if not isinstance(payload, dict):
        raise bad_request("invalid_body", f"body must be a JSON object, got {type(payload).__name__}")
    version = payload.get("model_version")
    if version is not None and not isinstance(version, str):
        raise bad_request("invalid_model_version", "model_version must be a string")
    if "instances" in payload:
        _check_keys(payload, BATCH_KEYS, "")
        inst = payload["instances"]
        if not isinstance(inst, list):
            raise bad_request("invalid_instances", "instances must be a list of {ticker, features} objects")
        if not inst:
            raise bad_request("empty_batch", f"instances is empty; send 1 to {MAX_BATCH}")
        if len(inst) > MAX_BATCH:
            raise bad_request("batch_too_large", f"instances holds {len(inst)} items; at most {MAX_BATCH} per request")
        tickers, rows = [], []
        for i, item in enumerate(inst):
            where = f"instances[{i}]."
            if not isinstance(item, dict):
                raise bad_request("invalid_instances", f"instances[{i}] must be an object with ticker and features")
            _check_keys(item, INSTANCE_KEYS, where)
            tickers.append(_ticker(item.get("ticker"), where, ticker_re))
            rows.append(_features(item.get("features"), where, shape, exact))
        is_batch = True
    else:
        _check_keys(payload, SINGLE_KEYS, "")
        tickers = [_ticker(payload.get("ticker"), "", ticker_re)]
        rows = [_features(payload.get("features"), "", shape, exact)]
        is_batch = False
    try:  # array('d') holds the numbers as doubles already: np.array() from a list would cost 5x that (BENCHMARKS.md)
        flat = rows[0] if isinstance(rows[0], array) else array("d", rows[0])
        for row in rows[1:]:
            flat.extend(row if isinstance(row, array) else array("d", row))
    except OverflowError:  # an integer beyond float range
        raise bad_request("non_finite", "features holds a number too large for a float") from None
    X = np.frombuffer(flat, dtype=np.float64).reshape(len(rows), -1)
    if not np.isfinite(X).all():
        b, i = map(int, np.argwhere(~np.isfinite(X))[0])
        where = f"instances[{b}]." if is_batch else ""
        raise bad_request("non_finite", f"{where}features[{i}] is NaN or infinite")
    if np.abs(X).max() > MAX_STANDARDIZED:
        outside = np.abs(X) > MAX_STANDARDIZED
        b, i = map(int, np.argwhere(outside)[0])
        where = f"instances[{b}]." if is_batch else ""
        raise bad_request(
            "out_of_range",
            f"{where}features[{i}] = {X[b, i]:.6g} is outside ±{MAX_STANDARDIZED:g}: every value "
            "is standardized with GET /model's scaler, so it must lie within 1,000 of its training standard "
            "deviations of the mean",
        )
    return tickers, X, is_batch, version


def check_version(requested, served: str) -> None:
    if requested is not None and requested != served:
        raise ApiError(
            409,
            "model_version_mismatch",
            f"model_version {quote(requested)} was requested but this endpoint serves {served!r}; "
            "rebuild the features with GET /model's scaler and send its version",
        )
