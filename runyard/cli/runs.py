"""``runyard runs``: list, describe, delete and restore runs; find and end stale runs.

A run whose process died (killed, out of memory, node lost) stays RUNNING: nothing tells the
store it ended. ``runs list --stale 1h`` shows RUNNING runs with no activity for an hour, and
``runs mark-stale --older-than 1h`` ends them as KILLED (or FAILED). A run's *last activity* is
the latest of its start time and the timestamps of its metrics' latest points: what the store
keeps for every run (params and tags carry no time).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

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
from runyard.entities import Run, ViewType
from runyard.tracking.client import Client
from runyard.utils.time import now_ms

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


# -- stale runs ---------------------------------------------------------------------------------
_AGE_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> int:
    """Milliseconds of a duration such as ``90s``, ``30m``, ``1h``, ``1h30m``, ``2d``, ``1w``.

    Raises:
        ValueError: when ``text`` is not such a duration.
    """
    compact = text.strip().lower().replace(" ", "")
    parts = _AGE_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"'{text}' is not a duration; use e.g. 90s, 30m, 1h, 1h30m, 2d.")
    return int(sum(float(n) * _AGE_UNITS[u] for n, u in parts) * 1000)


def _age_option(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_age(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def last_activity(run: Run) -> int:
    """The latest of the run's start time and its metrics' latest timestamps (ms)."""
    times = [m.timestamp for m in run.data.metric_objs]
    return max([run.info.start_time or 0, *times])


def stale_runs(
    client: Client, experiment_ids: list[str], older_than_ms: int, filter_string: str = ""
) -> list[tuple[Run, int]]:
    """RUNNING runs of the experiments whose last activity is older than ``older_than_ms``,
    with that time, oldest first."""
    running = "attributes.status = 'RUNNING'"
    query = f"{filter_string} and {running}" if filter_string else running
    runs, _ = collect_pages(
        lambda size, token: client.search_runs(
            experiment_ids, query, ViewType.ACTIVE_ONLY, size, None, token
        ),
        None,
    )
    cutoff = now_ms() - older_than_ms
    found = [(run, last_activity(run)) for run in runs]
    return sorted(((r, t) for r, t in found if t < cutoff), key=lambda item: item[1])


def _stale_table(found: list[tuple[Run, int]]) -> None:
    now = now_ms()
    rows = [
        [
            run.info.run_id,
            run.info.experiment_id,
            run.info.run_name,
            format_time(run.info.start_time),
            format_time(last),
            format_duration(last, now),
        ]
        for run, last in found
    ]
    headers = ["Run ID", "Experiment", "Name", "Started", "Last activity", "Idle for"]
    echo_table(headers, rows, no_wrap=["Run ID", "Started", "Last activity"])


def _stale_json(found: list[tuple[Run, int]]) -> list[dict[str, Any]]:
    return [{**run_to_dict(run), "last_activity": last} for run, last in found]


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
@click.option(
    "--stale",
    callback=_age_option,
    metavar="AGE",
    help="Only RUNNING runs with no activity (start, latest metric) for AGE, e.g. 1h, 30m, "
    "2d: runs whose process died. End them with 'runyard runs mark-stale'.",
)
@output_option
def list_runs(
    experiment_id: str,
    view: str,
    filter_string: str | None,
    order_by: tuple[str, ...],
    max_results: int,
    stale: int | None,
    output: str,
) -> None:
    """List the runs of an experiment: id, name, status, start time, duration, top metrics.

    \b
    Example:
        runyard runs list -e 1
        runyard runs list -e 1 --filter "metrics.rmse < 0.8" --order-by "metrics.rmse"
        runyard runs list -e 1 --output json | jq -r '.[].info.run_id'
        runyard runs list -e 1 --stale 1h
    """
    client = get_client()
    client.get_experiment(experiment_id)  # an unknown id is an error, not an empty list
    if stale is not None:
        found = stale_runs(client, [experiment_id], stale, filter_string or "")[:max_results]
        if output.lower() == "json":
            echo_json(_stale_json(found))
        else:
            _stale_table(found)
        return
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


@commands.command("mark-stale")
@click.option(
    "--older-than",
    callback=_age_option,
    required=True,
    metavar="AGE",
    help="End RUNNING runs with no activity (start, latest metric) for AGE, e.g. 1h, 30m, 2d.",
)
@click.option(
    "--experiment-id",
    "-e",
    "experiment_ids",
    multiple=True,
    help="Only runs of this experiment; repeat for several (default: every active experiment).",
)
@click.option(
    "--status",
    type=click.Choice(["KILLED", "FAILED"], case_sensitive=False),
    default="KILLED",
    show_default=True,
    help="The status the runs end with.",
)
@click.option("--dry-run", is_flag=True, help="Only show which runs would be ended.")
@output_option
def mark_stale(
    older_than: int,
    experiment_ids: tuple[str, ...],
    status: str,
    dry_run: bool,
    output: str,
) -> None:
    """End runs left RUNNING by a process that died: KILLED (or FAILED) at their last activity.

    A run's last activity is the latest of its start time and its metrics' latest timestamps;
    its end time becomes that moment. Runs still logging are left alone.

    \b
    Example:
        runyard runs mark-stale --older-than 1h --dry-run
        runyard runs mark-stale --older-than 2d -e 1 --status FAILED
    """
    client = get_client()
    ids = list(experiment_ids)
    if ids:
        for experiment_id in ids:
            client.get_experiment(experiment_id)
    else:
        experiments, _ = collect_pages(
            lambda size, token: client.search_experiments(
                ViewType.ACTIVE_ONLY, size, None, None, token
            ),
            None,
        )
        ids = [e.experiment_id for e in experiments]
    found = stale_runs(client, ids, older_than) if ids else []
    status = status.upper()
    if not dry_run:
        for run, last in found:
            client.set_terminated(run.info.run_id, status, last)
    if output.lower() == "json":
        echo_json(_stale_json(found))
    else:
        _stale_table(found)
    verb = "Would mark" if dry_run else "Marked"
    click.echo(f"{verb} {len(found)} stale run(s) as {status}.", err=True)
