"""``runyard gc``: permanently delete soft-deleted runs, experiments and logged models.

MLflow's command and options. For every object the artifacts go first, then the rows, each
object on its own: a collection that is interrupted (or fails to reach an artifact store) leaves
the rest soft-deleted, and running ``runyard gc`` again finishes the job. Already-missing
artifacts are fine. Removing an experiment frees its name.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import click

from runyard.config import ENV
from runyard.entities import LifecycleStage
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.utils.time import now_ms

if TYPE_CHECKING:
    from runyard.store.artifact import ArtifactRepository
    from runyard.store.sql.gc import GcExperiment, GcLoggedModel, GcRun
    from runyard.store.sql.store import SqlTrackingStore

__all__ = ["GcOutcome", "GcPlan", "gc", "parse_older_than", "plan_gc", "run_gc"]

DEFAULT_BACKEND = "sqlite:///runyard.db"
_DURATION = re.compile(
    r"^(?:(?P<days>\d*\.?\d+)d)?(?:(?P<hours>\d*\.?\d+)h)?"
    r"(?:(?P<minutes>\d*\.?\d+)m)?(?:(?P<seconds>\d*\.?\d+)s)?$"
)


def parse_older_than(text: str) -> int:
    """``1d2h3m4s`` (each part optional, decimals allowed: ``1.5d``) as milliseconds."""
    match = _DURATION.match(text.strip())
    parts = {name: float(value) for name, value in (match.groupdict() if match else {}).items()
             if value}  # fmt: skip
    if not parts:
        raise InvalidParameterValue(
            f"Could not parse any time information from '{text}'. "
            "Examples of valid strings: '8h', '2d8h5m20s', '2m4s'"
        )
    return int(timedelta(**parts).total_seconds() * 1000)


def _split_ids(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


@dataclass
class GcPlan:
    """What one collection removes, in order: runs, logged models, then experiments."""

    runs: list[GcRun] = field(default_factory=list)
    logged_models: list[GcLoggedModel] = field(default_factory=list)
    experiments: list[GcExperiment] = field(default_factory=list)


# -- what to collect --------------------------------------------------------------------------
def _too_recent(what: str, kinds: str, older_than: str | None) -> InvalidParameterValue:
    """MLflow's error for a named object deleted less than ``--older-than`` ago."""
    return InvalidParameterValue(
        f"{what} not older than the required age. Only {kinds} older than {older_than} "
        "can be deleted."
    )


def _named_runs(
    store: SqlTrackingStore, run_ids: list[str], cutoff: int | None, older_than: str | None
) -> list[GcRun]:
    found = store.find_gc_runs(run_ids)
    runs = []
    for run_id in run_ids:
        run = found.get(run_id)
        if run is None:
            raise ResourceDoesNotExist(f"Run with id={run_id} not found")
        if run.lifecycle_stage != LifecycleStage.DELETED:
            raise InvalidParameterValue(
                f"Run {run_id} is not in `deleted` lifecycle stage. Only runs in `deleted` "
                "lifecycle stage can be deleted."
            )
        if cutoff is not None and (run.deleted_time or 0) >= cutoff:
            raise _too_recent(f"Run {run_id} is", "runs", older_than)
        runs.append(run)
    return runs


def _named_models(
    store: SqlTrackingStore, model_ids: list[str], cutoff: int | None, older_than: str | None
) -> list[GcLoggedModel]:
    found = store.find_gc_logged_models(model_ids)
    models = []
    for model_id in model_ids:
        model = found.get(model_id)
        if model is None:
            raise ResourceDoesNotExist(f"Logged model with ID '{model_id}' not found.")
        if model.lifecycle_stage != LifecycleStage.DELETED:
            raise InvalidParameterValue(
                f"Logged model {model_id} is not in `deleted` lifecycle stage. Only logged "
                "models in `deleted` lifecycle stage can be deleted."
            )
        if cutoff is not None and model.last_updated_timestamp >= cutoff:
            raise _too_recent(f"Logged model {model_id} is", "logged models", older_than)
        models.append(model)
    return models


