"""``runyard experiments``: create, list, inspect, rename, delete, restore and export them."""

from __future__ import annotations

from typing import Any

import click

from runyard.cli.output import (
    RunyardGroup,
    collect_pages,
    echo_json,
    echo_table,
    experiment_to_dict,
    format_time,
    get_client,
    max_results_option,
    output_option,
    view_option,
    view_type,
)
from runyard.entities import Experiment, Run, ViewType
from runyard.errors import ResourceDoesNotExist
from runyard.tracking.search import runs_to_dataframe

__all__ = ["commands"]

EXPERIMENT_ID = click.option(
    "--experiment-id",
    "-x",
    required=True,
    help="ID of the experiment, as shown by 'runyard experiments list'.",
)


@click.group("experiments", cls=RunyardGroup)
def commands() -> None:
    """Manage experiments: named groups of runs.

    The tracking store comes from RUNYARD_TRACKING_URI (or MLFLOW_TRACKING_URI), by default
    sqlite:///runyard.db in the current directory.

    \b
    Example:
        runyard experiments create -n fraud-detection
        runyard experiments list
    """


@commands.command("create")
@click.option("--experiment-name", "-n", required=True, help="Name of the new experiment.")
@click.option(
    "--artifact-location",
    "-l",
    help="Where runs of this experiment store artifacts, as a path or URI "
    "(default: the store's artifact root, ./runyard-artifacts/<id>).",
)
def create(experiment_name: str, artifact_location: str | None) -> None:
    """Create an experiment and print its id.

    Artifacts of its runs go under the artifact location, one sub-directory per run.

    \b
    Example:
        runyard experiments create -n fraud-detection -l /mnt/artifacts/fraud
    """
    experiment_id = get_client().create_experiment(experiment_name, artifact_location)
    click.echo(f"Created experiment '{experiment_name}' with id {experiment_id}")


def _experiments_table(experiments: list[Experiment]) -> None:
    echo_table(
        ["ID", "Name", "Artifact Location", "Stage", "Created"],
        [
            [
                e.experiment_id,
                e.name,
                e.artifact_location,
                e.lifecycle_stage,
                format_time(e.creation_time),
            ]
            for e in experiments
        ],
        no_wrap=["ID", "Created"],
    )


@click.command("search")
@view_option("experiments")
@max_results_option(None, "experiments")
@click.option(
    "--filter",
    "filter_string",
    help="Search filter, e.g. \"name LIKE 'fraud%'\" or \"tags.team = 'risk'\".",
)
@click.option(
    "--order-by",
    multiple=True,
    help="Sort key such as 'name' or 'creation_time DESC'; repeat for several keys.",
)
@output_option
def search(
    view: str,
    max_results: int | None,
    filter_string: str | None,
    order_by: tuple[str, ...],
    output: str,
) -> None:
    """Search experiments and show them as a table or JSON.

    \b
    Example:
        runyard experiments search --view all --filter "name LIKE 'fraud%'"
        runyard experiments search --output json | jq '.[].name'
    """
    client = get_client()
    experiments, _more = collect_pages(
        lambda size, token: client.search_experiments(
            view_type(view), size, filter_string, list(order_by) or None, token
        ),
        max_results,
    )
    if output.lower() == "json":
        echo_json([experiment_to_dict(e) for e in experiments])
    else:
        _experiments_table(experiments)


commands.add_command(search)
commands.add_command(
    click.Command(
        "list",
        callback=search.callback,
        params=search.params,
        help="List experiments (the same as 'search').\n\n"
        "\b\nExample:\n    runyard experiments list\n"
        "    runyard experiments list --view deleted_only --output json",
        short_help="List experiments (the same as 'search').",
    )
)


