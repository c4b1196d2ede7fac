"""The tracking store of an ``http(s)://`` tracking URI: MLflow's REST protocol, spoken to any
MLflow-compatible server (``runyard server`` or ``mlflow server``).

Each method is one request, with the method and path the official MLflow client uses (spec §14.1),
so the server cannot tell this client from MLflow's. Bodies are built and parsed by the shared
codecs of :mod:`runyard.protocol.codec`. Errors come back as the runyard exception the server
named (``RESOURCE_DOES_NOT_EXIST`` → :class:`~runyard.errors.ResourceDoesNotExist`, ...).

Which POSTs may be sent twice is decided per endpoint (``_SAFE_TO_REPEAT``); see
:mod:`runyard.store.http_session` for the retry policy itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from runyard.entities import (
    DatasetInput,
    Experiment,
    ExperimentTag,
    LoggedModelInput,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunTag,
    ViewType,
)
from runyard.errors import ResourceDoesNotExist
from runyard.protocol.codec import (
    dataset_input_to_json,
    experiment_from_json,
    key_values,
    metric_from_json,
    metric_to_json,
    run_from_json,
    run_info_from_json,
)
from runyard.protocol.logged_model_codec import model_input_to_json, model_metric_to_json
from runyard.store.base import SEARCH_MAX_RESULTS_DEFAULT
from runyard.store.http_session import HttpConfig, HttpSession
from runyard.store.rest_logged_models import RestLoggedModelOps
from runyard.store.rest_registry import RestRegistryOps
from runyard.utils.validation import validate_batch_limits

__all__ = ["HISTORY_PAGE_SIZE", "RestStore", "api_base_url"]

#: Points per ``metrics/get-history`` page when the caller wants the whole series (MLflow's).
HISTORY_PAGE_SIZE = 25000

# POST endpoints whose repetition leaves the server as one call would (spec §2.3, §14.6), so a
# retry after a 500/502/504 or a broken connection cannot do harm:
_SAFE_TO_REPEAT = frozenset(
    {
        # Read-only searches.
        "experiments/search",
        "runs/search",
        # A metric point identical in (key, value, timestamp, step) is stored once; a param
        # re-logged with the same value is accepted; tags are upserts. The batch is one
        # transaction on the server, so a retry never finds half of it written.
        "runs/log-batch",
        # Setting the same status, end time and name again changes nothing.
        "runs/update",
        # An upsert.
        "experiments/set-experiment-tag",
    }
)
# Everything else (create, delete, restore, rename, delete-tag, log-inputs) is retried only when
# the server cannot have acted on it: a create would make a second run, a second delete-tag
# would fail with RESOURCE_DOES_NOT_EXIST after the first one succeeded.


def api_base_url(tracking_uri: str) -> str:
    """``http://host:5000/prefix`` → ``http://host:5000/prefix/api/2.0/mlflow/``."""
    url = httpx.URL(tracking_uri)
    path = url.path.rstrip("/")
    return str(url.copy_with(path=f"{path}/api/2.0/mlflow/", query=None, fragment=None))


