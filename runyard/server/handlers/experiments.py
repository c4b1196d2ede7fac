"""Experiment endpoints (spec §2.1)."""

from __future__ import annotations

from typing import Any

from runyard.entities import ExperimentTag, ViewType
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.protocol.codec import experiment_to_json
from runyard.protocol.requests import Field
from runyard.server.artifact_policy import check_artifact_location
from runyard.server.context import ServerContext
from runyard.server.routing import Endpoint, check_max_results, page_response
from runyard.store.base import SEARCH_MAX_RESULTS_THRESHOLD

__all__ = ["ENDPOINTS"]

EXPERIMENT_ID = Field("experiment_id", required=True)


def _tags(items: list[dict[str, Any]]) -> list[ExperimentTag]:
    tags = []
    for i, item in enumerate(items):
        if not item.get("key"):
            raise InvalidParameterValue(f"Missing value for required parameter 'tags[{i}].key'.")
        tags.append(ExperimentTag(str(item["key"]), str(item.get("value", ""))))
    return tags


async def create_experiment(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST experiments/create."""
    check_artifact_location(p["artifact_location"], ctx.settings)
    exp_id = ctx.tracking().create_experiment(p["name"], p["artifact_location"], _tags(p["tags"]))
    return {"experiment_id": exp_id}


async def get_experiment(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET experiments/get."""
    return {"experiment": experiment_to_json(ctx.tracking().get_experiment(p["experiment_id"]))}


async def get_experiment_by_name(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """GET experiments/get-by-name: a 404 is how the client learns the name is free."""
    exp = ctx.tracking().get_experiment_by_name(p["experiment_name"])
    if exp is None:
        raise ResourceDoesNotExist(f"Could not find experiment with name '{p['experiment_name']}'")
    return {"experiment": experiment_to_json(exp)}


async def search_experiments(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST/GET experiments/search."""
    max_results = check_max_results(p["max_results"], SEARCH_MAX_RESULTS_THRESHOLD)
    view = ViewType.from_string(p["view_type"]) if p["view_type"] else ViewType.ACTIVE_ONLY
    page = ctx.tracking().search_experiments(
        view, max_results, p["filter"], p["order_by"], p["page_token"]
    )
    return page_response("experiments", [experiment_to_json(e) for e in page], page.token)


async def delete_experiment(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST experiments/delete."""
    ctx.tracking().delete_experiment(p["experiment_id"])
    return {}


async def restore_experiment(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST experiments/restore."""
    ctx.tracking().restore_experiment(p["experiment_id"])
    return {}


async def update_experiment(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST experiments/update (rename)."""
    ctx.tracking().rename_experiment(p["experiment_id"], p["new_name"])
    return {}


async def set_experiment_tag(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST experiments/set-experiment-tag."""
    tag = ExperimentTag(p["key"], p["value"] or "")
    ctx.tracking().set_experiment_tag(p["experiment_id"], tag)
    return {}


async def delete_experiment_tag(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST experiments/delete-experiment-tag."""
    ctx.tracking().delete_experiment_tag(p["experiment_id"], p["key"])
    return {}


ENDPOINTS = [
    Endpoint(
        "/experiments/create",
        ("POST",),
        create_experiment,
        (
            Field("name", required=True),
            Field("artifact_location"),
            Field("tags", "message", repeated=True),
        ),
        "Create an experiment",
    ),
    Endpoint("/experiments/get", ("GET",), get_experiment, (EXPERIMENT_ID,), "Get an experiment"),
    Endpoint(
        "/experiments/get-by-name",
        ("GET",),
        get_experiment_by_name,
        (Field("experiment_name", required=True),),
        "Get an experiment by name",
    ),
    Endpoint(
        "/experiments/search",
        ("POST", "GET"),
        search_experiments,
        (
            Field("max_results", "int"),
            Field("page_token"),
            Field("filter"),
            Field("order_by", repeated=True),
            Field("view_type", "ViewType"),
        ),
        "Search experiments",
        reads_replica=True,
    ),
    Endpoint(
        "/experiments/delete", ("POST",), delete_experiment, (EXPERIMENT_ID,), "Delete (soft)"
    ),
    Endpoint("/experiments/restore", ("POST",), restore_experiment, (EXPERIMENT_ID,), "Restore"),
    Endpoint(
        "/experiments/update",
        ("POST",),
        update_experiment,
        (EXPERIMENT_ID, Field("new_name", required=True)),
        "Rename an experiment",
    ),
    Endpoint(
        "/experiments/set-experiment-tag",
        ("POST",),
        set_experiment_tag,
        (EXPERIMENT_ID, Field("key", required=True), Field("value")),
        "Set an experiment tag",
    ),
    Endpoint(
        "/experiments/delete-experiment-tag",
        ("POST",),
        delete_experiment_tag,
        (EXPERIMENT_ID, Field("key", required=True)),
        "Delete an experiment tag",
    ),
]
