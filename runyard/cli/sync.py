"""``runyard sync``: upload what could not reach the tracking server when it was logged.

Two sources (docs/reliability.md): spool files that processes left when the server was down at
``end_run`` or exit (each replayed to the URI recorded in it, or to ``--to``), and runs logged in
offline mode (``RUNYARD_OFFLINE=1``), pushed to ``--to`` with their ids, steps, timestamps and
artifacts. Both are idempotent and resumable: run the command again after a failure, or twice,
and nothing is sent twice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runyard.tracking.spool import list_spools, spool_dir

if TYPE_CHECKING:
    from runyard.tracking.sync import RunPush, SpoolSync

__all__ = ["sync"]


def _n(count: int, what: str) -> str:
    return f"{count} {what}" if count == 1 else f"{count} {what}s"


def _spool_lines(result: SpoolSync) -> list[str]:
    report = result.report
    name = result.path.name
    if result.outcome == "in use":
        return [f"spool {name}: in use by a running process (it uploads it itself); skipped"]
    ends = sum(1 for run in report.runs.values() if run.status)
    head = (
        f"spool {name} -> {result.tracking_uri}: {_n(len(report.runs), 'run')}, "
        f"{_n(report.values, 'value')}, {_n(ends, 'run end')}: {result.outcome}"
    )
    if result.error:
        head += f" ({result.error})"
    lines = [head]
    for run_id, run in report.runs.items():
        end = f", ended {run.status}" if run.status else ""
        lines.append(
            f"  run {run_id}: {_n(run.metrics, 'point')}, {_n(run.params, 'param')}, "
            f"{_n(run.tags, 'tag')}{end}"
        )
    lines += [f"  refused: {' '.join(e.message.split())}" for e in report.errors]
    return lines


def _run_line(result: RunPush) -> str:
    line = (
        f"run {result.run_id} ({result.run_name}) in '{result.experiment_name}', "
        f"{result.status}: {_n(result.points, 'point')}, {_n(result.params, 'param')}, "
        f"{_n(result.tags, 'tag')}, {_n(result.files, 'file')}: {result.outcome}"
    )
    return f"{line} ({result.error})" if result.error else line


def _push_offline(
    source: str, target: str, experiments: tuple[str, ...], run_ids: tuple[str, ...], dry: bool
) -> list[RunPush]:
    from runyard.tracking.sync import OfflinePush

    push = OfflinePush(source, target)
    try:
        click.echo(f"Offline store {push.db} -> {push.target}")
        results = []
        for run in push.runs(experiments, run_ids):
            result = push.push(run, dry_run=dry)
            click.echo(_run_line(result))
            results.append(result)
        return results
    finally:
        push.close()


@click.command("sync", short_help="Upload spooled values and offline runs to a tracking server.")
@click.option(
    "--to",
    "target",
    metavar="URL",
    default=None,
    help="The tracking server to send to, http(s)://host:port. Spools go to the URI recorded in "
    "them unless this is given; offline runs need it.",
)
@click.option(
    "--from",
    "source",
    metavar="PATH",
    default=None,
    help="Push the runs of this offline store (a directory holding runyard.db, the .db file, "
    "or a sqlite:/// URI) and nothing else. Default: the spools, plus the offline store of "
    "RUNYARD_OFFLINE_DIR when --to is given.",
)
@click.option(
    "--spool-dir",
    "spool_directory",
    metavar="DIR",
    default=None,
    help="Where the spool files are (default: RUNYARD_SPOOL_DIR, else ~/.runyard/spool).",
)
@click.option(
    "--experiment-name",
    "experiment_names",
    multiple=True,
    metavar="NAME",
    help="Offline runs: only those of this experiment (repeatable). The experiment keeps its "
    "name on the server and is created there if missing.",
)
@click.option(
    "--run-id",
    "run_ids",
    multiple=True,
    metavar="ID",
    help="Offline runs: only this run (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="List what would be sent; send nothing.")
def sync(
    target: str | None,
    source: str | None,
    spool_directory: str | None,
    experiment_names: tuple[str, ...],
    run_ids: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Upload what could not reach the tracking server: spooled values and run ends left by
    processes that ended during an outage, and runs logged with RUNYARD_OFFLINE=1.

    Ids, steps and timestamps are kept. Syncing is resumable and idempotent: run it again after
    an error, or twice, and nothing is stored twice.

    \b
    Example:
        runyard sync
        runyard sync --to http://tracking:5000 --dry-run
        runyard sync --to http://tracking:5000 --from /scratch/job42/runyard-offline
    """
    # httpx and the SQL store load here, not when `runyard --help` starts.
    from runyard.tracking.sync import default_offline_store, sync_spool

    directory = (
        Path(os.path.expanduser(spool_directory)).absolute() if spool_directory else spool_dir()
    )
    if (experiment_names or run_ids) and target is None:
        raise click.UsageError("--experiment-name and --run-id select offline runs; add --to URL.")
    if source is not None and target is None:
        raise click.UsageError("--from needs --to URL: the server to push the offline runs to.")
    spools: list[SpoolSync] = []
    if source is None:
        for path in list_spools(directory):
            result = sync_spool(path, target, dry_run)
            for line in _spool_lines(result):
                click.echo(line)
            spools.append(result)
    pushed: list[RunPush] = []
    offline = source
    if offline is None and target is not None:
        found = default_offline_store()
        offline = None if found is None else str(found)
    if offline is not None and target is not None:
        pushed = _push_offline(offline, target, experiment_names, run_ids, dry_run)
    if not spools and offline is None:
        click.echo(f"Nothing to sync: no spool files in {directory} and no offline store.")
        return
    _summary(spools, pushed, dry_run)


def _summary(spools: list[SpoolSync], pushed: list[RunPush], dry_run: bool) -> None:
    sent_spools = [s for s in spools if s.outcome in ("sent", "would send")]
    values = sum(s.report.values for s in sent_spools)
    sent_runs = [r for r in pushed if r.outcome in ("sent", "would send")]
    failed = [s for s in spools if s.outcome == "failed"] + [
        r for r in pushed if r.outcome == "failed"
    ]
    verb = "Would send" if dry_run else "Sent"
    points = sum(r.points for r in sent_runs)
    files = sum(r.files for r in sent_runs)
    current = sum(1 for r in pushed if r.outcome == "up to date")
    busy = sum(1 for s in spools if s.outcome == "in use")
    click.echo(
        f"{verb} {_n(len(sent_spools), 'spool file')} ({_n(values, 'value')}) and "
        f"{_n(len(sent_runs), 'offline run')} ({_n(points, 'point')}, {_n(files, 'file')}); "
        f"{current} already up to date, {busy} in use, {len(failed)} failed."
    )
    if failed:
        raise click.ClickException(
            f"{len(failed)} could not be synced (see above); run 'runyard sync' again to retry."
        )
