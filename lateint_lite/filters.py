"""Metadata filters: validating a caller's ``where`` mapping into typed conditions.

``where`` maps top-level metadata keys to a value (equality) or to an operator
mapping, all conditions combined with AND::

    {"lang": "en"}                            # equality
    {"lang": {"in": ["en", "de"]}}            # membership ("nin": not in)
    {"year": {"gte": 2020, "lt": 2024}}       # numeric ranges (gt, gte, lt, lte)
    {"date": {"gte": "2024-01-01"}}           # ISO dates compare as text
    {"draft": {"ne": True}, "tags": {"exists": True}}

Keys and values are never spliced into SQL: store.py turns each condition
into a parameterized ``json_each`` test, so any string is matched literally.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidInputError

Scalar = str | int | float | bool | None
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte")
MEMBERSHIP = ("in", "nin")
OPERATORS = (*COMPARISONS, *MEMBERSHIP, "exists")
#: Values in one in/nin list: they become flat ``IN (...)`` parameter lists, far below SQLite's
#: 32,766 bound parameters.
MAX_VALUES = 10_000


@dataclass(frozen=True)
class Condition:
    """One test on a top-level metadata key."""

    key: str
    op: str
    values: tuple[Scalar, ...]


#: SQLite integers are signed 64-bit.
INT_RANGE = (-(2**63), 2**63 - 1)


def _scalar(value: object, where: str) -> Scalar:
    """A plain str/int/float/bool/None (numpy scalars converted), checked against what SQLite holds."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return valid_unicode(value, where)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise InvalidInputError(f"{where}: integer {value} does not fit in 64 bits")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{where}: {value} cannot be compared")
        return float(value)
    raise InvalidInputError(f"{where}: expected a string, number, boolean or null, got {type(value).__name__}")


def valid_unicode(text: str, what: str) -> str:
    """``text``, if UTF-8 can store it (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} is not valid Unicode (lone surrogate at position {exc.start}); "
            "decode bytes with errors='replace' first"
        ) from exc
    return text


def parse_where(where: Mapping[str, Any] | None) -> tuple[Condition, ...]:
    """Validated conditions of a ``where`` mapping (empty for None or {})."""
    if where is None:
        return ()
    if not isinstance(where, Mapping):
        raise InvalidInputError(f"where must be a mapping, got {type(where).__name__}")
    conditions: list[Condition] = []
    for key, spec in where.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError("where keys must be non-empty strings")
        valid_unicode(key, "where key")
        if not isinstance(spec, Mapping):
            conditions.append(Condition(key, "eq", (_scalar(spec, f"where[{key!r}]"),)))
            continue
        if not spec:
            raise InvalidInputError(f"where[{key!r}]: empty operator mapping")
        for op, value in spec.items():
            conditions.append(_condition(key, op, value))
    return tuple(conditions)


def _condition(key: str, op: object, value: object) -> Condition:
    where = f"where[{key!r}][{op!r}]"
    if op not in OPERATORS:
        raise InvalidInputError(f"{where}: unknown operator; use one of {', '.join(OPERATORS)}")
    if op == "exists":
        if isinstance(value, np.bool_):
            value = bool(value)
        if not isinstance(value, bool):
            raise InvalidInputError(f"{where}: expected true or false")
        return Condition(key, "exists", (value,))
    if op in MEMBERSHIP:
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise InvalidInputError(f"{where}: expected a list of values")
        values = tuple(_scalar(v, where) for v in value)
        if not values or len(values) > MAX_VALUES:
            raise InvalidInputError(f"{where}: expected 1 to {MAX_VALUES} values")
        return Condition(key, str(op), values)
    scalar = _scalar(value, where)
    if scalar is None and op != "eq" and op != "ne":
        raise InvalidInputError(f"{where}: null can only be tested with eq or ne")
    if isinstance(scalar, bool) and op not in ("eq", "ne"):
        raise InvalidInputError(f"{where}: booleans cannot be range-compared")
    return Condition(key, str(op), (scalar,))
