"""Who may see which page: every permission check of the web UI, in one place.

The REST API is guarded by the auth layer's policy table; the UI's pages read the store
directly, so they ask here before showing anything:

* a page about one experiment, run, or registered model (or several, as the charts and the
  comparison) calls :func:`require_experiments` / :func:`require_runs` / :func:`require_model`,
  which raise :class:`~runyard.errors.PermissionDenied` — the page wrapper turns that into the
  403 "Permission denied" page;
* the lists (experiments, registered models) page through the store with
  :func:`readable_page`, which keeps only what the caller may read and reads on until the page
  is full.

Everything here is a no-op when auth is off (``ctx.auth is None``) and for admins. Runs and
logged models inherit their experiment's permission; registered models are keyed by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from starlette.requests import Request

from runyard.entities import PagedList, Run
from runyard.errors import PermissionDenied
from runyard.server.auth import principal_of
from runyard.server.auth.authn import Principal
from runyard.server.context import ServerContext

if TYPE_CHECKING:
    from runyard.server.auth.layer import AuthLayer

__all__ = [
    "EXPERIMENT",
    "MAX_LIST_ROUNDS",
    "REGISTERED_MODEL",
    "can",
    "readable_ids",
    "readable_page",
    "require_experiments",
    "require_model",
    "require_runs",
]

T = TypeVar("T")

#: At most this many store pages are read to fill one list page with readable entries (a user
#: who may read few of many experiments gets a short page and a "Next page" link instead).
MAX_LIST_ROUNDS = 20

EXPERIMENT = "experiment"
REGISTERED_MODEL = "registered_model"


def _layer(ctx: ServerContext) -> AuthLayer | None:
    layer: AuthLayer | None = ctx.auth
    return layer


def _checked(ctx: ServerContext, request: Request) -> Principal | None:
    """The principal whose access must be checked; None when no check applies (auth off,
    admin). A request without a principal under auth (it cannot pass the middleware) is
    refused rather than let through."""
    if _layer(ctx) is None:
        return None
    principal = principal_of(request)
    if principal is None:
        raise PermissionDenied("Permission denied: sign in to see this page.")
    return None if principal.is_admin else principal


def can(
    ctx: ServerContext, request: Request, resource_type: str, resource_id: str, need: str
) -> bool:
    """Whether the caller may ``need`` ("read", "use", "update", "delete", "manage") the
    resource; always True when auth is off."""
    layer = _layer(ctx)
    if layer is None:
        return True
    principal = principal_of(request)
    return layer.can(principal, resource_type, resource_id, need)


def require_experiments(
    ctx: ServerContext, request: Request, experiment_ids: Iterable[str]
) -> None:
    """Raise PermissionDenied unless the caller may read every one of these experiments."""
    principal, layer = _checked(ctx, request), _layer(ctx)
    if principal is None or layer is None:
        return
    for experiment_id in dict.fromkeys(experiment_ids):
        if not layer.can(principal, EXPERIMENT, experiment_id, "read"):
            raise PermissionDenied(
                f"Permission denied: you may not read experiment '{experiment_id}'."
            )


def require_runs(ctx: ServerContext, request: Request, runs: Iterable[Run]) -> None:
    """Raise PermissionDenied unless the caller may read the experiments of all these runs
    (a run inherits its experiment's permission)."""
    require_experiments(ctx, request, (run.info.experiment_id for run in runs))


def require_model(ctx: ServerContext, request: Request, name: str) -> None:
    """Raise PermissionDenied unless the caller may read the registered model ``name``."""
    principal, layer = _checked(ctx, request), _layer(ctx)
    if principal is None or layer is None:
        return
    if not layer.can(principal, REGISTERED_MODEL, name, "read"):
        raise PermissionDenied(f"Permission denied: you may not read the model '{name}'.")


def readable_page(
    ctx: ServerContext,
    request: Request,
    resource_type: str,
    search: Callable[[str | None], PagedList[T]],
    key: Callable[[T], str],
    page_token: str | None,
    page_size: int,
) -> tuple[list[T], str | None]:
    """One list page of what the caller may read: ``search(token)`` is called from
    ``page_token`` on, each result filtered, until ``page_size`` entries are collected, the
    store has no more, or :data:`MAX_LIST_ROUNDS` pages were read. Returns the entries (whole
    store pages, so possibly a few more than ``page_size``) and the token of the next page."""
    principal, layer = _checked(ctx, request), _layer(ctx)
    found = search(page_token)
    if principal is None or layer is None:
        return list(found), found.token
    items: list[T] = []
    rounds = 0
    while True:
        rounds += 1
        allowed = set(layer.filter_readable(principal, resource_type, [key(i) for i in found]))
        items.extend(item for item in found if key(item) in allowed)
        if not found.token or len(items) >= page_size or rounds >= MAX_LIST_ROUNDS:
            return items, found.token
        found = search(found.token)


def readable_ids(
    ctx: ServerContext, request: Request, resource_type: str, ids: Sequence[str]
) -> list[str]:
    """The ids among ``ids`` the caller may read (all of them when auth is off)."""
    principal, layer = _checked(ctx, request), _layer(ctx)
    if principal is None or layer is None:
        return list(ids)
    return layer.filter_readable(principal, resource_type, list(ids))
