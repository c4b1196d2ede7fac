"""Logged models (MLflow 3) over MLflow's REST protocol, mixed into ``RestStore``.

The requests are the official client's (spec §14.1): ``POST logged-models`` (with the first 100
params; the rest follow in batches of 100 to ``POST logged-models/<id>/params``), ``GET``,
``PATCH`` (finalize) and ``DELETE logged-models/<id>``, ``PATCH logged-models/<id>/tags``,
``DELETE logged-models/<id>/tags/<key>``, ``POST logged-models/search`` and ``POST runs/outputs``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from runyard.entities import (
    LoggedModel,
    LoggedModelOutput,
    LoggedModelParameter,
    LoggedModelStatus,
    LoggedModelTag,
    PagedList,
)
from runyard.protocol.codec import key_values
from runyard.protocol.logged_model_codec import logged_model_from_json, model_output_to_json
from runyard.store.http_session import HttpSession

__all__ = ["PARAMS_BATCH_SIZE", "RestLoggedModelOps"]

#: Params per request, on create and on ``logged-models/<id>/params`` (MLflow's batch size).
PARAMS_BATCH_SIZE = 100


def _model_path(model_id: str, *rest: str) -> str:
    return "/".join(["logged-models", quote(str(model_id), safe=""), *rest])


def _search_body(
    experiment_ids: Sequence[str],
    filter_string: str | None,
    datasets: Sequence[Mapping[str, Any]] | None,
    max_results: int | None,
    order_by: Sequence[Mapping[str, Any]] | None,
    page_token: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"experiment_ids": [str(e) for e in experiment_ids]}
    if filter_string:
        body["filter"] = filter_string
    if datasets:
        body["datasets"] = [
            {k: d[k] for k in ("dataset_name", "dataset_digest") if d.get(k) is not None}
            for d in datasets
        ]
    if max_results is not None:
        body["max_results"] = max_results
    if order_by:
        body["order_by"] = [
            {
                "field_name": o["field_name"],
                "ascending": o.get("ascending", True),
                **{k: o[k] for k in ("dataset_name", "dataset_digest") if o.get(k) is not None},
            }
            for o in order_by
        ]
    if page_token:
        body["page_token"] = page_token
    return body


class RestLoggedModelOps:
    """The logged-model methods of :class:`~runyard.store.base.TrackingStore` over HTTP."""

    _http: HttpSession

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Sequence[LoggedModelTag] | None = None,
        params: Sequence[LoggedModelParameter] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        """``POST logged-models`` with up to 100 params; more params follow in batches."""
        all_params = list(params or ())
        body: dict[str, Any] = {"experiment_id": str(experiment_id)}
        if name:
            body["name"] = name
        if model_type:
            body["model_type"] = model_type
        if source_run_id:
            body["source_run_id"] = source_run_id
        if all_params:
            body["params"] = key_values(all_params[:PARAMS_BATCH_SIZE])
        if tags:
            body["tags"] = key_values(tags)
        doc = self._http.call("POST", "logged-models", body=body, idempotent=False)
        model = logged_model_from_json(doc["model"])
        if len(all_params) > PARAMS_BATCH_SIZE:
            self.log_logged_model_params(model.model_id, all_params[PARAMS_BATCH_SIZE:])
            model = self.get_logged_model(model.model_id)
        return model

    def get_logged_model(
        self, model_id: str, allow_deleted: bool = False, include_metrics: bool = True
    ) -> LoggedModel:
        """``GET logged-models/<id>`` (``?allow_deleted=true`` to see a deleted one; the server
        always sends the metrics)."""
        params = {"allow_deleted": "true"} if allow_deleted else None
        doc = self._http.call("GET", _model_path(model_id), params=params)
        return logged_model_from_json(doc["model"])

    def finalize_logged_model(
        self, model_id: str, status: LoggedModelStatus | int | str, include_metrics: bool = True
    ) -> LoggedModel:
        """``PATCH logged-models/<id>`` with the final status (the server sends the metrics)."""
        body = {"model_id": model_id, "status": LoggedModelStatus.parse(status).proto_name}
        doc = self._http.call("PATCH", _model_path(model_id), body=body, idempotent=True)
        return logged_model_from_json(doc["model"])

    def delete_logged_model(self, model_id: str) -> None:
        """``DELETE logged-models/<id>`` (a repeat after success would be a 404: not retried)."""
        self._http.call(
            "DELETE", _model_path(model_id), body={"model_id": model_id}, idempotent=False
        )

    def set_logged_model_tags(self, model_id: str, tags: Sequence[LoggedModelTag]) -> None:
        """``PATCH logged-models/<id>/tags`` (an upsert, safe to repeat)."""
        body = {"tags": key_values(tags)}
        self._http.call("PATCH", _model_path(model_id, "tags"), body=body, idempotent=True)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """``DELETE logged-models/<id>/tags/<key>``."""
        path = _model_path(model_id, "tags", quote(key, safe=""))
        self._http.call("DELETE", path, idempotent=False)

    def log_logged_model_params(
        self, model_id: str, params: Sequence[LoggedModelParameter]
    ) -> None:
        """``POST logged-models/<id>/params``, 100 params a request."""
        items = list(params)
        for start in range(0, len(items), PARAMS_BATCH_SIZE):
            body = {
                "model_id": model_id,
                "params": key_values(items[start : start + PARAMS_BATCH_SIZE]),
            }
            # Re-logging a param with the same value is accepted: safe to repeat.
            self._http.call("POST", _model_path(model_id, "params"), body=body, idempotent=True)

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: Sequence[Mapping[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """``POST logged-models/search``: one page."""
        body = _search_body(
            experiment_ids, filter_string, datasets, max_results, order_by, page_token
        )
        doc = self._http.call("POST", "logged-models/search", body=body, idempotent=True)
        models = [logged_model_from_json(m) for m in doc.get("models", ())]
        return PagedList(models, doc.get("next_page_token") or None)

    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None:
        """``POST runs/outputs`` (links are upserts: safe to repeat)."""
        body = {"run_id": run_id, "models": [model_output_to_json(m) for m in models]}
        self._http.call("POST", "runs/outputs", body=body, idempotent=True)
