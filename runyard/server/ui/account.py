"""``/account``: the signed-in user, their personal access tokens and their password.

The page lists what the auth store holds for the caller (their tokens, never the secrets, and
their permission grants); ``static/js/account.js`` makes the changes through the REST API —
``/api/2.0/runyard/tokens/{create,revoke}`` (the new secret is shown once, in a dialog) and
MLflow's ``users/update-password`` — then swaps in the re-rendered sections.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runyard.errors import Unauthenticated
from runyard.server.auth import principal_of
from runyard.server.auth.entities import Grant, TokenInfo
from runyard.server.ui.render import page, render

if TYPE_CHECKING:
    from runyard.server.auth.layer import AuthLayer
    from runyard.server.context import ServerContext

__all__ = ["GrantRow", "TokenRow", "account_page", "routes"]

_VIA = {"session": "browser session", "basic": "HTTP Basic", "token": "access token"}


@dataclass(frozen=True)
class TokenRow:
    """A token as the page lists it."""

    info: TokenInfo
    expired: bool


@dataclass(frozen=True)
class GrantRow:
    """A permission grant with a link to what it is on."""

    grant: Grant
    label: str
    href: str


def _grant_row(grant: Grant) -> GrantRow:
    if grant.resource_type == "experiment":
        return GrantRow(grant, "Experiment", f"/experiments/{quote(grant.resource_id, safe='')}")
    return GrantRow(grant, "Registered model", "/models/" + quote(grant.resource_id, safe="/"))


def account_page(ctx: ServerContext, request: Request) -> Response:
    """The account page of the signed-in caller."""
    principal = principal_of(request)
    layer: AuthLayer | None = ctx.auth
    if principal is None or layer is None:
        raise Unauthenticated("Sign in to see your account.")
    store = layer.store
    now = int(time.time() * 1000)
    tokens = [
        TokenRow(info, info.expiration_time <= now)
        for info in sorted(
            store.list_tokens(principal.username), key=lambda t: t.creation_time, reverse=True
        )
    ]
    grants = [_grant_row(g) for g in store.list_grants(principal.username)]
    config = layer.config
    return render(
        request,
        "auth/account.html",
        section="account",
        user=principal.user,
        via=_VIA.get(principal.via, principal.via),
        tokens=tokens,
        grants=grants,
        default_permission=config.default_permission.name,
        token_default_days=config.token_default_days,
        token_max_days=config.token_max_days,
    )


def routes(ctx: ServerContext) -> list[BaseRoute]:
    """``/account``."""
    return [Route("/account", page(account_page)(ctx), methods=["GET"])]
