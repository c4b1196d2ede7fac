"""``runyard.projects``: run MLflow projects (``MLproject`` directories and git repositories).

Example::

    import runyard.projects

    submitted = runyard.projects.run(
        "https://github.com/mlflow/mlflow-example", parameters={"alpha": 0.5}
    )
    print(submitted.run_id, submitted.get_status())

See ``docs/projects.md`` for the MLproject format and ``runyard run``.
"""

from runyard.projects.execute import LocalSubmittedRun, SubmittedRun
from runyard.projects.fetch import fetch_project
from runyard.projects.runner import run
from runyard.projects.spec import (
    EntryPoint,
    ExecutionException,
    InvalidProjectParameter,
    Parameter,
    Project,
    load_project,
)

__all__ = [
    "EntryPoint",
    "ExecutionException",
    "InvalidProjectParameter",
    "LocalSubmittedRun",
    "Parameter",
    "Project",
    "SubmittedRun",
    "fetch_project",
    "load_project",
    "run",
]
