"""The tracking server. ``runyard.server:app`` is the ASGI app configured from the environment
(``RUNYARD_BACKEND_STORE_URI`` and friends), for ``uvicorn runyard.server:app``."""

from __future__ import annotations

from typing import Any

__all__ = ["app", "create_app"]

_app: Any = None


def create_app(*args: Any, **kwargs: Any) -> Any:
    """See :func:`runyard.server.app.create_app`."""
    from runyard.server.app import create_app as _create

    return _create(*args, **kwargs)


def __getattr__(name: str) -> Any:
    # Built on first access, so importing runyard.server stays cheap and settings are read
    # in the worker process that serves.
    global _app
    if name == "app":
        if _app is None:
            from runyard.server.settings import ServerSettings

            _app = create_app(ServerSettings.from_env())
        return _app
    raise AttributeError(name)
