"""``runyard runs``: list, describe, delete and restore runs."""

from __future__ import annotations

from collections import Counter

import click

from runyard.cli.output import (
    RunyardGroup,
    collect_pages,
    echo_json,
    echo_table,
    format_duration,
    format_time,
    get_client,
    max_results_option,
    output_option,
    run_to_dict,
    view_option,
    view_type,
)
from runyard.config import ENV
from runyard.entities import Run

__all__ = ["commands"]

#: How many metric columns the runs table shows (the most widely logged keys).
TABLE_METRICS = 3

RUN_ID = click.option(
    "--run-id",
    "-r",
    required=True,
    help="ID of the run (32 hex characters), as shown by 'runyard runs list'.",
)


@click.group("runs", cls=RunyardGroup)
def commands() -> None:
    """Manage runs: list them, show one as JSON, delete and restore them.

    The tracking store comes from RUNYARD_TRACKING_URI (or MLFLOW_TRACKING_URI), by default
    sqlite:///runyard.db in the current directory.

    \b
    Example:
        runyard runs list -e 1
        runyard runs describe -r 5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f
    """


def _metric_columns(runs: list[Run]) -> list[str]:
    counts = Counter(key for run in runs for key in run.data.metrics)
    ranked = sorted(counts, key=lambda key: (-counts[key], key))
    return ranked[:TABLE_METRICS]


def _runs_table(runs: list[Run], show_stage: bool) -> None:
    metrics = _metric_columns(runs)
    headers = ["Run ID", "Name", "Status", "Started", "Duration"]
    headers += ["Stage"] if show_stage else []
    rows = []
    for run in runs:
        info = run.info
        row = [
            info.run_id,
            info.run_name,
            info.status,
            format_time(info.start_time),
            format_duration(info.start_time, info.end_time),
        ]
        row += [info.lifecycle_stage] if show_stage else []
        for key in metrics:
            value = run.data.metrics.get(key)
            row.append("" if value is None else f"{value:.4g}")
        rows.append(row)
    echo_table(headers + metrics, rows, no_wrap=["Run ID", "Started", "Duration"])


@commands.command("list")
@click.option(
    "--experiment-id",
    "-e",
    required=True,
    envvar=[ENV.EXPERIMENT_ID.runyard_name, ENV.EXPERIMENT_ID.mlflow_name],
    show_envvar=True,
    help="ID of the experiment whose runs to list.",
)
@view_option("runs")
@click.option(
    "--filter",
    "filter_string",
    help="Search filter, e.g. \"metrics.rmse < 0.8 and params.model = 'xgb'\".",
)
@click.option(
    "--order-by",
    multiple=True,
    help="Sort key such as 'metrics.rmse ASC' or 'start_time DESC'; repeat for several keys "
    "(default: newest first).",
)
@max_results_option(1000, "runs")
@output_option
def list_runs(
    experiment_id: str,
    view: str,
    filter_string: str | None,
    order_by: tuple[str, ...],
    max_results: int,
    output: str,
) -> None:
    """List the runs of an experiment: id, name, status, start time, duration, top metrics.

    \b
    Example:
        runyard runs list -e 1
        runyard runs list -e 1 --filter "metrics.rmse < 0.8" --order-by "metrics.rmse"
        runyard runs list -e 1 --output json | jq -r '.[].info.run_id'
    """
    client = get_client()
    client.get_experiment(experiment_id)  # an unknown id is an error, not an empty list
    runs, more = collect_pages(
        lambda size, token: client.search_runs(
            [experiment_id],
            filter_string or "",
            view_type(view),
            size,
            list(order_by) or None,
            token,
        ),
        max_results,
    )
    if output.lower() == "json":
        echo_json([run_to_dict(run) for run in runs])
    else:
        _runs_table(runs, show_stage=view.lower() != "active_only")
    if more:
        click.echo(f"Showing the first {len(runs)} runs; pass --max-results to see more.", err=True)


@commands.command("describe")
@RUN_ID
def describe(run_id: str) -> None:
    """Print everything about a run as JSON: info, data (metrics, params, tags) and inputs.

    \b
    Example:
        runyard runs describe -r 5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f | jq .data.metrics
    """
    echo_json(run_to_dict(get_client().get_run(run_id)))


@commands.command("delete")
@RUN_ID
def delete(run_id: str) -> None:
    """Mark a run as deleted; 'restore' brings it back.

    \b
    Example:
        runyard runs delete -r 5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f
    """
    get_client().delete_run(run_id)
    click.echo(f"Run with ID {run_id} has been deleted.")


@commands.command("restore")
@RUN_ID
def restore(run_id: str) -> None:
    """Restore a deleted run.

    \b
    Example:
        runyard runs restore -r 5f2c0d3e9a8b4c1d9e7f6a5b4c3d2e1f
    """
    get_client().restore_run(run_id)
    click.echo(f"Run with id {run_id} has been restored.")
