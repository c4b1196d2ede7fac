"""Projects written into tmp dirs and real git repositories, shared by the projects and CLI tests.

The ``report.py`` entry point writes what it saw (argv, working directory, interpreter, the run
handed over) to the JSON file named by ``$PROJECT_REPORT`` and logs a metric into its run.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

REPORT_PY = textwrap.dedent(
    """
    import json, os, sys

    import runyard

    names = ["MLFLOW_RUN_ID", "RUNYARD_RUN_ID", "MLFLOW_TRACKING_URI", "RUNYARD_TRACKING_URI",
             "MLFLOW_EXPERIMENT_ID", "RUNYARD_EXPERIMENT_ID", "VIRTUAL_ENV"]
    report = {
        "argv": sys.argv[1:],
        "cwd": os.getcwd(),
        "prefix": sys.prefix,
        "env": {name: os.environ.get(name) for name in names},
    }
    with runyard.start_run() as run:
        runyard.log_metric("seen", 1.0)
        report["active_run_id"] = run.info.run_id
    with open(os.environ["PROJECT_REPORT"], "w") as handle:
        json.dump(report, handle)
    """
)

SLEEP_PY = textwrap.dedent(
    """
    import os, sys, time

    with open(sys.argv[1], "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(120)
    """
)

MLPROJECT = textwrap.dedent(
    """
    name: demo
    entry_points:
      main:
        parameters:
          alpha: {type: float, default: 0.5}
          epochs: int
          label: {type: string, default: "two words"}
          data: {type: path, default: data.csv}
          source: {type: uri, default: "s3://bucket/key"}
        command: >-
          python report.py --alpha {alpha} --epochs {epochs} --label {label}
          --data {data} --source {source}
      fail:
        parameters:
          code: {type: int, default: 3}
        command: "python -c 'import sys; sys.exit({code})'"
      sleep:
        parameters:
          pidfile: path
        command: "python sleep.py {pidfile}"
    """
)


def write_files(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative name → text) under ``root``; returns ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def demo_project(root: Path) -> Path:
    """The demo project: an MLproject with typed parameters, report.py, sleep.py, data.csv."""
    return write_files(
        root,
        {
            "MLproject": MLPROJECT,
            "report.py": REPORT_PY,
            "sleep.py": SLEEP_PY,
            "data.csv": "x,y\n1,2\n",
        },
    )


def read_report(path: Path) -> dict[str, Any]:
    """The JSON report written by ``report.py``."""
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity; returns its stdout."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    proc = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, env=env, check=True
    )
    return proc.stdout.strip()


def git_repo(root: Path) -> dict[str, str]:
    """A git repository at ``root`` with the demo project in ``models/demo``.

    History: commit ``first`` on ``main`` (alpha default 0.5), then branch ``feature``
    (alpha default 0.7) and tag ``v1`` on ``first``; ``main`` is checked out. Returns the
    commit ids by name.
    """
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    demo_project(root / "models" / "demo")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    first = git(root, "rev-parse", "HEAD")
    git(root, "tag", "v1")
    git(root, "checkout", "-q", "-b", "feature")
    mlproject = root / "models" / "demo" / "MLproject"
    mlproject.write_text(mlproject.read_text().replace("default: 0.5", "default: 0.7"))
    git(root, "commit", "-q", "-am", "feature")
    feature = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", "main")
    return {"first": first, "feature": feature}
