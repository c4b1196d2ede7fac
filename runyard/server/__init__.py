"""The tracking server.

``runyard.server:app`` is the server configured from the environment (``RUNYARD_BACKEND_STORE_URI``
or ``MLFLOW_BACKEND_STORE_URI`` and friends). It speaks both ASGI and WSGI, so both of these run it
as they run MLflow's::

    uvicorn runyard.server:app --workers 4
    gunicorn --workers 4 "runyard.server:app"
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from typing import Any

__all__ = ["app", "create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """See :func:`runyard.server.app.create_app`."""
    from runyard.server.app import create_app as _create

    return _create(*args, **kwargs)


class _ServerApp:
    """Builds the app on first call (in the worker process) and answers ASGI or WSGI calls."""

    def __init__(self) -> None:
        self._asgi: Any = None
        self._wsgi: Any = None

    def _app(self) -> Any:
        if self._asgi is None:
            from runyard.server.settings import ServerSettings

            self._asgi = create_app(ServerSettings.from_env())
        return self._asgi

    def __call__(self, *args: Any) -> Any:
        if len(args) == 3:  # ASGI: (scope, receive, send) -> awaitable
            return self._app()(*args)
        # WSGI (gunicorn's default sync workers): (environ, start_response) -> iterable
        if self._wsgi is None:
            from a2wsgi import ASGIMiddleware

            self._wsgi = ASGIMiddleware(self._app())
        return self._wsgi(*args)


# ASGI servers look at __call__ to tell ASGI 3 from ASGI 2; it returns the app's coroutine.
if sys.version_info >= (3, 12):
    inspect.markcoroutinefunction(_ServerApp.__call__)
else:
    _ServerApp.__call__._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]

app = _ServerApp()
