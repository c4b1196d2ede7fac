"""The model registry over MLflow's REST protocol, mixed into ``RestStore``.

Each method is the request the official MLflow client makes (spec §14.1): GET searches with
query-string parameters, ``POST registered-models/get-latest-versions``, PATCH updates, and DELETE
requests that carry their arguments in a JSON body. The history comes from runyard's own
``GET /api/2.0/runyard/registered-models/history``; writes that the history records send runyard's
optional ``user_id`` (and, for a gated promotion, ``action``/``evidence``) fields, which other
MLflow servers ignore.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runyard.entities import (
    ModelVersion,
    ModelVersionTag,
    PagedList,
    RegisteredModel,
    RegisteredModelTag,
    RegistryEvent,
)
from runyard.protocol.codec import key_values
from runyard.protocol.registry_codec import (
    model_version_from_json,
    registered_model_from_json,
    registry_event_from_json,
)
from runyard.store.http_session import HttpSession
from runyard.store.registry_base import (
    HISTORY_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
)

__all__ = ["HISTORY_PATH", "RestRegistryOps"]

#: runyard's history endpoint, relative to the ``/api/2.0/mlflow/`` base of the session.
HISTORY_PATH = "../runyard/registered-models/history"


def _search_params(
    filter_string: str | None,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {"max_results": max_results}
    if filter_string:
        params["filter"] = filter_string
    if order_by:
        params["order_by"] = list(order_by)
    if page_token:
        params["page_token"] = page_token
    return params


def _extras(
    body: dict[str, Any],
    user_id: str | None,
    action: str | None = None,
    default: str | None = None,
    evidence: Any = None,
) -> dict[str, Any]:
    """runyard's optional fields for the history; other servers ignore unknown fields."""
    if user_id:
        body["user_id"] = user_id
    if action != default:
        body["action"] = action
    if evidence is not None:
        body["evidence"] = evidence
    return body