class RestStore(RestRegistryOps, RestLoggedModelOps):
    """A :class:`~runyard.store.base.TrackingStore` backed by a tracking server over HTTP.

    Args:
        tracking_uri: ``http(s)://host[:port][/prefix]``.
        config: retries, timeout, auth and TLS; default from the environment.
        transport: an httpx transport to use instead of the network (tests, in-process apps).
        session: a ready session for ``api_base_url(tracking_uri)`` (overrides the above).
    """

    def __init__(
        self,
        tracking_uri: str,
        config: HttpConfig | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        session: HttpSession | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self._http = session or HttpSession(api_base_url(tracking_uri), config, transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._http.call("GET", path, params=params)

    def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._http.call("POST", path, body=body, idempotent=path in _SAFE_TO_REPEAT)

    # -- experiments -------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Sequence[ExperimentTag] = (),
    ) -> str:
        """``POST experiments/create``; returns the new id."""
        body: dict[str, Any] = {"name": name}
        if artifact_location:
            body["artifact_location"] = artifact_location
        if tags:
            body["tags"] = key_values(tags)
        return str(self._post("experiments/create", body)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        """``GET experiments/get``."""
        doc = self._get("experiments/get", {"experiment_id": experiment_id})
        return experiment_from_json(doc["experiment"])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """``GET experiments/get-by-name``; the server's RESOURCE_DOES_NOT_EXIST means None."""
        try:
            doc = self._get("experiments/get-by-name", {"experiment_name": name})
        except ResourceDoesNotExist:
            return None
        return experiment_from_json(doc["experiment"])

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """``POST experiments/search``: one page."""
        body: dict[str, Any] = {
            "view_type": ViewType.to_string(view_type),
            "max_results": max_results,
        }
        if filter_string:
            body["filter"] = filter_string
        if order_by:
            body["order_by"] = list(order_by)
        if page_token:
            body["page_token"] = page_token
        doc = self._post("experiments/search", body)
        experiments = [experiment_from_json(e) for e in doc.get("experiments", ())]
        return PagedList(experiments, doc.get("next_page_token") or None)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """``POST experiments/update``."""
        self._post("experiments/update", {"experiment_id": experiment_id, "new_name": new_name})

    def delete_experiment(self, experiment_id: str) -> None:
        """``POST experiments/delete``."""
        self._post("experiments/delete", {"experiment_id": experiment_id})

    def restore_experiment(self, experiment_id: str) -> None:
        """``POST experiments/restore``."""
        self._post("experiments/restore", {"experiment_id": experiment_id})

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        """``POST experiments/set-experiment-tag``."""
        body = {"experiment_id": experiment_id, "key": tag.key, "value": tag.value}
        self._post("experiments/set-experiment-tag", body)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """``POST experiments/delete-experiment-tag``."""
        self._post(
            "experiments/delete-experiment-tag", {"experiment_id": experiment_id, "key": key}
        )

    # -- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: Sequence[RunTag],
        run_name: str | None,
    ) -> Run:
        """``POST runs/create``."""
        body: dict[str, Any] = {
            "experiment_id": experiment_id,
            "user_id": user_id,
            "start_time": start_time,
        }
        if tags:
            body["tags"] = key_values(tags)
        if run_name:
            body["run_name"] = run_name
        return run_from_json(self._post("runs/create", body)["run"])

    def get_run(self, run_id: str) -> Run:
        """``GET runs/get`` (both ``run_id`` and the legacy ``run_uuid``, as MLflow sends)."""
        return run_from_json(self._get("runs/get", {"run_uuid": run_id, "run_id": run_id})["run"])

    def update_run_info(
        self, run_id: str, run_status: str | None, end_time: int | None, run_name: str | None
    ) -> RunInfo:
        """``POST runs/update``; only the fields given change. Returns the new run info."""
        body: dict[str, Any] = {"run_uuid": run_id, "run_id": run_id}
        if run_status is not None:
            body["status"] = run_status
        if end_time is not None:
            body["end_time"] = end_time
        if run_name:
            body["run_name"] = run_name
        return run_info_from_json(self._post("runs/update", body)["run_info"])

    def delete_run(self, run_id: str) -> None:
        """``POST runs/delete``."""
        self._post("runs/delete", {"run_id": run_id})

    def restore_run(self, run_id: str) -> None:
        """``POST runs/restore``."""
        self._post("runs/restore", {"run_id": run_id})

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """``POST runs/search``: one page."""
        body: dict[str, Any] = {
            "experiment_ids": [str(e) for e in experiment_ids],
            "run_view_type": ViewType.to_string(run_view_type),
            "max_results": max_results,
        }
        if filter_string:
            body["filter"] = filter_string
        if order_by:
            body["order_by"] = list(order_by)
        if page_token:
            body["page_token"] = page_token
        doc = self._post("runs/search", body)
        runs = [run_from_json(r) for r in doc.get("runs", ())]
        return PagedList(runs, doc.get("next_page_token") or None)

    # -- logging -----------------------------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """``POST runs/log-batch``: one request, all or nothing on the server.

        MLflow's limits (1000 metrics, 100 params, 100 tags, 1000 in all) are checked here
        with the SQL store's errors: one call is one atomic batch, so it is never split.
        """
        if not (metrics or params or tags):
            return
        validate_batch_limits(metrics, params, tags)
        body: dict[str, Any] = {"run_id": run_id}
        if metrics:
            # A point logged for a logged model also carries its model id and dataset.
            body["metrics"] = [
                metric_to_json(m) if m.model_id is None else model_metric_to_json(m)
                for m in metrics
            ]
        if params:
            body["params"] = key_values(params)
        if tags:
            body["tags"] = key_values(tags)
        self._post("runs/log-batch", body)

    def delete_tag(self, run_id: str, key: str) -> None:
        """``POST runs/delete-tag``."""
        self._post("runs/delete-tag", {"run_id": run_id, "key": key})

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] | None = None,
        models: Sequence[LoggedModelInput] | None = None,
    ) -> None:
        """``POST runs/log-inputs`` (datasets and the logged models the run used)."""
        if not datasets and not models:
            return
        body: dict[str, Any] = {"run_id": run_id}
        if datasets:
            body["datasets"] = [dataset_input_to_json(d) for d in datasets]
        if models:
            body["models"] = [model_input_to_json(m) for m in models]
        self._post("runs/log-inputs", body)

    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        """``GET metrics/get-history``: one page when ``max_results`` is given, else every
        point, fetched in pages of 25,000 as MLflow's client does."""
        if max_results is not None:
            return self._history_page(run_id, metric_key, max_results, page_token)
        points: list[Metric] = []
        token = page_token
        while True:
            page = self._history_page(run_id, metric_key, HISTORY_PAGE_SIZE, token)
            points.extend(page)
            if not page.token or page.token == token:
                return PagedList(points, None)
            token = page.token

    def _history_page(
        self, run_id: str, metric_key: str, max_results: int, page_token: str | None
    ) -> PagedList[Metric]:
        params: dict[str, Any] = {
            "run_uuid": run_id,
            "run_id": run_id,
            "metric_key": metric_key,
            "max_results": max_results,
        }
        if page_token:
            params["page_token"] = page_token
        doc = self._get("metrics/get-history", params)
        metrics = [metric_from_json(m, run_id) for m in doc.get("metrics", ())]
        return PagedList(metrics, doc.get("next_page_token") or None)
