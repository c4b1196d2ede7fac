"""``GET /api/2.0/runyard/runs/keys``: the distinct param, metric and tag keys of experiments'
active runs, for the runs table's column picker and filter autocomplete."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.protocol.requests import Field
from runyard.server.context import ServerContext
from runyard.server.routing import Endpoint
from runyard.store.sql.run_keys import RunKeyOps

__all__ = ["ENDPOINTS", "list_run_keys"]

#: More experiments than a person picks in the UI; keeps the SQL ``IN`` list bounded.
MAX_EXPERIMENTS = 1000


async def list_run_keys(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET runs/keys → ``{"params": [...], "metrics": [...], "tags": [...]}`` (sorted)."""
    experiment_ids: list[str] = p["experiment_ids"]
    if len(experiment_ids) > MAX_EXPERIMENTS:
        raise InvalidParameterValue(
            f"At most {MAX_EXPERIMENTS} experiment ids per request, got {len(experiment_ids)}."
        )
    store = ctx.tracking()
    if not isinstance(store, RunKeyOps):
        raise RunyardError(
            "This tracking store cannot list run keys.", error_code="NOT_IMPLEMENTED"
        )
    # A scan over every param/metric/tag row of the experiments: off the event loop.
    keys: dict[str, list[str]] = await run_in_threadpool(store.list_run_keys, experiment_ids)
    return keys


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "/runs/keys",
        ("GET",),
        list_run_keys,
        (Field("experiment_ids", repeated=True, required=True),),
        "The distinct param, metric and tag keys of experiments' active runs",
        namespace="runyard",
        tags=("ui",),
        reads_replica=True,
    ),
]
