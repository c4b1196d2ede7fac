"""``search_logged_models`` in SQL: filters, order, and MLflow's bound page tokens (spec §4.6).

* Attribute clauses compare ``logged_models`` columns; ``params.``/``tags.`` clauses are
  correlated ``EXISTS`` on their ``(model_id, key)`` primary keys; a ``metrics.`` clause matches a
  model with *any* point of that metric satisfying it (MLflow's rule), restricted to the
  request's ``datasets`` when given. Datasets without a metric clause keep the models that have
  a metric on one of them.
* ``order_by`` entries are ``{field_name, ascending, dataset_name, dataset_digest}``; a metric
  sorts by its latest point (greatest timestamp, then step), missing values and NaN last in
  both directions. Ties fall back to newest first, then ``model_id``.
* A page token is MLflow's: base64 JSON of ``experiment_ids``, ``filter_string``, ``order_by``
  and ``offset``; replaying it with a different search is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, false, null, or_, select, true
from sqlalchemy.sql.elements import UnaryExpression

from runyard.entities import LifecycleStage
from runyard.errors import InvalidParameterValue
from runyard.store.search.grammar import Comparison
from runyard.store.search.logged_model_filter import (
    order_by_attribute,
    parse_logged_model_filter,
)
from runyard.store.sql import schema as t

# The dialect-aware comparator (case-sensitive LIKE everywhere) is shared with run search.
from runyard.store.sql.search_sql import _compare

__all__ = [
    "PageToken",
    "normalize_datasets",
    "normalize_order_by",
    "select_logged_models",
]

_MAX_DOUBLE = 1.7976931348623157e308
_lm = t.logged_models
_ATTRIBUTE_COLUMNS: dict[str, Any] = {
    "name": _lm.c.name,
    "model_id": _lm.c.model_id,
    "model_type": _lm.c.model_type,
    "status": _lm.c.status,
    "source_run_id": _lm.c.source_run_id,
    "creation_timestamp": _lm.c.creation_timestamp_ms,
    "last_updated_timestamp": _lm.c.last_updated_timestamp_ms,
}
_KEY_VALUE_TABLES = {"param": t.logged_model_params, "tag": t.logged_model_tags}
SortKey = ColumnElement[Any] | UnaryExpression[Any]


# -- request normalisation -------------------------------------------------------------------
def _opt_text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidParameterValue(f"Invalid value {value!r} for '{name}': expected true or false.")


def normalize_datasets(datasets: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """``[{dataset_name, dataset_digest}]`` with the name required, as MLflow checks it."""
    out = []
    for item in datasets or ():
        name = _opt_text(item.get("dataset_name")) if isinstance(item, Mapping) else None
        if name is None:
            raise InvalidParameterValue(
                "`dataset_name` in the `datasets` clause must be specified."
            )
        out.append({"dataset_name": name, "dataset_digest": _opt_text(item.get("dataset_digest"))})
    return out


def normalize_order_by(order_by: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Order-by entries with every key present (``ascending`` defaults to true)."""
    out = []
    for index, item in enumerate(order_by or ()):
        field_name = item.get("field_name") if isinstance(item, Mapping) else None
        if not isinstance(field_name, str) or not field_name:
            raise InvalidParameterValue(
                f"Invalid order_by[{index}]: each entry needs a 'field_name', e.g. "
                "{'field_name': 'metrics.accuracy', 'ascending': False}."
            )
        ascending = item.get("ascending")
        out.append(
            {
                "field_name": field_name,
                "ascending": True if ascending is None else _bool(ascending, "ascending"),
                "dataset_name": _opt_text(item.get("dataset_name")),
                "dataset_digest": _opt_text(item.get("dataset_digest")),
            }
        )
    return out


