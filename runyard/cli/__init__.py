"""The ``runyard`` command line: MLflow's command names and options, on click.

Each command group lives in its own module; ``output`` holds what they share. Groups still to
come (``db``, ``gc``) are added here the same way.
"""

from __future__ import annotations

import click

import runyard.cli.docker  # noqa: F401  (adds models generate-dockerfile, build-docker)
import runyard.cli.serving  # noqa: F401  (adds models serve, predict)
from runyard.cli import artifacts, db, deployments, experiments, models, runs
from runyard.cli.doctor import doctor
from runyard.cli.gc import gc
from runyard.cli.output import RunyardGroup
from runyard.cli.projects import run_command
from runyard.cli.server import server, ui
from runyard.cli.sync import sync
from runyard.cli.users import audit, tokens, users
from runyard.version import __version__

__all__ = ["main"]


@click.group(cls=RunyardGroup)
@click.version_option(__version__, "--version", prog_name="runyard")
def main() -> None:
    """runyard: track experiments and runs, register and serve models; MLflow-compatible.

    Commands read the tracking store from RUNYARD_TRACKING_URI (or MLFLOW_TRACKING_URI),
    by default sqlite:///runyard.db in the current directory.

    \b
    Example:
        runyard experiments list
        runyard runs list -e 1
    """


main.add_command(experiments.commands)
main.add_command(runs.commands)
main.add_command(artifacts.commands)
main.add_command(models.commands)
main.add_command(deployments.commands)
main.add_command(server)
main.add_command(ui)
main.add_command(run_command)
main.add_command(gc)
main.add_command(db.commands)
main.add_command(doctor)
main.add_command(users)
main.add_command(tokens)
main.add_command(audit)
main.add_command(sync)
