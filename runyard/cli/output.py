"""What every command shares: one-line errors, the client, paging, tables and JSON output.

A user mistake (an unknown id, a taken name, a bad filter, a missing file) surfaces as a
:class:`~runyard.errors.RunyardError` from the layers below. :class:`RunyardGroup` turns it into
one ``Error: <message>`` line on stderr and exit status 1, once for every command, so no command
catches errors itself. rich and pandas are imported inside the functions that use them, which
keeps ``import runyard.cli`` (and so ``runyard --help``) fast.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

from runyard.entities import Experiment, FileInfo, PagedList, Run, ViewType
from runyard.errors import RunyardError
from runyard.tracking.client import Client
from runyard.utils.time import format_duration

__all__ = [
    "PAGE_SIZE",
    "RunyardGroup",
    "collect_pages",
    "echo_json",
    "echo_table",
    "experiment_to_dict",
    "file_info_to_dict",
    "format_duration",
    "format_size",
    "format_time",
    "get_client",
    "max_results_option",
    "one_line",
    "output_option",
    "run_to_dict",
    "view_option",
    "view_type",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: Results fetched per store call when a command pages through everything.
PAGE_SIZE = 1000

VIEWS = ("active_only", "deleted_only", "all")


# -- errors -----------------------------------------------------------------------------------
def one_line(text: str) -> str:
    """``text`` with its lines joined by spaces, so an error never spans lines."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _describe_os_error(exc: OSError) -> str:
    if exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: '{exc.filename}'"
    return one_line(str(exc)) or type(exc).__name__


class RunyardGroup(click.Group):
    """A click group that reports runyard and filesystem errors as one line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; turn a RunyardError or OSError into ``Error: <message>``."""
        try:
            return super().invoke(ctx)
        except RunyardError as exc:
            raise click.ClickException(one_line(exc.message)) from None
        except OSError as exc:
            # click's own handler silences a closed pipe (``runyard ... | head``); keep that.
            if exc.errno == errno.EPIPE:
                raise
            raise click.ClickException(_describe_os_error(exc)) from None


def get_client() -> Client:
    """A client for the tracking URI from ``RUNYARD_TRACKING_URI``/``MLFLOW_TRACKING_URI``."""
    try:
        return Client()
    except ValueError as exc:  # a malformed RUNYARD_*/MLFLOW_* environment variable
        raise click.ClickException(one_line(str(exc))) from None


# -- shared options ---------------------------------------------------------------------------
def output_option(func: F) -> F:
    """``--output table|json``: a readable table (default) or machine-readable JSON."""
    option = click.option(
        "--output",
        type=click.Choice(["table", "json"], case_sensitive=False),
        default="table",
        show_default=True,
        help="'table' for people, 'json' for scripts (stable keys, e.g. piped to jq).",
    )
    return option(func)


def view_option(what: str) -> Callable[[F], F]:
    """``--view active_only|deleted_only|all`` for commands that list ``what``."""
    return click.option(
        "--view",
        "-v",
        type=click.Choice(VIEWS, case_sensitive=False),
        default="active_only",
        show_default=True,
        help=f"Which {what} to show: active ones, deleted ones (restorable), or all.",
    )


def max_results_option(default: int | None, what: str) -> Callable[[F], F]:
    """``--max-results N``: stop after N results (``default`` None means no limit)."""
    limit = "all of them" if default is None else f"{default}"
    return click.option(
        "--max-results",
        type=click.IntRange(min=1),
        default=default,
        help=f"Show at most this many {what} (default: {limit}).",
    )


def view_type(view: str) -> int:
    """The ViewType number for a ``--view`` value."""
    return ViewType.from_string(view)


# -- paging -----------------------------------------------------------------------------------
def collect_pages(
    fetch: Callable[[int, str | None], PagedList[T]], max_results: int | None
) -> tuple[list[T], bool]:
    """Call ``fetch(page_size, token)`` until done; return the items and whether more remain."""
    items: list[T] = []
    token: str | None = None
    while max_results is None or len(items) < max_results:
        wanted = PAGE_SIZE if max_results is None else min(PAGE_SIZE, max_results - len(items))
        page = fetch(wanted, token)
        items.extend(page)
        token = page.token
        if not token:
            return items, False
    return items, True


