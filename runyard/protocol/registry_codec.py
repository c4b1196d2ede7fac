"""Registry entities to MLflow's JSON shapes and back (``model_registry.proto``).

Shapes follow MLflow's SQL-backed server (spec §3.2): a version number is a string, tags are
``[{key, value}]``, a registered model's aliases are ``[{alias, version}]`` and a version's are a
list of names; unset fields and empty lists are omitted, while fields that are set to an empty
string (``"description": ""``) are kept, as proto2 presence rules print them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from runyard.entities import ModelVersion, RegisteredModel, RegistryEvent

__all__ = [
    "model_version_from_json",
    "model_version_to_json",
    "registered_model_from_json",
    "registered_model_to_json",
    "registry_event_from_json",
    "registry_event_to_json",
]


def _omit_unset(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None and v != [] and v != {}}


def _tags_to_json(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _tags_from_json(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(item["key"]): str(item.get("value", "")) for item in items or ()}


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


# -- to JSON ---------------------------------------------------------------------------------
def model_version_to_json(mv: ModelVersion) -> dict[str, Any]:
    """A ModelVersion message."""
    return _omit_unset(
        {
            "name": mv.name,
            "version": str(mv.version),
            "creation_timestamp": mv.creation_timestamp,
            "last_updated_timestamp": mv.last_updated_timestamp,
            "user_id": mv.user_id,
            "current_stage": mv.current_stage,
            "description": mv.description,
            "source": mv.source,
            "run_id": mv.run_id,
            "status": mv.status,
            "status_message": mv.status_message,
            "tags": _tags_to_json(mv.tags),
            "run_link": mv.run_link,
            "aliases": list(mv.aliases),
            "model_id": mv.model_id,
        }
    )


def registered_model_to_json(rm: RegisteredModel) -> dict[str, Any]:
    """A RegisteredModel message, with its latest version per stage."""
    return _omit_unset(
        {
            "name": rm.name,
            "creation_timestamp": rm.creation_timestamp,
            "last_updated_timestamp": rm.last_updated_timestamp,
            "user_id": rm.user_id,
            "description": rm.description,
            "latest_versions": [model_version_to_json(mv) for mv in rm.latest_versions],
            "tags": _tags_to_json(rm.tags),
            "aliases": [{"alias": a, "version": str(v)} for a, v in rm.aliases.items()],
        }
    )


def registry_event_to_json(event: RegistryEvent) -> dict[str, Any]:
    """One history entry (runyard's own message; ``evidence`` is a JSON object)."""
    return _omit_unset(
        {
            "timestamp": event.timestamp,
            "user_id": event.user_id,
            "action": event.action,
            "name": event.name,
            "version": event.version,
            "from_stage": event.from_stage,
            "to_stage": event.to_stage,
            "alias": event.alias,
            "previous_version": event.previous_version,
            "evidence": event.evidence,
        }
    )


# -- from JSON -------------------------------------------------------------------------------
def model_version_from_json(doc: Mapping[str, Any]) -> ModelVersion:
    """A ModelVersion from its message (a numeric ``version`` is turned into a string)."""
    return ModelVersion(
        name=str(doc.get("name", "")),
        version=str(doc.get("version", "")),
        creation_timestamp=_opt_int(doc.get("creation_timestamp")),
        last_updated_timestamp=_opt_int(doc.get("last_updated_timestamp")),
        description=_opt_str(doc.get("description")),
        user_id=_opt_str(doc.get("user_id")),
        current_stage=str(doc.get("current_stage") or "None"),
        source=_opt_str(doc.get("source")),
        run_id=_opt_str(doc.get("run_id")),
        status=str(doc.get("status") or "READY"),
        status_message=_opt_str(doc.get("status_message")),
        tags=_tags_from_json(doc.get("tags")),
        run_link=_opt_str(doc.get("run_link")),
        aliases=[str(a) for a in doc.get("aliases", ())],
        model_id=_opt_str(doc.get("model_id")),
    )


def registered_model_from_json(doc: Mapping[str, Any]) -> RegisteredModel:
    """A RegisteredModel from its message."""
    return RegisteredModel(
        name=str(doc.get("name", "")),
        creation_timestamp=_opt_int(doc.get("creation_timestamp")),
        last_updated_timestamp=_opt_int(doc.get("last_updated_timestamp")),
        description=_opt_str(doc.get("description")),
        latest_versions=[model_version_from_json(v) for v in doc.get("latest_versions", ())],
        tags=_tags_from_json(doc.get("tags")),
        aliases={str(a["alias"]): str(a.get("version", "")) for a in doc.get("aliases", ())},
        user_id=_opt_str(doc.get("user_id")),
    )


def registry_event_from_json(doc: Mapping[str, Any]) -> RegistryEvent:
    """A history entry from its message."""
    evidence = doc.get("evidence")
    return RegistryEvent(
        timestamp=int(doc.get("timestamp", 0)),
        user_id=_opt_str(doc.get("user_id")),
        action=str(doc.get("action", "")),
        name=str(doc.get("name", "")),
        version=_opt_str(doc.get("version")),
        from_stage=_opt_str(doc.get("from_stage")),
        to_stage=_opt_str(doc.get("to_stage")),
        alias=_opt_str(doc.get("alias")),
        previous_version=_opt_str(doc.get("previous_version")),
        evidence=dict(evidence) if isinstance(evidence, Mapping) else None,
    )
