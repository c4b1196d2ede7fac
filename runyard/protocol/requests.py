"""Decoding request parameters the way MLflow's server does (spec §1.2).

Each endpoint declares its fields once; :func:`parse_params` turns a JSON body or a query string
into plain Python values:

* names in snake_case or lowerCamelCase (both spellings of one field → error);
* int64 as JSON numbers or numeric strings; doubles as numbers or ``"NaN"``/``"Infinity"``;
* booleans as JSON booleans or ``true``/``false`` in any case (query strings send ``True``);
* enums by name or number;
* repeated fields as JSON lists, or repeated query keys;
* unknown fields ignored; a required field that is missing or an empty string is refused with
  MLflow's message.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runyard.entities import RunStatus, ViewType
from runyard.errors import InvalidParameterValue

__all__ = ["Field", "camel", "missing_parameter", "parse_params"]

_SPECIAL_DOUBLES = {"nan": math.nan, "infinity": math.inf, "-infinity": -math.inf}
#: int64 fields hold what a signed 64-bit integer holds; larger values are refused as protobuf
#: refuses them (a database column could not store them either).
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ENUMS: dict[str, Mapping[str, int]] = {
    "ViewType": ViewType._names,
    "RunStatus": RunStatus._names,
}


def camel(name: str) -> str:
    """``run_id`` → ``runId``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def missing_parameter(name: str) -> InvalidParameterValue:
    """MLflow's error for a required field that is absent or empty."""
    return InvalidParameterValue(
        f"Missing value for required parameter '{name}'. "
        "See the API docs for more information about request parameters."
    )


def _bad(name: str, value: Any, expected: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Invalid value {value!r} for parameter '{name}' supplied: expected {expected}. "
        "See the API docs for more information about request parameters."
    )


def _string(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # proto-JSON accepts numbers for string fields only as text; ids sent as 1 are common.
        return str(value)
    raise _bad(name, value, "a string")


def _int(name: str, value: Any) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:  # not digits, or more digits than int() converts
            number = None
    if number is None or not _INT64_MIN <= number <= _INT64_MAX:
        raise _bad(name, value, "an integer")
    return number


def _double(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise _bad(name, value, "a number")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int beyond the range of a double
            raise _bad(name, value, "a number") from None
    if isinstance(value, str):
        special = _SPECIAL_DOUBLES.get(value.strip().lower())
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise _bad(name, value, "a number")


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _bad(name, value, "true or false")


def _enum(enum: str) -> Callable[[str, Any], str]:
    names = _ENUMS[enum]
    by_number = {number: label for label, number in names.items()}

    def parse(name: str, value: Any) -> str:
        if isinstance(value, str) and value.upper() in names:
            return value.upper()
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value in by_number:
            return by_number[value]
        raise _bad(name, value, f"one of {', '.join(names)}")

    return parse


def _message(name: str, value: Any) -> dict[str, Any]:
    if type(value) is dict:  # decoded JSON, held by nobody else: no copy (1,000 per batch)
        return value
    if isinstance(value, Mapping):
        return dict(value)
    raise _bad(name, value, "an object")


_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "string": _string,
    "int": _int,
    "double": _double,
    "bool": _bool,
    "message": _message,
    "ViewType": _enum("ViewType"),
    "RunStatus": _enum("RunStatus"),
}


@dataclass(frozen=True)
class Field:
    """One request field: its proto name, type, and whether it is required or repeated."""

    name: str
    kind: str = "string"
    required: bool = False
    repeated: bool = False
    aliases: tuple[str, ...] = ()

    def spellings(self) -> list[str]:
        """Every accepted key, snake_case first."""
        names = [self.name, *self.aliases]
        return [spelling for n in names for spelling in dict.fromkeys((n, camel(n)))]


def _lookup(field: Field, data: Mapping[str, Any]) -> tuple[bool, Any]:
    found = [(key, data[key]) for key in field.spellings() if key in data]
    primary = [k for k, _ in found if k in (field.name, camel(field.name))]
    if len(primary) > 1:
        raise InvalidParameterValue(
            f"Both '{primary[0]}' and '{primary[1]}' were supplied; send one spelling of "
            f"'{field.name}'."
        )
    if not found:
        return False, None
    return True, found[0][1]


def parse_params(
    fields: Sequence[Field], data: Mapping[str, Any], query: bool = False
) -> dict[str, Any]:
    """Decode ``data`` (a JSON object, or a query string as ``{name: [values]}``)."""
    out: dict[str, Any] = {}
    for field in fields:
        present, raw = _lookup(field, data)
        parse = _PARSERS[field.kind]
        if field.repeated:
            if not present or raw is None:
                values: list[Any] = []
            elif isinstance(raw, list):
                values = raw
            else:
                raise _bad(field.name, raw, "a list")
            out[field.name] = [parse(field.name, v) for v in values]
            if field.required and not out[field.name]:
                raise missing_parameter(field.name)
            continue
        if query and present:
            raw = raw[0] if raw else None
        if not present or raw is None or (raw == "" and field.kind == "string"):
            if field.required:
                raise missing_parameter(field.name)
            out[field.name] = None
            continue
        out[field.name] = parse(field.name, raw)
    return out