def _named_experiments(
    store: SqlTrackingStore, experiment_ids: list[str], cutoff: int | None, older_than: str | None
) -> list[GcExperiment]:
    found = store.find_gc_experiments(experiment_ids)
    for exp_id in experiment_ids:
        if str(int(exp_id)) not in found:
            raise ResourceDoesNotExist(f"No Experiment with id={exp_id} exists")
    experiments = [found[str(int(exp_id))] for exp_id in experiment_ids]
    active = [e.experiment_id for e in experiments if e.lifecycle_stage != LifecycleStage.DELETED]
    if active:
        raise InvalidParameterValue(
            f"Experiments {active} are not in the deleted lifecycle stage. Only experiments in "
            "the deleted lifecycle stage can be hard-deleted."
        )
    if cutoff is not None:
        recent = [e.experiment_id for e in experiments if (e.last_update_time or 0) >= cutoff]
        if recent:
            raise _too_recent(f"Experiments {recent} are", "experiments", older_than)
    return experiments


def plan_gc(
    store: SqlTrackingStore,
    older_than: str | None = None,
    run_ids: list[str] | None = None,
    experiment_ids: list[str] | None = None,
    logged_model_ids: list[str] | None = None,
) -> GcPlan:
    """What ``runyard gc`` with these options removes; raises before anything is deleted when
    a named object does not exist, is not deleted, or is not old enough.

    Without ids every deleted object qualifies (deleted before ``older_than`` ago, if given).
    With ids, only the named runs, logged models and experiments are collected; an experiment
    goes with all its runs and logged models.
    """
    cutoff = now_ms() - parse_older_than(older_than) if older_than is not None else None
    if run_ids is None and experiment_ids is None and logged_model_ids is None:
        plan = GcPlan(
            store.deleted_runs(cutoff),
            store.deleted_logged_models(cutoff),
            store.deleted_experiments(cutoff),
        )
    else:
        plan = GcPlan(
            _named_runs(store, run_ids or [], cutoff, older_than),
            _named_models(store, logged_model_ids or [], cutoff, older_than),
            _named_experiments(store, experiment_ids or [], cutoff, older_than),
        )
    # An experiment takes everything in it along, whatever its stage or age.
    seen_runs = {run.run_id for run in plan.runs}
    seen_models = {model.model_id for model in plan.logged_models}
    for experiment in plan.experiments:
        runs, models = store.experiment_gc_contents(experiment.experiment_id)
        plan.runs.extend(run for run in runs if run.run_id not in seen_runs)
        plan.logged_models.extend(m for m in models if m.model_id not in seen_models)
    return plan


# -- artifacts --------------------------------------------------------------------------------
class _Artifacts:
    """Opens the repository behind an artifact URI; ``mlflow-artifacts:`` resolves under the
    artifacts destination, as the server that handed it out would."""

    def __init__(self, destination: str) -> None:
        from runyard.server.context import ServerContext
        from runyard.server.settings import ServerSettings

        settings = ServerSettings(artifacts_destination=destination)
        self._context = ServerContext(settings=settings, store=None)

    def delete(self, artifact_uri: str | None, owner_id: str) -> None:
        """Delete everything under ``artifact_uri`` (nothing there is fine)."""
        if not artifact_uri:
            return
        repo: ArtifactRepository = self._context.repo_for(artifact_uri)
        repo.delete_artifacts()
        root = getattr(repo, "root", None)
        if isinstance(root, Path):
            _remove_empty_owner_dir(root, owner_id)

    def prune_experiment_dir(self, artifact_location: str | None) -> None:
        """Remove a local experiment folder left empty (``<location>/models/`` too)."""
        if not artifact_location:
            return
        root = getattr(self._context.repo_for(artifact_location), "root", None)
        if isinstance(root, Path):
            for folder in (root / "models", root):
                with contextlib.suppress(OSError):  # not empty, or not there: leave it
                    folder.rmdir()


def _remove_empty_owner_dir(root: Path, owner_id: str) -> None:
    """``<experiment>/<run_id>/artifacts`` leaves ``<run_id>/`` behind; remove it if empty."""
    parent = root.parent
    if root.name == "artifacts" and parent.name == owner_id:
        # Not empty (someone else's files) or already gone: leave it.
        with contextlib.suppress(OSError):
            parent.rmdir()


# -- the collection ---------------------------------------------------------------------------
@dataclass
class GcOutcome:
    """Ids removed by kind (``runs``, ``logged_models``, ``experiments``) and what was kept."""

    removed: dict[str, list[str]] = field(
        default_factory=lambda: {"runs": [], "logged_models": [], "experiments": []}
    )
    failed: list[dict[str, str]] = field(default_factory=list)


