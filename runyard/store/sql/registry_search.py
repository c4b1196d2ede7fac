"""Registry searches, row loading and value rules.

MLflow's filter and order-by rules for registered models (spec §4.4) and model versions (§4.5)
are compiled to SQLAlchemy Core; batch loaders turn a page of rows into entities with a fixed
number of queries; the validation helpers hold the registry's limits and MLflow's messages.

Filters reuse the tokenizer and parser of :mod:`runyard.store.search.grammar` with the registry's
own keys:

* registered models: ``name`` (``= != LIKE ILIKE IN NOT IN``) and ``tags.<key>``;
* model versions: ``name``, ``run_id`` (both with ``IN``/``NOT IN``), ``source_path`` (the
  version's ``source``), ``version_number`` (numeric comparisons) and ``tags.<key>``.

Prompts (MLflow 3 keeps prompts as registered models tagged ``mlflow.prompt.is_prompt = 'true'``)
are left out of every search unless the filter asks for them with ``= 'true'`` (or
``!= 'false'``) on that tag, exactly as MLflow's SQL store does; a model without the tag thus
matches ``!= 'true'`` and ``= 'false'``, which is what the 3.x client sends.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, and_, func, select
from sqlalchemy.sql.elements import UnaryExpression

from runyard.entities import ModelVersion, RegisteredModel, RegistryEvent
from runyard.errors import InvalidParameterValue
from runyard.protocol.requests import missing_parameter
from runyard.store.search.grammar import (
    Comparison,
    OrderBy,
    _parse_filter,
    _parse_order_by,
    _Rules,
)
from runyard.store.search.paging import encode_page_token
from runyard.store.sql import schema as t
from runyard.store.sql.search_sql import _compare
from runyard.utils.validation import validate_key

__all__ = [
    "ALIAS_ACTIONS",
    "COLUMN_LIMITS",
    "PROMPT_TAG",
    "STAGE_ACTIONS",
    "check_action",
    "check_max_results",
    "check_model_name",
    "check_widths",
    "event_from_row",
    "load_latest_versions",
    "load_model_versions",
    "load_registered_models",
    "page_of",
    "parse_version",
    "select_model_versions",
    "select_registered_models",
    "unique_tags",
    "validate_alias",
    "validate_new_model_name",
    "validate_registry_tag",
    "version_select",
]

#: The tag that marks a registered model (and its versions) as a prompt.
PROMPT_TAG = "mlflow.prompt.is_prompt"
_DEFAULT_VERSION_ORDER = ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]
# Keeps IN (...) lists far below every database's bound-parameter limit.
_CHUNK = 2000

_ENTITIES: dict[str, Any] = {
    "attribute": "attribute",
    "attributes": "attribute",
    "tag": "tag",
    "tags": "tag",
}
_STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})
_LIST_OPS = frozenset({"IN", "NOT IN"})
_NUMERIC_OPS = frozenset({"=", "!=", ">", ">=", "<", "<="})

_MODEL_FILTER = _Rules(
    name="registered models",
    entities=_ENTITIES,
    attributes={"name": "name"},
    attribute_ops={"name": _STRING_OPS | _LIST_OPS},
    numeric_attributes=frozenset(),
    orderable_entities=frozenset({"attribute"}),
)
_MODEL_ORDER = _Rules(
    name="registered models",
    entities=_ENTITIES,
    # Both timestamp keys sort by the last update, as in MLflow.
    attributes={
        "name": "name",
        "timestamp": "last_updated_timestamp",
        "last_updated_timestamp": "last_updated_timestamp",
    },
    attribute_ops={},
    numeric_attributes=frozenset(),
    orderable_entities=frozenset({"attribute"}),
)
_VERSION_FILTER = _Rules(
    name="model versions",
    entities=_ENTITIES,
    attributes={k: k for k in ("name", "run_id", "source_path", "version_number")},
    attribute_ops={
        "name": _STRING_OPS | _LIST_OPS,
        "run_id": _STRING_OPS | _LIST_OPS,
        "source_path": _STRING_OPS,
        "version_number": _NUMERIC_OPS,
    },
    numeric_attributes=frozenset({"version_number"}),
    orderable_entities=frozenset({"attribute"}),
    integer_numbers=True,
)
_VERSION_ORDER = _Rules(
    name="model versions",
    entities=_ENTITIES,
    attributes={
        k: k for k in ("name", "version_number", "creation_timestamp", "last_updated_timestamp")
    },
    attribute_ops={},
    numeric_attributes=frozenset(),
    orderable_entities=frozenset({"attribute"}),
)

rm = t.registered_models
mv = t.model_versions
_MODEL_COLUMNS = {"name": rm.c.name, "last_updated_timestamp": rm.c.last_updated_time}
_VERSION_COLUMNS = {
    "name": rm.c.name,
    "run_id": mv.c.run_id,
    "source_path": mv.c.source,
    "version_number": mv.c.version,
    "creation_timestamp": mv.c.creation_time,
    "last_updated_timestamp": mv.c.last_updated_time,
}


# --- Filters --------------------------------------------------------------------------------


def _queries_prompts(comparisons: Sequence[Comparison]) -> bool:
    """Whether the filter asks for prompts (MLflow looks at the first clause on the tag)."""
    for c in comparisons:
        if c.entity == "tag" and c.key == PROMPT_TAG:
            value = str(c.value).lower()
            return (c.op == "=" and value == "true") or (c.op == "!=" and value == "false")
    return False


def _tag_clause(
    tags: Any, owner: list[ColumnElement[bool]], comparison: Comparison
) -> ColumnElement[bool]:
    """EXISTS (or NOT EXISTS for IS NULL) a tag row of the owner with a matching value."""
    conditions = [*owner, tags.c.key == comparison.key]
    if comparison.op not in ("IS NULL", "IS NOT NULL"):
        conditions.append(_compare(tags.c.value, comparison.op, comparison.value))
    found = select(tags.c.key).where(*conditions).exists()
    return ~found if comparison.op == "IS NULL" else found


def _without_prompts(tags: Any, model_key: ColumnElement[Any]) -> ColumnElement[bool]:
    marked = (
        select(tags.c.model_key)
        .where(tags.c.model_key == model_key, tags.c.key == PROMPT_TAG, tags.c.value == "true")
        .exists()
    )
    return ~marked


def _model_conditions(filter_string: str | None) -> list[ColumnElement[bool]]:
    comparisons = _parse_filter(filter_string, _MODEL_FILTER)
    prompts = _queries_prompts(comparisons)
    conditions = [] if prompts else [_without_prompts(t.registered_model_tags, rm.c.model_key)]
    for index, c in enumerate(comparisons):
        if c.entity == "attribute":
            conditions.append(_compare(_MODEL_COLUMNS[c.key], c.op, c.value))
        elif prompts or c.key != PROMPT_TAG:
            tags = t.registered_model_tags.alias(f"f{index}_tag")
            conditions.append(_tag_clause(tags, [tags.c.model_key == rm.c.model_key], c))
    return conditions


def _version_conditions(filter_string: str | None) -> list[ColumnElement[bool]]:
    comparisons = _parse_filter(filter_string, _VERSION_FILTER)
    prompts = _queries_prompts(comparisons)
    conditions = [] if prompts else [_without_prompts(t.model_version_tags, mv.c.model_key)]
    for index, c in enumerate(comparisons):
        if c.entity == "attribute":
            conditions.append(_compare(_VERSION_COLUMNS[c.key], c.op, c.value))
        elif prompts or c.key != PROMPT_TAG:
            tags = t.model_version_tags.alias(f"f{index}_tag")
            owner = [tags.c.model_key == mv.c.model_key, tags.c.version == mv.c.version]
            conditions.append(_tag_clause(tags, owner, c))
    return conditions


# --- Ordering -------------------------------------------------------------------------------


def _sort_keys(orderings: Sequence[OrderBy], columns: dict[str, Any]) -> list[UnaryExpression[Any]]:
    return [columns[o.key].asc() if o.ascending else columns[o.key].desc() for o in orderings]


def select_registered_models(
    filter_string: str | None, order_by: Sequence[str] | None, offset: int, limit: int
) -> Select[Any]:
    """One page of ``search_registered_models``: ``registered_models`` rows, ordered by
    ``order_by`` (``name``, ``timestamp``/``last_updated_timestamp``) then ``name ASC``.

    Raises:
        InvalidFilter: For a malformed or unsupported filter or order_by.
    """
    conditions = _model_conditions(filter_string)
    orderings = _parse_order_by(order_by, _MODEL_ORDER, unique=True)
    keys = _sort_keys(orderings, _MODEL_COLUMNS)
    if not any(o.key == "name" for o in orderings):
        keys.append(rm.c.name.asc())
    return select(*rm.c).where(*conditions).order_by(*keys).offset(offset).limit(limit)


def version_select() -> Select[Any]:
    """``model_versions`` rows joined with their model's name (the shape the loaders take)."""
    return select(*mv.c, rm.c.name).select_from(mv.join(rm, rm.c.model_key == mv.c.model_key))