# -- page tokens -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PageToken:
    """Where a search resumes, and which search it belongs to."""

    experiment_ids: list[str]
    filter_string: str | None
    order_by: list[dict[str, Any]] | None
    offset: int

    def encode(self) -> str:
        """base64 of the JSON, byte for byte the token MLflow emits."""
        doc = {
            "experiment_ids": self.experiment_ids,
            "filter_string": self.filter_string,
            "order_by": self.order_by,
            "offset": self.offset,
        }
        return base64.b64encode(json.dumps(doc).encode("utf-8")).decode("utf-8")

    @classmethod
    def decode(cls, token: str) -> PageToken:
        """Parse a token; anything that is not one is INVALID_PARAMETER_VALUE."""
        try:
            doc = json.loads(base64.b64decode(token, validate=True))
        except (binascii.Error, ValueError):
            raise InvalidParameterValue(f"Invalid page token: {token!r}") from None
        offset = doc.get("offset") if isinstance(doc, dict) else None
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidParameterValue(f"Invalid page token: {token!r}")
        return cls(
            experiment_ids=[str(e) for e in doc.get("experiment_ids") or []],
            filter_string=doc.get("filter_string") or None,
            order_by=doc.get("order_by") or None,
            offset=offset,
        )

    def check_matches(self, other: PageToken) -> None:
        """Refuse a token replayed with another search (MLflow's messages)."""
        for subject, verb, requested, mine, theirs in (
            ("Experiment IDs", "do", "experiment IDs", self.experiment_ids, other.experiment_ids),
            ("Filter string", "does", "filter string", self.filter_string, other.filter_string),
            ("Order by", "does", "order by", self.order_by, other.order_by),
        ):
            if mine != theirs:
                raise InvalidParameterValue(
                    f"{subject} in the page token {verb} not match the requested {requested}. "
                    f"Expected: {theirs}. Found: {mine}"
                )


# -- filters ---------------------------------------------------------------------------------
def _metric_value_condition(table: Any, op: str, value: float) -> ColumnElement[bool]:
    """NaN is stored as 0 with ``is_nan``: it only ever satisfies ``!=``."""
    value = max(-_MAX_DOUBLE, min(_MAX_DOUBLE, value))
    condition = _compare(table.c.value, op, value)
    if op == "!=":
        return or_(condition, table.c.is_nan == true())
    return and_(condition, table.c.is_nan == false())


def _dataset_match(table: Any, datasets: Sequence[Mapping[str, Any]]) -> ColumnElement[bool]:
    options = []
    for item in datasets:
        match = table.c.dataset_name == item["dataset_name"]
        if item.get("dataset_digest"):
            match = and_(match, table.c.dataset_digest == item["dataset_digest"])
        options.append(match)
    return or_(*options)


def _filter(
    comparison: Comparison, index: int, datasets: Sequence[Mapping[str, Any]]
) -> ColumnElement[bool]:
    entity, key, op, value = comparison.entity, comparison.key, comparison.op, comparison.value
    if entity == "attribute":
        return _compare(_ATTRIBUTE_COLUMNS[key], op, value)
    if entity == "metric":
        m = t.logged_model_metrics.alias(f"f{index}_metric")
        conditions = [
            m.c.model_id == _lm.c.model_id,
            m.c.key == key,
            _metric_value_condition(m, op, float(value)),  # type: ignore[arg-type]
        ]
        if datasets:
            conditions.append(_dataset_match(m, datasets))
        return select(m.c.model_id).where(*conditions).correlate(_lm).exists()
    table = _KEY_VALUE_TABLES[entity].alias(f"f{index}_{entity}")
    conditions = [table.c.model_id == _lm.c.model_id, table.c.key == key]
    if op in ("IS NULL", "IS NOT NULL"):
        found = select(table.c.model_id).where(*conditions).correlate(_lm).exists()
        return ~found if op == "IS NULL" else found
    conditions.append(_compare(table.c.value, op, value))
    return select(table.c.model_id).where(*conditions).correlate(_lm).exists()


# -- order -----------------------------------------------------------------------------------
def _direction(column: ColumnElement[Any], ascending: bool) -> UnaryExpression[Any]:
    return column.asc() if ascending else column.desc()


