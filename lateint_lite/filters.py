"""Metadata filters: validating a caller's ``where`` mapping into typed conditions.

``where`` maps top-level metadata keys to a value (equality) or to an operator
mapping, all conditions combined with AND::

    {"lang": "en"}                            # equality
    {"lang": {"in": ["en", "de"]}}            # membership ("nin": not in)
    {"year": {"gte": 2020, "lt": 2024}}       # numeric ranges (gt, gte, lt, lte)
    {"date": {"gte": "2024-01-01"}}           # ISO dates compare as text
    {"draft": {"ne": True}, "tags": {"exists": True}}
    {"path": {"prefix": "docs/guides/"}}      # strings starting with a prefix
    {"$or": [{"lang": "en"}, {"year": {"gte": 2024}}]}   # any of the groups (each an AND)

``$or`` is the one reserved key: its groups are where mappings themselves
(nesting allowed, up to ``MAX_OR_DEPTH``); other keys are combined with it by AND.

Keys and values are never spliced into SQL: store.py turns each condition
into a parameterized ``json_each`` test, so any string is matched literally.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidInputError

Scalar = str | int | float | bool | None
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte")
MEMBERSHIP = ("in", "nin")
OPERATORS = (*COMPARISONS, *MEMBERSHIP, "exists", "prefix")
#: The key whose value is a list of where mappings, any of which may match.
OR_KEY = "$or"
#: Groups in one ``$or`` and how deep ``$or`` may nest: bounds on the SQL a filter becomes.
MAX_OR_GROUPS = 100
MAX_OR_DEPTH = 4
#: Values in one in/nin list: they become flat ``IN (...)`` parameter lists, far below SQLite's
#: 32,766 bound parameters.
MAX_VALUES = 10_000


@dataclass(frozen=True)
class Condition:
    """One test on a top-level metadata key."""

    key: str
    op: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class AnyOf:
    """Matches when any group matches; a group matches when all its clauses do."""

    groups: tuple[tuple[Clause, ...], ...]


Clause = Condition | AnyOf


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


def parse_where(where: Mapping[str, Any] | None, depth: int = 0) -> tuple[Clause, ...]:
    """Validated clauses of a ``where`` mapping (empty for None or {}), all to be met."""
    if where is None:
        return ()
    if not isinstance(where, Mapping):
        raise InvalidInputError(f"where must be a mapping, got {type(where).__name__}")
    clauses: list[Clause] = []
    for key, spec in where.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError("where keys must be non-empty strings")
        valid_unicode(key, "where key")
        if key == OR_KEY:
            clauses.append(_any_of(spec, depth))
        elif not isinstance(spec, Mapping):
            clauses.append(Condition(key, "eq", (_scalar(spec, f"where[{key!r}]"),)))
        elif not spec:
            raise InvalidInputError(f"where[{key!r}]: empty operator mapping")
        else:
            clauses.extend(_condition(key, op, value) for op, value in spec.items())
    return tuple(clauses)


def where_from_json(text: str | None, what: str = "where") -> dict[str, Any] | None:
    """A ``where`` mapping written as JSON text (a query parameter, a command-line option)."""
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{what}: not valid JSON: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what}: expected a JSON object")
    return value


def _any_of(spec: object, depth: int) -> AnyOf:
    where = f"where[{OR_KEY!r}]"
    if depth >= MAX_OR_DEPTH:
        raise InvalidInputError(f"{where}: nested more than {MAX_OR_DEPTH} levels deep")
    if isinstance(spec, (str, bytes, Mapping)) or not isinstance(spec, (list, tuple)):
        raise InvalidInputError(f"{where}: expected a list of where mappings")
    if not 1 <= len(spec) <= MAX_OR_GROUPS:
        raise InvalidInputError(f"{where}: expected 1 to {MAX_OR_GROUPS} groups")
    groups = tuple(parse_where(group, depth + 1) for group in spec)
    if any(not group for group in groups):
        raise InvalidInputError(f"{where}: a group must hold at least one condition")
    return AnyOf(groups)


def _condition(key: str, op: object, value: object) -> Condition:
    where = f"where[{key!r}][{op!r}]"
    if op not in OPERATORS:
        raise InvalidInputError(f"{where}: unknown operator; use one of {', '.join(OPERATORS)}")
    if op == "prefix":
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"{where}: expected a non-empty string")
        return Condition(key, "prefix", (valid_unicode(value, where),))
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