_LABELS = {"runs": "Run", "logged_models": "Logged model", "experiments": "Experiment"}


def _collect(
    kind: str,
    items: Iterable[tuple[str, str | None]],
    remove_rows: Callable[[str], Any],
    artifacts: _Artifacts,
    outcome: GcOutcome,
    echo: bool,
) -> None:
    for object_id, artifact_uri in items:
        try:
            artifacts.delete(artifact_uri, object_id)
            remove_rows(object_id)
        except (RunyardError, OSError) as exc:
            # Rows stay (still soft-deleted) so the next gc retries this object.
            message = exc.message if isinstance(exc, RunyardError) else str(exc)
            outcome.failed.append({"kind": kind, "id": object_id, "error": message})
            continue
        outcome.removed[kind].append(object_id)
        if echo:
            click.echo(f"{_LABELS[kind]} with ID {object_id} has been permanently deleted.")


def run_gc(
    store: SqlTrackingStore, plan: GcPlan, artifacts_destination: str, echo: bool = False
) -> GcOutcome:
    """Remove what ``plan`` names: each object's artifacts, then its rows."""
    artifacts = _Artifacts(artifacts_destination)
    outcome = GcOutcome()
    _collect(
        "runs",
        ((r.run_id, r.artifact_uri) for r in plan.runs),
        store.hard_delete_run,
        artifacts,
        outcome,
        echo,
    )
    _collect(
        "logged_models",
        ((m.model_id, m.artifact_location) for m in plan.logged_models),
        store.hard_delete_logged_model,
        artifacts,
        outcome,
        echo,
    )
    blocked = {f["id"] for f in outcome.failed}
    experiments = []
    for experiment in plan.experiments:
        runs_left = [r.run_id for r in plan.runs if r.experiment_id == experiment.experiment_id]
        models_left = [
            m.model_id for m in plan.logged_models if m.experiment_id == experiment.experiment_id
        ]
        if blocked.intersection(runs_left + models_left):
            outcome.failed.append(
                {
                    "kind": "experiments",
                    "id": experiment.experiment_id,
                    "error": "some of its runs or logged models could not be removed",
                }
            )
        else:
            experiments.append((experiment.experiment_id, None))
    _collect("experiments", experiments, store.hard_delete_experiment, artifacts, outcome, echo)
    removed = set(outcome.removed["experiments"])
    for experiment in plan.experiments:
        if experiment.experiment_id in removed:
            with contextlib.suppress(RunyardError):  # an unreachable scheme: nothing to prune
                artifacts.prune_experiment_dir(experiment.artifact_location)
    return outcome


# -- the command ------------------------------------------------------------------------------
def _backend_uri(option: str | None) -> str:
    from runyard.tracking.registry import resolve_tracking_uri

    uri = option or ENV.BACKEND_STORE_URI.get() or ENV.TRACKING_URI.get() or DEFAULT_BACKEND
    uri = resolve_tracking_uri(uri)
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise InvalidParameterValue(
            f"runyard gc works on the tracking database itself, not on '{uri}'. Pass "
            "--backend-store-uri with the server's database, e.g. postgresql://user@host/db."
        )
    return uri


def _destination(option: str | None) -> str:
    value = option or ENV.ARTIFACTS_DESTINATION.get() or "runyard-artifacts"
    scheme = urlparse(value).scheme
    return os.path.abspath(value) if len(scheme) <= 1 else value


def _open_store(uri: str) -> SqlTrackingStore:
    from runyard.store.sql.store import SqlTrackingStore

    root = ENV.ARTIFACT_ROOT.get() or os.path.abspath("runyard-artifacts")
    scheme = urlparse(uri).scheme.split("+")[0]
    return SqlTrackingStore(uri, root, auto_upgrade=scheme == "sqlite")


def _plan_ids(plan: GcPlan) -> dict[str, list[str]]:
    return {
        "runs": [r.run_id for r in plan.runs],
        "logged_models": [m.model_id for m in plan.logged_models],
        "experiments": [e.experiment_id for e in plan.experiments],
    }