def _latest_metric(index: int, key: str, item: Mapping[str, Any]) -> ColumnElement[Any]:
    """The value of a model's latest point of ``key`` (NULL for NaN or no point)."""
    m = t.logged_model_metrics.alias(f"o{index}_metric")
    conditions = [m.c.model_id == _lm.c.model_id, m.c.key == key]
    if item.get("dataset_name"):
        conditions.append(m.c.dataset_name == item["dataset_name"])
    if item.get("dataset_digest"):
        conditions.append(m.c.dataset_digest == item["dataset_digest"])
    return (
        select(case((m.c.is_nan == true(), null()), else_=m.c.value))
        .where(*conditions)
        .order_by(m.c.timestamp.desc(), m.c.step.desc())
        .limit(1)
        .correlate(_lm)
        .scalar_subquery()
    )


def _sort_keys(order_by: Sequence[Mapping[str, Any]]) -> list[SortKey]:
    keys: list[SortKey] = []
    seen_created = seen_id = False
    for index, item in enumerate(order_by):
        field_name, ascending = item["field_name"], item["ascending"]
        attribute = order_by_attribute(field_name)
        if attribute is not None:
            column = _ATTRIBUTE_COLUMNS[attribute]
            seen_created = seen_created or attribute == "creation_timestamp"
            seen_id = seen_id or attribute == "model_id"
            if column.nullable:
                keys.append(case((column.is_(None), 1), else_=0))
            keys.append(_direction(column, ascending))
            continue
        entity, _, key = field_name.partition(".")
        if entity not in ("metric", "metrics") or not key:
            raise InvalidParameterValue(
                f"Invalid order by field name: {field_name}. Use an attribute (name, model_id, "
                "model_type, status, source_run_id, creation_timestamp, last_updated_timestamp) "
                "or metrics.<key>."
            )
        latest = _latest_metric(index, key.strip("`"), item)
        keys.extend([case((latest.is_(None), 1), else_=0), _direction(latest, ascending)])
    if not seen_created:
        keys.append(_lm.c.creation_timestamp_ms.desc())
    if not seen_id:
        keys.append(_lm.c.model_id.asc())
    return keys


def select_logged_models(
    experiment_ids: Sequence[int],
    filter_string: str | None,
    datasets: Sequence[Mapping[str, Any]],
    order_by: Sequence[Mapping[str, Any]],
    offset: int,
    limit: int,
) -> Select[Any]:
    """One page of active logged models of the experiments, in the requested order.

    Args:
        experiment_ids: Experiments to search.
        filter_string: MLflow filter syntax (spec §4.6); ``None`` for none.
        datasets: Normalised ``datasets`` (see :func:`normalize_datasets`).
        order_by: Normalised order-by entries (see :func:`normalize_order_by`).
        offset: Rows to skip.
        limit: Rows to return (ask for one more than a page to learn if another exists).

    Returns:
        A select of every ``logged_models`` column.

    Raises:
        InvalidFilter: For a malformed filter.
        InvalidParameterValue: For an unknown order-by field.
    """
    comparisons = parse_logged_model_filter(filter_string)
    conditions: list[ColumnElement[bool]] = [
        _lm.c.experiment_id.in_(list(experiment_ids)),
        _lm.c.lifecycle_stage == LifecycleStage.ACTIVE,
    ]
    # Attribute checks first: they cost nothing once the row is read.
    ordered = sorted(enumerate(comparisons), key=lambda item: item[1].entity != "attribute")
    conditions.extend(_filter(c, i, datasets) for i, c in ordered)
    if datasets and not any(c.entity == "metric" for c in comparisons):
        m = t.logged_model_metrics.alias("any_dataset_metric")
        conditions.append(
            select(m.c.model_id)
            .where(m.c.model_id == _lm.c.model_id, _dataset_match(m, datasets))
            .correlate(_lm)
            .exists()
        )
    return (
        select(*_lm.c)
        .where(*conditions)
        .order_by(*_sort_keys(order_by))
        .offset(offset)
        .limit(limit)
    )
