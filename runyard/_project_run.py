"""``runyard.run``: MLflow's ``mlflow.run`` alias of :func:`runyard.projects.run`, imported on
first call so ``import runyard`` does not load the projects machinery."""

from __future__ import annotations

from typing import Any

__all__ = ["run"]


def run(uri: str, entry_point: str = "main", **kwargs: Any) -> Any:
    """Run an MLflow project (a directory or git URI) as a tracked run; see
    :func:`runyard.projects.run` for every option. Returns the submitted run."""
    from runyard.projects import run as _run

    return _run(uri, entry_point, **kwargs)
