"""Request parsing and validation for ``POST /predict``, without pydantic.

A batch of 1,000 transactions is 30,000 numbers; checking them one by one through a model
class costs more than scoring them. The fast path checks types of all values in one pass
and ranges with numpy; only a request that fails it is walked field by field to name every
offending field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np
import orjson

from fraud_assets.core.data.schema import FEATURE_COLUMNS, LABEL, MAX_ABS_VALUE, NON_NEGATIVE_COLUMNS

# Documented in docs/deployment.md. A full-precision transaction is about 700 bytes of JSON,
# so 2 MiB holds the largest accepted batch; bigger jobs belong to batch scoring.
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_TRANSACTIONS = 2_000
# Enough to show the pattern of a bad batch without an unbounded error response.
MAX_REPORTED_ERRORS = 50

# Same order of preference as the batch files' id columns (schema.ID_COLUMN_CANDIDATES).
ID_FIELDS: tuple[str, ...] = ("transaction_id", "id")
# Integer ids must fit in 64 bits, signed or unsigned: what orjson writes back as an integer
# (checked here, not left to the parser: a body orjson refuses is read by the standard
# library, which keeps any integer). Longer identifiers travel as strings.
_ID_INTEGER_RANGE = range(-(2**63), 2**64)
MAX_ID_LENGTH = 128
_FEATURES = frozenset(FEATURE_COLUMNS)
_ALLOWED = _FEATURES | frozenset(ID_FIELDS)
_NUMERIC_TYPES = frozenset({int, float})  # exact types: bool is an int subclass, refused
_NON_NEGATIVE = [FEATURE_COLUMNS.index(column) for column in sorted(NON_NEGATIVE_COLUMNS)]
_row_values = itemgetter(*FEATURE_COLUMNS)


class RequestError(Exception):
    """A request the service refuses; ``kind`` is the label of the errors metric."""

    def __init__(self, status: int, kind: str, errors: list[dict], truncated: int = 0):
        super().__init__(errors[0]["msg"] if errors else kind)
        self.status, self.kind, self.errors, self.truncated = status, kind, errors, truncated

    def body(self) -> dict:
        document: dict = {"detail": self.errors}
        if self.truncated:
            document["more_errors"] = self.truncated
        return document


def _error(loc: list, msg: str, kind: str) -> dict:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def malformed(msg: str) -> RequestError:
    return RequestError(400, "malformed_json", [_error([], msg, "json_invalid")])


def too_large(msg: str) -> RequestError:
    return RequestError(413, "too_large", [_error([], msg, "too_large")])


class _NonFinite:
    """Stands in for a ``NaN``/``Infinity`` literal, which Python's json accepts, so the
    error can name the field that held it."""

    __slots__ = ("literal",)

    def __init__(self, literal: str):
        self.literal = literal


@dataclass
class ParsedRequest:
    features: np.ndarray  # float32, (n, len(FEATURE_COLUMNS)), schema order
    ids: list = field(default_factory=list)
    single: bool = False


def parse_request(body: bytes, *, max_transactions: int = MAX_TRANSACTIONS) -> ParsedRequest:
    if not body.strip():
        raise malformed("empty body: expected a JSON object or a list of objects")
    try:
        # orjson parses a batch of 1,000 in a quarter of the standard library's time.
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses some bodies that the standard library reads: NaN and Infinity
        # literals (refused below, naming each field that holds one), and lone surrogates.
        # The standard library decides, and words the error for real syntax faults.
        try:
            document = json.loads(body, parse_constant=_NonFinite)
        except (ValueError, RecursionError) as error:  # JSONDecodeError, bad UTF-8, deep nesting
            raise malformed(f"malformed JSON: {error}") from None
    if isinstance(document, dict):
        items, single = [document], True
    elif isinstance(document, list):
        items, single = document, False
    else:
        raise RequestError(
            422, "validation", [_error([], "expected a JSON object or a list of objects", "type")]
        )
    if not items:
        raise RequestError(422, "validation", [_error([], "empty list of transactions", "empty")])
    if len(items) > max_transactions:
        raise too_large(f"{len(items)} transactions; at most {max_transactions} per request")
    _refuse_repeated_fields(body, items, single)
    features = _fast_features(items)
    if features is None:
        _raise_field_errors(items, single)
    ids = [_transaction_id(item) for item in items]
    if any(i is _BAD_ID for i in ids):
        _raise_field_errors(items, single)
    return ParsedRequest(features=features, ids=ids, single=single)


class _Fields(dict):
    """A JSON object that remembers the names it held more than once."""

    repeated: tuple[str, ...] = ()


def _fields(pairs: list[tuple[str, object]]) -> _Fields:
    document = _Fields(pairs)
    if len(document) < len(pairs):
        seen: set[str] = set()
        document.repeated = tuple(dict.fromkeys(k for k, _ in pairs if k in seen or seen.add(k)))
    return document


def _refuse_repeated_fields(body: bytes, items: list, single: bool) -> None:
    """A field given twice is ambiguous, as a duplicated column is in a file: refused.

    The parsers keep the last of repeated names. Every name and every text value puts two
    quotes in the body, so a body with more quotes than the parsed transactions account for
    (a repeated name, or text where numbers belong) is read again keeping every pair; one
    count of the body is all a valid request costs."""
    accounted = 0
    for item in items:
        if type(item) is dict:
            accounted += 2 * len(item) + sum(2 for name in ID_FIELDS if type(item.get(name)) is str)
    if body.count(b'"') <= accounted:
        return
    try:
        document = json.loads(body, object_pairs_hook=_fields, parse_constant=_NonFinite)
    except (ValueError, RecursionError):
        return  # orjson read it and this parser cannot: nothing more to learn here
    errors = [
        _error([name] if single else [index, name], f"field {name!r} is given more than once", "duplicate")
        for index, item in enumerate([document] if single else document)
        for name in getattr(item, "repeated", ())
    ]
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        raise RequestError(422, "validation", shown, truncated=len(errors) - len(shown))


def _fast_features(items: list) -> np.ndarray | None:
    """The feature matrix when every item is valid, else None (no detail)."""
    flat: list = []
    for item in items:
        if type(item) is not dict or not (_FEATURES <= item.keys() <= _ALLOWED):
            return None
        flat.extend(_row_values(item))
    if not set(map(type, flat)) <= _NUMERIC_TYPES:
        return None
    try:
        values = np.array(flat, dtype=np.float64).reshape(len(items), len(FEATURE_COLUMNS))
    except OverflowError:  # an integer beyond float64
        return None
    if not np.isfinite(values).all() or (np.abs(values) > MAX_ABS_VALUE).any():
        return None
    if (values[:, _NON_NEGATIVE] < 0).any():
        return None
    # float64 -> float32, exactly as the batch path converts what it parsed from a file.
    return values.astype(np.float32)


_BAD_ID = object()


def _transaction_id(item: dict):
    for name in ID_FIELDS:
        if name in item:
            value = item[name]
            if value is None:
                continue
            if (type(value) is int and value in _ID_INTEGER_RANGE) or (
                # Blank is empty: the batch files' id rule (no label could name it).
                type(value) is str and value.strip() and len(value) <= MAX_ID_LENGTH
            ):
                return value
            return _BAD_ID
    return None


def _value_problem(column: str, value) -> str | None:
    if isinstance(value, _NonFinite):
        return f"must be a finite number, got {value.literal}"
    if type(value) not in _NUMERIC_TYPES:
        return f"must be a number, got {_json_type(value)}"
    try:
        number = float(value)
    except OverflowError:
        return "out of range"
    if not math.isfinite(number):
        return "must be a finite number"
    if abs(number) > MAX_ABS_VALUE:
        # The batch readers' limit (schema.MAX_ABS_VALUE): one rule for every entry point.
        return f"out of range (beyond +/-{MAX_ABS_VALUE:g})"
    if column in NON_NEGATIVE_COLUMNS and number < 0:
        return "must not be negative"
    return None


def _json_type(value) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _item_errors(item, prefix: list) -> list[dict]:
    if type(item) is not dict:
        return [_error(prefix, f"expected an object, got {_json_type(item)}", "type")]
    errors = []
    for name in FEATURE_COLUMNS:
        if name not in item:
            errors.append(_error([*prefix, name], "field required", "missing"))
            continue
        problem = _value_problem(name, item[name])
        if problem:
            errors.append(_error([*prefix, name], problem, "value"))
    for name in sorted(item.keys() - _ALLOWED, key=str):
        msg = "labels are not accepted" if name == LABEL else "extra field not permitted"
        errors.append(_error([*prefix, name], msg, "extra_forbidden"))
    if _transaction_id(item) is _BAD_ID:
        name = next(n for n in ID_FIELDS if item.get(n) is not None)
        errors.append(
            _error([*prefix, name], f"must be a 64-bit integer or a string of 1-{MAX_ID_LENGTH} "
                   "characters, not all blank", "value")
        )
    return errors


def _raise_field_errors(items: list, single: bool) -> None:
    errors: list[dict] = []
    for index, item in enumerate(items):
        errors.extend(_item_errors(item, [] if single else [index]))
    if not errors:  # the fast path and this walk disagree: still a refusal, never a 500
        errors = [_error([], "invalid transactions", "value")]
    shown = errors[:MAX_REPORTED_ERRORS]
    raise RequestError(422, "validation", shown, truncated=len(errors) - len(shown))
