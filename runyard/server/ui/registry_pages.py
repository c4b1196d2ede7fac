"""(being written)"""

from __future__ import annotations

from starlette.routing import BaseRoute

from runyard.server.context import ServerContext


def routes(ctx: ServerContext) -> list[BaseRoute]:
    """This area's pages."""
    return []