def select_model_versions(
    filter_string: str | None, order_by: Sequence[str] | None, offset: int, limit: int
) -> Select[Any]:
    """One page of ``search_model_versions``; the default order is
    ``last_updated_timestamp DESC, name ASC, version_number DESC`` and ``name ASC``,
    ``version_number DESC`` always end the order.

    Raises:
        InvalidFilter: For a malformed or unsupported filter or order_by.
    """
    conditions = _version_conditions(filter_string)
    orderings = _parse_order_by(order_by or _DEFAULT_VERSION_ORDER, _VERSION_ORDER, unique=True)
    keys = _sort_keys(orderings, _VERSION_COLUMNS)
    if not any(o.key == "name" for o in orderings):
        keys.append(rm.c.name.asc())
    if not any(o.key == "version_number" for o in orderings):
        keys.append(mv.c.version.desc())
    return version_select().where(*conditions).order_by(*keys).offset(offset).limit(limit)


# --- Rows to entities -----------------------------------------------------------------------


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _version_extras(
    conn: Connection, pairs: Sequence[tuple[int, int]]
) -> tuple[dict[tuple[int, int], dict[str, str]], dict[tuple[int, int], list[str]]]:
    """Tags and alias names of several ``(model_key, version)`` pairs, two queries a chunk."""
    tags: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
    aliases: dict[tuple[int, int], list[str]] = defaultdict(list)
    vt, al = t.model_version_tags, t.registered_model_aliases
    for chunk in _chunks(sorted(set(pairs))):
        wanted = set(chunk)
        keys = sorted({k for k, _ in chunk})
        versions = sorted({v for _, v in chunk})
        for key, version, tag_key, value in conn.execute(
            select(vt.c.model_key, vt.c.version, vt.c.key, vt.c.value)
            .where(vt.c.model_key.in_(keys), vt.c.version.in_(versions))
            .order_by(vt.c.model_key, vt.c.version, vt.c.key)
        ):
            if (key, version) in wanted:
                tags[key, version][tag_key] = value
        for key, version, alias in conn.execute(
            select(al.c.model_key, al.c.version, al.c.alias)
            .where(al.c.model_key.in_(keys), al.c.version.in_(versions))
            .order_by(al.c.model_key, al.c.alias)
        ):
            if (key, version) in wanted:
                aliases[key, version].append(alias)
    return tags, aliases