def _summary(ids: dict[str, list[str]], verb: str) -> str:
    def count(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return (
        f"{verb} {count(len(ids['runs']), 'run')}, "
        f"{count(len(ids['logged_models']), 'logged model')}, "
        f"{count(len(ids['experiments']), 'experiment')}."
    )


def _report(
    ids: dict[str, list[str]], failed: list[dict[str, str]], dry_run: bool, fmt: str
) -> None:
    from runyard.cli.output import echo_json

    if fmt == "json":
        echo_json(
            {
                "dry_run": dry_run,
                "counts": {kind: len(values) for kind, values in ids.items()},
                **ids,
                "failed": failed,
            }
        )
        return
    if dry_run:
        for kind, values in ids.items():
            for object_id in values:
                click.echo(f"Would permanently delete {_LABELS[kind].lower()} {object_id}.")
    click.echo(_summary(ids, "Would remove" if dry_run else "Removed"))
    for failure in failed:
        label = _LABELS[failure["kind"]]
        click.echo(f"Kept {label.lower()} {failure['id']}: {failure['error']}", err=True)


@click.command("gc", short_help="Permanently delete runs in the `deleted` lifecycle stage.")
@click.option(
    "--older-than",
    default=None,
    help="Only remove what was deleted longer ago than this: #d#h#m#s, decimals allowed "
    "(e.g. 30d, 1d2h3m4s, 1.5h). Default: everything deleted.",
)
@click.option(
    "--backend-store-uri",
    metavar="URI",
    default=None,
    help="The tracking database: sqlite:///path.db or postgresql://user:pw@host/db. Default: "
    "RUNYARD_BACKEND_STORE_URI/MLFLOW_BACKEND_STORE_URI, else the tracking URI, else "
    "sqlite:///runyard.db.",
)
@click.option(
    "--artifacts-destination",
    metavar="URI",
    default=None,
    help="Where the server stores proxied (mlflow-artifacts:) artifacts, as given to "
    "'runyard server --artifacts-destination' (e.g. s3://bucket/prefix). Default: "
    "RUNYARD_ARTIFACTS_DESTINATION/MLFLOW_ARTIFACTS_DESTINATION, else ./runyard-artifacts.",
)
@click.option(
    "--run-ids",
    default=None,
    help="Comma-separated ids of deleted runs to remove (only these, plus any other ids given).",
)
@click.option(
    "--experiment-ids",
    default=None,
    help="Comma-separated ids of deleted experiments to remove with all their runs and "
    "logged models.",
)
@click.option(
    "--logged-model-ids",
    default=None,
    help="Comma-separated ids of deleted logged models to remove.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed; change nothing.")
@click.option(
    "--output",
    type=click.Choice(["table", "json"], case_sensitive=False),
    default="table",
    show_default=True,
    help="'table' prints a line per removed object and a summary; 'json' one report for scripts.",
)
def gc(
    older_than: str | None,
    backend_store_uri: str | None,
    artifacts_destination: str | None,
    run_ids: str | None,
    experiment_ids: str | None,
    logged_model_ids: str | None,
    dry_run: bool,
    output: str,
) -> None:
    """Permanently delete runs, experiments and logged models in the `deleted` lifecycle stage,
    with their artifacts.

    Without ids, everything deleted (longer ago than --older-than) is removed. With
    --run-ids, --experiment-ids or --logged-model-ids, only those are, and each must be deleted
    (and old enough). Artifacts go first, then the database rows, object by object: if gc is
    interrupted or an artifact store is unreachable, run it again to finish. Removing an
    experiment frees its name for a new experiment.

    \b
    Example:
        runyard gc --older-than 30d --backend-store-uri postgresql://runyard@db/runyard \\
            --artifacts-destination s3://bucket/artifacts
        runyard gc --run-ids 3f2a...,9b1c... --dry-run
    """
    parsed = {
        "run_ids": _split_ids(run_ids),
        "experiment_ids": _split_ids(experiment_ids),
        "logged_model_ids": _split_ids(logged_model_ids),
    }
    if older_than is not None:
        parse_older_than(older_than)  # a typo is an error before the database is opened
    store = _open_store(_backend_uri(backend_store_uri))
    try:
        plan = plan_gc(store, older_than, **parsed)
        fmt = output.lower()
        if dry_run:
            _report(_plan_ids(plan), [], True, fmt)
            return
        outcome = run_gc(store, plan, _destination(artifacts_destination), echo=fmt == "table")
    finally:
        store.close()
    _report(outcome.removed, outcome.failed, False, fmt)
    if outcome.failed:
        raise click.ClickException(
            f"{len(outcome.failed)} object(s) could not be removed and were kept; "
            "fix the cause and run 'runyard gc' again."
        )