def _experiment_rows(experiment: Experiment) -> list[list[str]]:
    tags = ", ".join(f"{key}={value}" for key, value in sorted(experiment.tags.items()))
    return [
        ["Experiment ID", experiment.experiment_id],
        ["Name", experiment.name],
        ["Artifact Location", experiment.artifact_location],
        ["Lifecycle Stage", experiment.lifecycle_stage],
        ["Creation Time", format_time(experiment.creation_time)],
        ["Last Update Time", format_time(experiment.last_update_time)],
        ["Tags", tags],
    ]


@commands.command("get")
@click.option(
    "--experiment-id", "-x", help="ID of the experiment (give this or --experiment-name)."
)
@click.option("--experiment-name", "-n", help="Exact name of the experiment (or --experiment-id).")
@output_option
def get(experiment_id: str | None, experiment_name: str | None, output: str) -> None:
    """Show one experiment: name, artifact location, lifecycle stage, times and tags.

    \b
    Example:
        runyard experiments get -x 1
        runyard experiments get -n fraud-detection --output json
    """
    if (experiment_id is None) == (experiment_name is None):
        raise click.UsageError("Give exactly one of --experiment-id/-x or --experiment-name/-n.")
    client = get_client()
    if experiment_id is not None:
        experiment = client.get_experiment(experiment_id)
    else:
        assert experiment_name is not None
        found = client.get_experiment_by_name(experiment_name)
        if found is None:
            raise ResourceDoesNotExist(f"No experiment named '{experiment_name}' exists.")
        experiment = found
    if output.lower() == "json":
        echo_json(experiment_to_dict(experiment))
    else:
        echo_table(["Field", "Value"], _experiment_rows(experiment), show_header=False)


@commands.command("delete")
@EXPERIMENT_ID
def delete(experiment_id: str) -> None:
    """Mark an active experiment and its runs as deleted.

    Deleted experiments keep their data and can be brought back with 'restore' until they are
    removed for good.

    \b
    Example:
        runyard experiments delete -x 3
    """
    get_client().delete_experiment(experiment_id)
    click.echo(f"Experiment with ID {experiment_id} has been deleted.")


@commands.command("restore")
@EXPERIMENT_ID
def restore(experiment_id: str) -> None:
    """Restore a deleted experiment, with the runs that were deleted along with it.

    \b
    Example:
        runyard experiments restore -x 3
    """
    get_client().restore_experiment(experiment_id)
    click.echo(f"Experiment with id {experiment_id} has been restored.")


@commands.command("rename")
@EXPERIMENT_ID
@click.option("--new-name", required=True, help="The new name; it must not be taken.")
def rename(experiment_id: str, new_name: str) -> None:
    """Rename an active experiment.

    \b
    Example:
        runyard experiments rename -x 3 --new-name fraud-detection-v2
    """
    get_client().rename_experiment(experiment_id, new_name)
    click.echo(f"Experiment with id {experiment_id} has been renamed to '{new_name}'.")


@commands.command("csv")
@EXPERIMENT_ID
@click.option(
    "--filename",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the CSV to this file instead of standard output.",
)
def csv(experiment_id: str, filename: str | None) -> None:
    """Export the active runs of an experiment as CSV: one row per run.

    Columns: run_id, experiment_id, status, artifact_uri, start_time, end_time, then
    metrics.*, params.* and tags.* columns.

    \b
    Example:
        runyard experiments csv -x 1 -o runs.csv
    """
    client = get_client()
    client.get_experiment(experiment_id)  # an unknown id is an error, not an empty CSV
    runs: list[Run]
    runs, _more = collect_pages(
        lambda size, token: client.search_runs(
            [experiment_id], "", ViewType.ACTIVE_ONLY, size, None, token
        ),
        None,
    )
    frame: Any = runs_to_dataframe(runs)
    if filename:
        frame.to_csv(filename, index=False)
        click.echo(
            f"Experiment with ID {experiment_id} has been exported as a CSV to file: {filename}."
        )
    else:
        click.echo(frame.to_csv(index=False), nl=False)