def _version_entity(row: Row[Any], tags: dict[str, str], aliases: list[str]) -> ModelVersion:
    return ModelVersion(
        name=row.name,
        version=str(row.version),
        creation_timestamp=row.creation_time,
        last_updated_timestamp=row.last_updated_time,
        description=row.description,
        user_id=row.user_id,
        current_stage=row.current_stage,
        source=row.source,
        run_id=row.run_id,
        status=row.status,
        status_message=row.status_message,
        tags=tags,
        run_link=row.run_link,
        aliases=aliases,
        model_id=row.model_id,
    )


def load_model_versions(conn: Connection, rows: Sequence[Row[Any]]) -> list[ModelVersion]:
    """ModelVersions for rows of :func:`version_select`, with their tags and aliases."""
    pairs = [(r.model_key, r.version) for r in rows]
    tags, aliases = _version_extras(conn, pairs)
    return [
        _version_entity(r, tags.get(p, {}), aliases.get(p, []))
        for r, p in zip(rows, pairs, strict=True)
    ]


def load_latest_versions(conn: Connection, keys: Sequence[int]) -> dict[int, list[ModelVersion]]:
    """The highest version per stage of each model, stages in order of first use (MLflow's)."""
    out: dict[int, list[ModelVersion]] = defaultdict(list)
    for chunk in _chunks(keys):
        per_stage = (
            select(
                mv.c.model_key,
                func.max(mv.c.version).label("latest_version"),
                func.min(mv.c.version).label("first_version"),
            )
            .where(mv.c.model_key.in_(chunk))
            .group_by(mv.c.model_key, mv.c.current_stage)
            .subquery()
        )
        rows = conn.execute(
            version_select()
            .join(
                per_stage,
                and_(
                    per_stage.c.model_key == mv.c.model_key,
                    per_stage.c.latest_version == mv.c.version,
                ),
            )
            .order_by(mv.c.model_key, per_stage.c.first_version)
        ).all()
        for row, version in zip(rows, load_model_versions(conn, rows), strict=True):
            out[row.model_key].append(version)
    return out