# -- formatting -------------------------------------------------------------------------------
def format_time(ms: int | None) -> str:
    """Milliseconds since the epoch as local ``YYYY-MM-DD HH:MM:SS`` ('' when unknown)."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def format_size(size: int | None) -> str:
    """A byte count for people: ``512 B``, ``1.5 KiB``, ``3.0 MiB`` ('' for directories)."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _terminal_width() -> int:
    # COLUMNS wins (tests pin it), then the real terminal; piped output gets a roomy default.
    return shutil.get_terminal_size(fallback=(120, 24)).columns


def echo_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    no_wrap: Sequence[str] = (),
    show_header: bool = True,
) -> None:
    """Print a table fitted to the terminal; columns named in ``no_wrap`` are never broken."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    encoding = (getattr(sys.stdout, "encoding", None) or "").lower()
    style = box.SIMPLE_HEAD if encoding.startswith("utf") else box.ASCII2
    table = Table(
        box=style, show_header=show_header, show_edge=False, header_style="bold", pad_edge=False
    )
    for header in headers:
        if header in no_wrap:
            table.add_column(header, no_wrap=True, overflow="ignore")
        else:
            table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console(
        width=_terminal_width(),
        force_terminal=sys.stdout.isatty() and "NO_COLOR" not in os.environ,
        highlight=False,
        soft_wrap=False,
    )
    with console.capture() as capture:
        console.print(table)
    # rich pads every cell to the column width; trailing blanks only get in the way of diffs.
    click.echo("\n".join(line.rstrip() for line in capture.get().splitlines()))


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (keys in a fixed order, non-ASCII kept)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


# -- entities as JSON -------------------------------------------------------------------------
def _json_number(value: float) -> float | str:
    # NaN and infinities are not JSON; protobuf's JSON mapping (MLflow's wire format) spells them.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def experiment_to_dict(experiment: Experiment) -> dict[str, Any]:
    """An experiment as MLflow's ``dict(experiment)``: sorted keys, tags as a dict."""
    return {
        "artifact_location": experiment.artifact_location,
        "creation_time": experiment.creation_time,
        "experiment_id": experiment.experiment_id,
        "last_update_time": experiment.last_update_time,
        "lifecycle_stage": experiment.lifecycle_stage,
        "name": experiment.name,
        "tags": dict(experiment.tags),
    }


def run_to_dict(run: Run) -> dict[str, Any]:
    """A run as MLflow's ``Run.to_dictionary()``: ``info``, ``data`` and ``inputs``."""
    info = run.info
    dataset_inputs = [
        {
            "dataset": {
                "name": item.dataset.name,
                "digest": item.dataset.digest,
                "source_type": item.dataset.source_type,
                "source": item.dataset.source,
                "schema": item.dataset.schema,
                "profile": item.dataset.profile,
            },
            "tags": [{"key": tag.key, "value": tag.value} for tag in item.tags],
        }
        for item in run.inputs.dataset_inputs
    ]
    return {
        "info": {
            "artifact_uri": info.artifact_uri,
            "end_time": info.end_time,
            "experiment_id": info.experiment_id,
            "lifecycle_stage": info.lifecycle_stage,
            "run_id": info.run_id,
            "run_name": info.run_name,
            "run_uuid": info.run_id,
            "start_time": info.start_time,
            "status": info.status,
            "user_id": info.user_id,
        },
        "data": {
            "metrics": {key: _json_number(value) for key, value in run.data.metrics.items()},
            "params": dict(run.data.params),
            "tags": dict(run.data.tags),
        },
        "inputs": {"dataset_inputs": dataset_inputs},
    }


def file_info_to_dict(info: FileInfo) -> dict[str, Any]:
    """An artifact listing entry: ``path``, ``is_dir``, ``file_size`` (null for directories)."""
    return {"path": info.path, "is_dir": info.is_dir, "file_size": info.file_size}
