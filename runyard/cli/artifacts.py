"""``runyard artifacts``: list, download and upload the files of a run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from runyard.artifacts import download_artifacts
from runyard.cli.output import (
    RunyardGroup,
    echo_json,
    echo_table,
    file_info_to_dict,
    format_size,
    get_client,
    output_option,
)

__all__ = ["commands"]

F = TypeVar("F", bound=Callable[..., Any])

RUN_ID = click.option(
    "--run-id",
    "-r",
    required=True,
    help="ID of the run whose artifacts to use, as shown by 'runyard runs list'.",
)


def _artifact_path_option(help_text: str) -> Callable[[F], F]:
    # MLflow spells it -a; the seed cheat sheet uses -p ("download -r <run_id> -p model").
    return click.option("--artifact-path", "-a", "-p", help=help_text)


@click.group("artifacts", cls=RunyardGroup)
def commands() -> None:
    """Upload, list and download the artifacts (files) of runs.

    The tracking store comes from RUNYARD_TRACKING_URI (or MLFLOW_TRACKING_URI), by default
    sqlite:///runyard.db in the current directory.

    \b
    Example:
        runyard artifacts list -r 5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f
        runyard artifacts download -r 5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f -p model -d ./model
    """


@commands.command("list")
@RUN_ID
@_artifact_path_option("Directory inside the run's artifacts to list (default: the top level).")
@output_option
def list_artifacts(run_id: str, artifact_path: str | None, output: str) -> None:
    """List the files and directories directly under an artifact directory of a run.

    \b
    Example:
        runyard artifacts list -r 5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f -a model
        runyard artifacts list -r 5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f --output json
    """
    infos = get_client().list_artifacts(run_id, artifact_path)
    if output.lower() == "json":
        echo_json([file_info_to_dict(info) for info in infos])
        return
    echo_table(
        ["Path", "Type", "Size"],
        [
            [info.path, "dir" if info.is_dir else "file", format_size(info.file_size)]
            for info in infos
        ],
        no_wrap=["Type", "Size"],
    )


@commands.command("download")
@click.option("--run-id", "-r", help="ID of the run to download from (or give --artifact-uri).")
@_artifact_path_option(
    "With --run-id: the file or directory inside the run's artifacts (default: all of them)."
)
@click.option(
    "--artifact-uri",
    "-u",
    help="Instead of --run-id: a URI such as runs:/<run_id>/model or a path to a file or "
    "directory of artifacts.",
)
@click.option(
    "--dst-path",
    "--dest-path",
    "-d",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Local directory to download into (created if missing; default: a new temporary "
    "directory).",
)
def download(
    run_id: str | None,
    artifact_path: str | None,
    artifact_uri: str | None,
    dst_path: str | None,
) -> None:
    """Download an artifact file or directory and print where it was saved.

    \b
    Example:
        runyard artifacts download -r 5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f -p model -d ./model
        runyard artifacts download -u runs:/5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f/model
    """
    if (run_id is None) == (artifact_uri is None):
        raise click.UsageError("Give either --run-id/-r (with --artifact-path) or --artifact-uri.")
    if artifact_uri is not None:
        if artifact_path is not None:
            raise click.UsageError("--artifact-path goes with --run-id; put the path in the URI.")
        local = download_artifacts(artifact_uri=artifact_uri, dst_path=dst_path)
    else:
        assert run_id is not None
        local = get_client().download_artifacts(run_id, artifact_path or "", dst_path)
    click.echo(local)


@commands.command("log-artifact")
@click.option("--local-file", "-l", required=True, help="Local file to upload.")
@RUN_ID
@_artifact_path_option(
    "Directory inside the run's artifacts to put the file in (default: the top level)."
)
def log_artifact(local_file: str, run_id: str, artifact_path: str | None) -> None:
    """Upload one local file to a run's artifacts.

    \b
    Example:
        runyard artifacts log-artifact -l confusion.png -r 5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f -a plots
    """
    get_client().log_artifact(run_id, local_file, artifact_path)
    click.echo(f"Logged '{local_file}' to run {run_id} at '{artifact_path or '.'}'.")


@commands.command("log-artifacts")
@click.option("--local-dir", "-l", required=True, help="Local directory whose contents to upload.")
@RUN_ID
@_artifact_path_option(
    "Directory inside the run's artifacts to put the files in (default: the top level)."
)
def log_artifacts(local_dir: str, run_id: str, artifact_path: str | None) -> None:
    """Upload the contents of a local directory (recursively) to a run's artifacts.

    \b
    Example:
        runyard artifacts log-artifacts -l ./outputs -r 5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f -a outputs
    """
    get_client().log_artifacts(run_id, local_dir, artifact_path)
    click.echo(f"Logged the contents of '{local_dir}' to run {run_id} at '{artifact_path or '.'}'.")