class RestRegistryOps:
    """:class:`~runyard.store.registry_base.ModelRegistryStore` methods over HTTP."""

    _http: HttpSession

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        return self._http.call(method, path, params=params, body=body, idempotent=idempotent)

    # -- registered models ------------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        tags: Sequence[RegisteredModelTag] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        """``POST registered-models/create``."""
        body: dict[str, Any] = {"name": name}
        if tags:
            body["tags"] = key_values(tags)
        if description is not None:
            body["description"] = description
        doc = self._call("POST", "registered-models/create", body=body)
        return registered_model_from_json(doc["registered_model"])

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """``PATCH registered-models/update``."""
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        doc = self._call("PATCH", "registered-models/update", body=body, idempotent=True)
        return registered_model_from_json(doc["registered_model"])

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """``POST registered-models/rename``."""
        body = {"name": name, "new_name": new_name}
        doc = self._call("POST", "registered-models/rename", body=body)
        return registered_model_from_json(doc["registered_model"])

    def delete_registered_model(self, name: str) -> None:
        """``DELETE registered-models/delete`` (name in the JSON body)."""
        self._call("DELETE", "registered-models/delete", body={"name": name}, idempotent=False)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """``GET registered-models/get``."""
        doc = self._call("GET", "registered-models/get", params={"name": name})
        return registered_model_from_json(doc["registered_model"])

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """``GET registered-models/search``: one page."""
        params = _search_params(filter_string, max_results, order_by, page_token)
        doc = self._call("GET", "registered-models/search", params=params)
        models = [registered_model_from_json(m) for m in doc.get("registered_models", ())]
        return PagedList(models, doc.get("next_page_token") or None)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """``POST registered-models/get-latest-versions`` (a read: safe to repeat)."""
        body: dict[str, Any] = {"name": name}
        if stages:
            body["stages"] = list(stages)
        doc = self._call(
            "POST", "registered-models/get-latest-versions", body=body, idempotent=True
        )
        return [model_version_from_json(v) for v in doc.get("model_versions", ())]

    def set_registered_model_tag(self, name: str, tag: RegisteredModelTag) -> None:
        """``POST registered-models/set-tag`` (an upsert: safe to repeat)."""
        body = {"name": name, "key": tag.key, "value": tag.value}
        self._call("POST", "registered-models/set-tag", body=body, idempotent=True)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """``DELETE registered-models/delete-tag``."""
        self._call("DELETE", "registered-models/delete-tag", body={"name": name, "key": key})

    # -- model versions ---------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Sequence[ModelVersionTag] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        local_model_path: str | None = None,
        model_id: str | None = None,
        *,
        user_id: str | None = None,
    ) -> ModelVersion:
        """``POST model-versions/create`` (with runyard's ``user_id`` for the history)."""
        body: dict[str, Any] = {"name": name, "source": source}
        if run_id:
            body["run_id"] = run_id
        if tags:
            body["tags"] = key_values(tags)
        if run_link:
            body["run_link"] = run_link
        if description is not None:
            body["description"] = description
        if model_id:
            body["model_id"] = model_id
        doc = self._call("POST", "model-versions/create", body=_extras(body, user_id))
        return model_version_from_json(doc["model_version"])

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        """``PATCH model-versions/update``."""
        body: dict[str, Any] = {"name": name, "version": str(version)}
        if description is not None:
            body["description"] = description
        doc = self._call("PATCH", "model-versions/update", body=body, idempotent=True)
        return model_version_from_json(doc["model_version"])

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool,
        *,
        user_id: str | None = None,
        evidence: dict[str, Any] | None = None,
        action: str = "transition_stage",
    ) -> ModelVersion:
        """``POST model-versions/transition-stage``."""
        body = {
            "name": name,
            "version": str(version),
            "stage": stage,
            "archive_existing_versions": bool(archive_existing_versions),
        }
        body = _extras(body, user_id, action, "transition_stage", evidence)
        doc = self._call("POST", "model-versions/transition-stage", body=body)
        return model_version_from_json(doc["model_version"])

    def delete_model_version(
        self, name: str, version: int | str, *, user_id: str | None = None
    ) -> None:
        """``DELETE model-versions/delete``."""
        body = _extras({"name": name, "version": str(version)}, user_id)
        self._call("DELETE", "model-versions/delete", body=body, idempotent=False)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        """``GET model-versions/get``."""
        params = {"name": name, "version": str(version)}
        doc = self._call("GET", "model-versions/get", params=params)
        return model_version_from_json(doc["model_version"])

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """``GET model-versions/get-download-uri``."""
        params = {"name": name, "version": str(version)}
        return str(
            self._call("GET", "model-versions/get-download-uri", params=params)["artifact_uri"]
        )

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """``GET model-versions/search``: one page."""
        params = _search_params(filter_string, max_results, order_by, page_token)
        doc = self._call("GET", "model-versions/search", params=params)
        versions = [model_version_from_json(v) for v in doc.get("model_versions", ())]
        return PagedList(versions, doc.get("next_page_token") or None)

    def set_model_version_tag(self, name: str, version: int | str, tag: ModelVersionTag) -> None:
        """``POST model-versions/set-tag`` (an upsert: safe to repeat)."""
        body = {"name": name, "version": str(version), "key": tag.key, "value": tag.value}
        self._call("POST", "model-versions/set-tag", body=body, idempotent=True)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        """``DELETE model-versions/delete-tag``."""
        body = {"name": name, "version": str(version), "key": key}
        self._call("DELETE", "model-versions/delete-tag", body=body)

    # -- aliases ----------------------------------------------------------------------------
    def set_registered_model_alias(
        self,
        name: str,
        alias: str,
        version: int | str,
        *,
        user_id: str | None = None,
        evidence: dict[str, Any] | None = None,
        action: str = "set_alias",
    ) -> None:
        """``POST registered-models/alias``."""
        body = {"name": name, "alias": alias, "version": str(version)}
        body = _extras(body, user_id, action, "set_alias", evidence)
        self._call("POST", "registered-models/alias", body=body)

    def delete_registered_model_alias(
        self, name: str, alias: str, *, user_id: str | None = None
    ) -> None:
        """``DELETE registered-models/alias``."""
        body = _extras({"name": name, "alias": alias}, user_id)
        self._call("DELETE", "registered-models/alias", body=body)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """``GET registered-models/alias``."""
        doc = self._call("GET", "registered-models/alias", params={"name": name, "alias": alias})
        return model_version_from_json(doc["model_version"])

    # -- history ----------------------------------------------------------------------------
    def get_registered_model_history(
        self,
        name: str,
        max_results: int = HISTORY_MAX_RESULTS_DEFAULT,
        page_token: str | None = None,
    ) -> PagedList[RegistryEvent]:
        """``GET /api/2.0/runyard/registered-models/history``: one page, oldest first."""
        params: dict[str, Any] = {"name": name, "max_results": max_results}
        if page_token:
            params["page_token"] = page_token
        url = str(self._http.base_url.join(HISTORY_PATH))
        doc = self._call("GET", url, params=params)
        events = [registry_event_from_json(e) for e in doc.get("events", ())]
        return PagedList(events, doc.get("next_page_token") or None)