def load_registered_models(conn: Connection, rows: Sequence[Row[Any]]) -> list[RegisteredModel]:
    """RegisteredModels for ``registered_models`` rows: tags, aliases and latest versions in
    four queries per 2,000 models (plus two for the versions' tags and aliases)."""
    keys = [r.model_key for r in rows]
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    aliases: dict[int, dict[str, str]] = defaultdict(dict)
    mt, al = t.registered_model_tags, t.registered_model_aliases
    for chunk in _chunks(keys):
        for key, tag_key, value in conn.execute(
            select(mt.c.model_key, mt.c.key, mt.c.value)
            .where(mt.c.model_key.in_(chunk))
            .order_by(mt.c.model_key, mt.c.key)
        ):
            tags[key][tag_key] = value
        for key, alias, version in conn.execute(
            select(al.c.model_key, al.c.alias, al.c.version)
            .where(al.c.model_key.in_(chunk))
            .order_by(al.c.model_key, al.c.alias)
        ):
            aliases[key][alias] = str(version)
    latest = load_latest_versions(conn, keys)
    return [
        RegisteredModel(
            name=r.name,
            creation_timestamp=r.creation_time,
            last_updated_timestamp=r.last_updated_time,
            description=r.description,
            latest_versions=latest.get(r.model_key, []),
            tags=tags.get(r.model_key, {}),
            aliases=aliases.get(r.model_key, {}),
            user_id=r.user_id,
        )
        for r in rows
    ]


def event_from_row(row: Row[Any], name: str) -> RegistryEvent:
    """A RegistryEvent from a ``registry_events`` row of the model now called ``name``."""
    return RegistryEvent(
        timestamp=row.timestamp,
        user_id=row.user_id,
        action=row.action,
        name=name,
        version=None if row.version is None else str(row.version),
        from_stage=row.from_stage,
        to_stage=row.to_stage,
        alias=row.alias,
        previous_version=None if row.previous_version is None else str(row.previous_version),
        evidence=json.loads(row.evidence) if row.evidence else None,
    )


# --- Validation -----------------------------------------------------------------------------

MAX_MODEL_NAME_LENGTH = 256
MAX_REGISTRY_TAG_VALUE_LENGTH = 100_000
MAX_ALIAS_LENGTH = 255
_ALIAS_RE = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+$")
# Column widths that PostgreSQL enforces (SQLite would store anything).
COLUMN_LIMITS = {"source": 2048, "run_id": 32, "run_link": 500, "user_id": 256, "model_id": 64}

#: The actions a caller may record for a stage change and for an alias change.
STAGE_ACTIONS = ("transition_stage", "promote")
ALIAS_ACTIONS = ("set_alias", "promote")


def check_model_name(name: object, parameter: str = "name") -> str:
    """The name of an existing model: any non-empty string."""
    if not isinstance(name, str) or not name:
        raise missing_parameter(parameter)
    return name


