"""Validate a predict body into numbers the model can take; each failure names its field."""

from __future__ import annotations

import re
import struct
from itertools import chain

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


def _check_item(v, where: str, i: int) -> None:
    if type(v) not in (float, int):
        raise bad_request("non_numeric", f"{where}features[{i}] must be a number, got {type(v).__name__}")


def _item_types(value: list, where: str) -> None:
    for i, v in enumerate(value):
        _check_item(v, where, i)


def _huge_ints(value: list, where: str) -> None:
    for i, v in enumerate(value):
        if type(v) is int and not -(2**1023) < v < 2**1023:  # the rare path: only after struct refused the window
            try:
                float(v)
            except OverflowError:
                raise bad_request("non_finite", f"{where}features[{i}] is too large for a float (beyond ±1.8e308)") from None


def _features(value, where: str, shape: tuple[int, int]) -> list:
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
    return value


def _check_keys(obj: dict, allowed: frozenset, where: str) -> None:
    if not allowed.issuperset(obj):  # no set built for a body that is fine
        extra = obj.keys() - allowed
        raise bad_request(
            "unknown_field", f"unknown field {where}{quote(sorted(extra)[0])}; allowed: {', '.join(sorted(allowed))}"
        )


def parse_predict(payload, shape: tuple[int, int], ticker_re: re.Pattern) -> tuple[list[str], np.ndarray, bool, object]:
    """`shape` is (window days, features per day) and `ticker_re` the manifest's ticker syntax -> (tickers,
    features (B, days*per_day) float64, is_batch, requested model_version)."""
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
        tickers, rows, wheres = [], [], []
        for i, item in enumerate(inst):
            where = f"instances[{i}]."
            if not isinstance(item, dict):
                raise bad_request("invalid_instances", f"instances[{i}] must be an object with ticker and features")
            _check_keys(item, INSTANCE_KEYS, where)
            tickers.append(_ticker(item.get("ticker"), where, ticker_re))
            rows.append(_features(item.get("features"), where, shape))
            wheres.append(where)
        is_batch = True
    else:
        _check_keys(payload, SINGLE_KEYS, "")
        tickers = [_ticker(payload.get("ticker"), "", ticker_re)]
        rows = [_features(payload.get("features"), "", shape)]
        wheres = [""]
        is_batch = False
    # struct packs 600 numbers as doubles in 3 µs, array('d') in 8 and np.array() in 10 (BENCHMARKS.md). Like
    # them it refuses strings, nulls and lists, and takes booleans (checked below).
    numbers = rows[0] if len(rows) == 1 else list(chain.from_iterable(rows))
    try:
        packed = struct.pack(f"{len(numbers)}d", *numbers)
    except (struct.error, OverflowError):
        for where, row in zip(wheres, rows, strict=True):
            _item_types(row, where)  # names an item that is not a number
        for where, row in zip(wheres, rows, strict=True):
            _huge_ints(row, where)  # every item is a number, so struct refused an integer beyond float range
        raise bad_request("non_finite", "features holds a number too large for a float") from None
    X = np.ndarray((len(rows), len(numbers) // len(rows)), np.float64, packed)  # a view of the packed bytes
    if not np.abs(X).max() <= MAX_STANDARDIZED:  # one reduction for both checks: NaN fails a comparison too
        bad = ~np.isfinite(X)
        b, i = map(int, np.argwhere(bad if bad.any() else np.abs(X) > MAX_STANDARDIZED)[0])
        where = f"instances[{b}]." if is_batch else ""
        if bad.any():
            raise bad_request("non_finite", f"{where}features[{i}] is NaN or infinite")
        shown = f"{X[b, i]:.6g}"
        if abs(float(shown)) <= MAX_STANDARDIZED:  # 1000.0000000000001 would read "1000 is outside ±1000"
            shown = repr(float(X[b, i]))
        raise bad_request(
            "out_of_range",
            f"{where}features[{i}] = {shown} is outside ±{MAX_STANDARDIZED:g}: every value "
            "is standardized with GET /model's scaler, so it must lie within 1,000 of its training standard "
            "deviations of the mean",
        )
    # struct took any boolean as 1.0 or 0.0. Within the range just checked, x * x == x holds for those two
    # values alone, so only the items there have their type looked at: 2 µs a request instead of 10 for
    # searching the body for true and false (BENCHMARKS.md). Only those items, not their whole row: a client
    # that fills gaps with an exact 0 (the mean) would otherwise pay a 600-item loop per row, 5x the validation.
    hit = X * X == X
    if hit.any():
        for b, i in np.argwhere(hit).tolist():  # row-major: the first boolean of the first row holding one
            _check_item(rows[b][i], wheres[b], i)
    return tickers, X, is_batch, version


def check_version(requested, served: str) -> None:
    if requested is not None and requested != served:
        raise ApiError(
            409,
            "model_version_mismatch",
            f"model_version {quote(requested)} was requested but this endpoint serves {served!r}; "
            "rebuild the features with GET /model's scaler and send its version",
        )
