"""The ``search_logged_models`` filter (spec §4.6), on the shared search grammar.

Attributes are ``name``, ``model_id``, ``model_type``, ``status``, ``source_run_id`` and the
timestamps ``creation_timestamp`` (also ``creation_time``, ``creation_timestamp_ms``) and
``last_updated_timestamp`` (also ``last_updated_time``, ``last_updated_timestamp_ms``);
``metrics.<key>`` compares numbers, ``params.<key>`` and ``tags.<key>`` strings. A ``status``
value is any spelling of a :class:`~runyard.entities.LoggedModelStatus` (``'READY'``,
``'LOGGED_MODEL_READY'``). Order-by fields are the attribute names (and their aliases) and
``metrics.<key>``.
"""

from __future__ import annotations

from runyard.entities import LoggedModelStatus
from runyard.errors import InvalidFilter, InvalidParameterValue

# The rules machinery is private to the grammar module: this is its third user, alongside runs
# and experiments, kept in its own file so the grammar stays one list of search APIs.
from runyard.store.search.grammar import (
    _LIST_OPS,
    _NUMERIC_OPS,
    _STRING_OPS,
    Comparison,
    Value,
    _parse_filter,
    _Rules,
)

__all__ = [
    "LOGGED_MODEL_ATTRIBUTES",
    "NUMERIC_ATTRIBUTES",
    "order_by_attribute",
    "parse_logged_model_filter",
]

#: Every accepted spelling of an attribute → its canonical name.
LOGGED_MODEL_ATTRIBUTES: dict[str, str] = {
    "name": "name",
    "model_id": "model_id",
    "model_type": "model_type",
    "status": "status",
    "source_run_id": "source_run_id",
    "creation_timestamp": "creation_timestamp",
    "creation_time": "creation_timestamp",
    "creation_timestamp_ms": "creation_timestamp",
    "last_updated_timestamp": "last_updated_timestamp",
    "last_updated_time": "last_updated_timestamp",
    "last_updated_timestamp_ms": "last_updated_timestamp",
}
NUMERIC_ATTRIBUTES = frozenset({"creation_timestamp", "last_updated_timestamp"})

_RULES = _Rules(
    name="logged models",
    entities={
        "attribute": "attribute",
        "attributes": "attribute",
        "metric": "metric",
        "metrics": "metric",
        "param": "param",
        "params": "param",
        "tag": "tag",
        "tags": "tag",
    },
    attributes=LOGGED_MODEL_ATTRIBUTES,
    attribute_ops={
        "name": _STRING_OPS | _LIST_OPS,
        "model_id": _STRING_OPS | _LIST_OPS,
        "model_type": _STRING_OPS,
        "source_run_id": _STRING_OPS | _LIST_OPS,
        "status": frozenset({"=", "!="}) | _LIST_OPS,
        "creation_timestamp": _NUMERIC_OPS,
        "last_updated_timestamp": _NUMERIC_OPS,
    },
    numeric_attributes=NUMERIC_ATTRIBUTES,
    orderable_entities=frozenset({"attribute", "metric"}),
)


def _status_number(value: object) -> int:
    try:
        return LoggedModelStatus.parse(value).to_int()
    except InvalidParameterValue as error:
        raise InvalidFilter(f"Invalid filter string: {error.message}") from None


def parse_logged_model_filter(filter_string: str | None) -> list[Comparison]:
    """Parse a ``search_logged_models`` filter into AND-ed comparisons.

    Args:
        filter_string: e.g. ``"name = 'model' AND metrics.acc > 0.9"``; ``None`` or blank
            means no filter.

    Returns:
        One :class:`~runyard.store.search.grammar.Comparison` per clause; ``status`` values
        are already status numbers (1 pending, 2 ready, 3 upload failed).

    Raises:
        InvalidFilter: If the string is malformed or not allowed for logged models.
    """
    comparisons = _parse_filter(filter_string, _RULES)
    out = []
    for item in comparisons:
        if item.entity == "attribute" and item.key == "status":
            value: Value
            if isinstance(item.value, tuple):
                value = tuple(_status_number(v) for v in item.value)
            else:
                value = _status_number(item.value)
            item = Comparison(item.entity, item.key, item.op, value, item.position)
        out.append(item)
    return out


def order_by_attribute(field_name: str) -> str | None:
    """The canonical attribute an order-by ``field_name`` names, or None if it is not one."""
    return LOGGED_MODEL_ATTRIBUTES.get(field_name.removeprefix("attributes."))