def validate_new_model_name(name: object, parameter: str = "name") -> str:
    """A name for a new or renamed model: no ``/`` or ``:`` (they delimit ``models:/`` URIs)."""
    text = check_model_name(name, parameter)
    if "/" in text or ":" in text or text in (".", ".."):
        raise InvalidParameterValue(
            f"Invalid model name '{text}'. Names cannot contain '/' or ':'."
        )
    if len(text) > MAX_MODEL_NAME_LENGTH:
        raise InvalidParameterValue(
            f"Registered model name '{text[:40]}...' is {len(text)} characters long; "
            f"the limit is {MAX_MODEL_NAME_LENGTH}."
        )
    return text


def parse_version(version: object) -> int:
    """A version number from an int or a numeric string, with MLflow's message otherwise."""
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    if isinstance(version, str):
        try:
            return int(version.strip())
        except ValueError:
            pass
    raise InvalidParameterValue(f"Parameter 'version' must be an integer, got '{version}'.")


def validate_registry_tag(kind: str, key: str, value: object) -> str:
    """A registered-model or model-version tag's value (up to 100,000 characters)."""
    validate_key(key, kind)
    if value is None:
        raise InvalidParameterValue(f"The value of {kind} '{key}' cannot be None.")
    text = str(value)
    if len(text) > MAX_REGISTRY_TAG_VALUE_LENGTH:
        raise InvalidParameterValue(
            f"{kind.capitalize()} '{key}' has a value of {len(text)} characters; "
            f"the limit is {MAX_REGISTRY_TAG_VALUE_LENGTH}."
        )
    return text


def validate_alias(alias: object) -> str:
    """An alias: ``^[\\w\\-]*$``, 1-255 characters, not ``latest`` and not ``v<digits>``."""
    if not isinstance(alias, str) or not alias:
        raise InvalidParameterValue("Registered model alias name cannot be empty.")
    if not _ALIAS_RE.match(alias):
        raise InvalidParameterValue(
            f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, "
            "underscores (_), and dashes (-)."
        )
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidParameterValue(
            f"Registered model alias name '{alias[:40]}...' had length {len(alias)}, "
            f"which exceeded length limit of {MAX_ALIAS_LENGTH}"
        )
    if alias.lower() == "latest":
        raise InvalidParameterValue("'latest' alias name (case insensitive) is reserved.")
    if _VERSION_ALIAS_RE.match(alias):
        raise InvalidParameterValue(f"Version alias name '{alias}' is reserved.")
    return alias


def check_widths(**values: str | None) -> None:
    """Refuse model-version fields wider than their columns."""
    for field, value in values.items():
        if value is not None and len(value) > COLUMN_LIMITS[field]:
            raise InvalidParameterValue(
                f"Model version {field} is {len(value)} characters long; "
                f"the limit is {COLUMN_LIMITS[field]}."
            )


def check_action(action: str, allowed: tuple[str, ...]) -> None:
    """Refuse a history action the operation may not record."""
    if action not in allowed:
        raise InvalidParameterValue(
            f"Invalid registry action '{action}'. Valid values: {', '.join(allowed)}."
        )


def check_max_results(max_results: object, limit: int) -> int:
    """``max_results`` as MLflow checks it: a positive integer up to ``limit``."""
    if not isinstance(max_results, int) or isinstance(max_results, bool) or max_results < 1:
        raise InvalidParameterValue(
            f"Invalid value for max_results. It must be a positive integer, but got {max_results}"
        )
    if max_results > limit:
        raise InvalidParameterValue(
            "Invalid value for request parameter max_results. It must be at most "
            f"{limit}, but got value {max_results}"
        )
    return max_results


def page_of(rows: Sequence[Any], offset: int, max_results: int) -> tuple[Sequence[Any], str | None]:
    """The page and the next token; a token only when a further row exists."""
    if len(rows) > max_results:
        return rows[:max_results], encode_page_token(offset + max_results)
    return rows, None


def unique_tags(tags: Sequence[Any] | None, kind: str) -> dict[str, str]:
    """Validated tags as a dict (the last value of a repeated key wins)."""
    return {tag.key: validate_registry_tag(kind, tag.key, tag.value) for tag in tags or ()}
