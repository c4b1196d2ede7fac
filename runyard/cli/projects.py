"""``runyard run``: run an MLflow project (a directory or a git repository) as a tracked run."""

from __future__ import annotations

import logging
import signal
from typing import Any

import click

__all__ = ["run_command"]

ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")


class _EchoHandler(logging.Handler):
    """Progress lines of ``runyard.projects`` on the current stderr (also under CliRunner)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(self.format(record), err=True)


def _show_progress() -> None:
    logger = logging.getLogger("runyard.projects")
    if not any(isinstance(h, _EchoHandler) for h in logger.handlers):
        logger.addHandler(_EchoHandler())
    logger.setLevel(logging.INFO)


def _user_args_to_dict(arguments: tuple[str, ...], flag: str) -> dict[str, Any]:
    """``name=value`` pairs (MLflow's rules: docker args may be a bare name, meaning True)."""
    out: dict[str, Any] = {}
    for argument in arguments:
        name, sep, value = argument.partition("=")
        if not sep and flag == "A":
            out_value: Any = True
        elif sep and name:
            out_value = value
        else:
            raise click.BadOptionUsage(
                f"-{flag}",
                f"Invalid format for -{flag} parameter: '{argument}'. Use -{flag} name=value.",
            )
        if name in out:
            raise click.BadOptionUsage(f"-{flag}", f"Repeated parameter: '{name}'")
        out[name] = out_value
    return out


@click.command("run")
@click.argument("uri")
@click.option(
    "--entry-point",
    "-e",
    default="main",
    show_default=True,
    metavar="NAME",
    help="Entry point of the MLproject, or a .py/.sh file of the project to run as a script.",
)
@click.option(
    "--version",
    "-v",
    metavar="VERSION",
    help="Git projects: the commit, branch or tag to check out.",
)
@click.option(
    "--param-list",
    "-P",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter of the entry point (repeatable). Undeclared ones are passed on to the "
    "command as --NAME VALUE.",
)
@click.option(
    "--docker-args",
    "-A",
    multiple=True,
    metavar="NAME[=VALUE]",
    help="docker_env projects: a `docker run` flag (repeatable): -A gpus=all gives --gpus all, "
    "-A t gives -t.",
)
@click.option(
    "--experiment-name",
    metavar="NAME",
    help="Experiment of the run, created when missing (default: MLFLOW_EXPERIMENT_NAME/ID, "
    "else the default experiment).",
)
@click.option("--experiment-id", metavar="ID", help="ID of the experiment of the run.")
@click.option(
    "--backend",
    "-b",
    default="local",
    show_default=True,
    metavar="BACKEND",
    help="Where to run; runyard has the 'local' backend only.",
)
@click.option(
    "--backend-config",
    "-c",
    metavar="JSON|FILE.json",
    help="Backend configuration as JSON or a .json file (checked; the local backend needs none).",
)
@click.option(
    "--env-manager",
    type=click.Choice(ENV_MANAGERS),
    help="Environment to run in: local (this one), virtualenv or uv (from python_env.yaml, "
    "cached), conda (from conda.yaml). Default: the project's own, or local when it declares "
    "none.",
)
@click.option(
    "--storage-dir",
    type=click.Path(file_okay=False),
    help="Where remote URIs given to 'path' parameters are downloaded (default: a temporary "
    "directory).",
)
@click.option("--run-id", metavar="ID", help="Run in this existing run instead of a new one.")
@click.option("--run-name", metavar="NAME", help="Name of the new run.")
@click.option(
    "--build-image",
    is_flag=True,
    help="docker_env projects: build the project's image even when it exists.",
)
def run_command(
    uri: str,
    entry_point: str,
    version: str | None,
    param_list: tuple[str, ...],
    docker_args: tuple[str, ...],
    experiment_name: str | None,
    experiment_id: str | None,
    backend: str,
    backend_config: str | None,
    env_manager: str | None,
    storage_dir: str | None,
    run_id: str | None,
    run_name: str | None,
    build_image: bool,
) -> None:
    """Run a project from a directory or a git repository (URI), as a tracked run.

    URI is a local directory or a git URL (file://, https://, git@host:repo), optionally
    followed by #subdirectory. Parameters are checked against the MLproject before anything
    starts; the run records them as params and its source as tags, the command logs into it
    (MLFLOW_RUN_ID and MLFLOW_TRACKING_URI are set for it), and it ends FINISHED or FAILED by
    the command's exit status. Ctrl-C stops the command and marks the run KILLED.

    \b
    Example:
        runyard run . -P alpha=0.5
        runyard run . -e train.py --env-manager local
        runyard run https://github.com/mlflow/mlflow-example -v master -P alpha=0.4
        runyard run file:///srv/repos/models#forecast -e train --experiment-name forecasts
    """
    from runyard.projects import run

    if experiment_id is not None and experiment_name is not None:
        raise click.UsageError("Specify only one of 'experiment-name' or 'experiment-id' options.")
    params = _user_args_to_dict(param_list, "P")
    docker = _user_args_to_dict(docker_args, "A")
    _show_progress()
    try:
        run(
            uri,
            entry_point,
            version,
            parameters=params,
            docker_args=docker,
            experiment_name=experiment_name,
            experiment_id=experiment_id,
            backend=backend,
            backend_config=backend_config,
            storage_dir=storage_dir,
            synchronous=True,
            run_id=run_id,
            run_name=run_name,
            env_manager=env_manager,
            build_image=build_image,
        )
    except KeyboardInterrupt:
        raise SystemExit(128 + signal.SIGINT) from None
