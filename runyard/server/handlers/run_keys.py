"""(being written)"""

from __future__ import annotations

from runyard.server.routing import Endpoint

ENDPOINTS: list[Endpoint] = []
