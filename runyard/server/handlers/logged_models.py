"""Logged-model endpoints (MLflow 3). Searching comes first: the 3.x client searches a run's
logged models when it lists or downloads run artifacts (``runs:/`` URIs), so the endpoint must
answer even before models can be logged; the rest arrives with the models/registry work."""

from __future__ import annotations

from typing import Any

from runyard.protocol.requests import Field
from runyard.server.context import ServerContext
from runyard.server.routing import Endpoint

__all__ = ["ENDPOINTS"]


async def search_logged_models(ctx: ServerContext, p: dict[str, Any]) -> dict[str, Any]:
    """POST logged-models/search: no store holds logged models yet, so no page has any."""
    ctx.tracking()
    return {}


ENDPOINTS = [
    Endpoint(
        "/logged-models/search",
        ("POST",),
        search_logged_models,
        (
            Field("experiment_ids", repeated=True),
            Field("filter"),
            Field("datasets", "message", repeated=True),
            Field("max_results", "int"),
            Field("order_by", "message", repeated=True),
            Field("page_token"),
        ),
        "Search logged models",
        tags=("models",),
    ),
]
