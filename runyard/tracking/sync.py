"""What ``runyard sync`` does: replay spools, push offline runs to a tracking server.

* :func:`sync_spool` replays one spool file (values a process could not send in time, and the
  ends of its runs) to the tracking URI recorded in it, or another one. A spool still locked by
  its live process is left to it. A replay resumes where an interrupted one stopped, and a spool
  fully replayed is deleted.
* :class:`OfflinePush` pushes runs of an offline store (``RUNYARD_OFFLINE=1``) to a server
  through ``POST /api/2.0/runyard/runs/import``, which keeps their ids, times, steps and
  timestamps, then uploads their artifacts through the server's artifact API (files already
  there with the same size are skipped). A run pushed whole is remembered with a fingerprint in
  ``synced.json`` beside the store, so syncing again sends nothing until the run changes.

Both are idempotent: sending something twice leaves the server as sending it once would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import orjson

from runyard.entities import Run, ViewType
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.protocol.codec import dataset_input_to_json, metric_to_json
from runyard.store.artifact import get_artifact_repository
from runyard.store.base import TrackingStore
from runyard.store.http_session import HttpConfig, HttpSession
from runyard.store.sql.store import SqlTrackingStore, default_artifact_root_for
from runyard.tracking.offline import OFFLINE_DB, offline_dir
from runyard.tracking.spool import (
    ReplayReport,
    locked_spool,
    read_header,
    read_records,
    remove_spool,
    replay_spool,
    save_position,
    start_offset,
)

__all__ = [
    "IMPORT_CHUNK",
    "OfflinePush",
    "RunPush",
    "SpoolSync",
    "default_offline_store",
    "open_store",
    "sync_spool",
]

#: Metric points per import request (well under the server's 50,000 and its body limit).
IMPORT_CHUNK = 20_000
_PARAMS_CHUNK = 5_000
_STATE_FILE = "synced.json"


def _quick_config() -> HttpConfig:
    """HTTP settings for sync: a server that is down is reported in seconds, not minutes."""
    config = HttpConfig.from_env()
    return dataclasses.replace(
        config,
        max_retries=min(config.max_retries, 2),
        backoff_factor=min(config.backoff_factor, 0.5),
        backoff_jitter=min(config.backoff_jitter, 0.5),
    )


def open_store(uri: str) -> TrackingStore:
    """A store for a URI recorded in a spool (or given with ``--to``)."""
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme in ("http", "https"):
        from runyard.store.rest import RestStore

        return RestStore(uri, _quick_config())
    if scheme in ("sqlite", "postgresql", "postgres"):
        return SqlTrackingStore(uri, default_artifact_root_for(), auto_upgrade=scheme == "sqlite")
    raise InvalidParameterValue(f"Unsupported tracking URI '{uri}' (http(s)://, sqlite://...).")


def _close(store: Any) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


# -- spools ------------------------------------------------------------------------------------
@dataclass
class SpoolSync:
    """What happened to one spool file."""

    path: Path
    tracking_uri: str
    #: "sent", "would send" (dry run), "in use" (its process still runs) or "failed".
    outcome: str
    report: ReplayReport = field(default_factory=ReplayReport)
    error: str | None = None


def _count(path: Path, start: int) -> ReplayReport:
    report = ReplayReport(offset=start)
    for offset, record in read_records(path, start):
        report.add(record)
        report.offset = offset
    return report


def sync_spool(path: Path, to: str | None = None, dry_run: bool = False) -> SpoolSync:
    """Replay one spool to the URI recorded in it (or ``to``); delete it once sent whole."""
    header = read_header(path)
    uri = to or header.tracking_uri
    with locked_spool(path) as ours:
        if not ours:
            return SpoolSync(path, uri, "in use")
        start = start_offset(path)
        if dry_run:
            return SpoolSync(path, uri, "would send", _count(path, start))
        report = ReplayReport()
        store = open_store(uri)
        try:
            replay_spool(path, store, start, lambda offset: save_position(path, offset), report)
        except RunyardError as exc:
            return SpoolSync(path, uri, "failed", report, " ".join(exc.message.split()))
        finally:
            _close(store)
        remove_spool(path)
    return SpoolSync(path, uri, "sent", report)


# -- offline runs ------------------------------------------------------------------------------
def default_offline_store() -> Path | None:
    """The offline store of ``RUNYARD_OFFLINE_DIR`` when it exists."""
    db = offline_dir() / OFFLINE_DB
    return db if db.is_file() else None


def _source_db(source: str) -> Path:
    """``--from``: an offline directory, a ``.db`` file or a ``sqlite:///`` URI."""
    text = source[len("sqlite:///") :] if source.startswith("sqlite:///") else source
    path = Path(os.path.expanduser(text)).absolute()
    if path.is_dir():
        path = path / OFFLINE_DB
    if not path.is_file():
        raise ResourceDoesNotExist(f"No offline store at {path} (expected {OFFLINE_DB}).")
    return path


def _runyard_api(url: str) -> str:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidParameterValue(f"--to needs an http(s):// server URL, got '{url}'.")
    path = parsed.path.rstrip("/")
    return str(parsed.copy_with(path=f"{path}/api/2.0/runyard/", query=None, fragment=None))


@dataclass
class RunPush:
    """What happened to one offline run."""

    run_id: str
    run_name: str
    experiment_name: str
    status: str
    points: int = 0
    params: int = 0
    tags: int = 0
    files: int = 0
    #: "sent", "would send" (dry run), "up to date" (sent before, unchanged) or "failed".
    outcome: str = ""
    error: str | None = None


class OfflinePush:
    """Pushes the runs of an offline store to a tracking server, keeping ids and times.

    Args:
        source: the offline directory, its ``runyard.db`` or a ``sqlite:///`` URI.
        target: the server's base URL, ``http(s)://host:port[/prefix]``.
    """

    def __init__(self, source: str, target: str) -> None:
        self.db = _source_db(source)
        self.target = target.rstrip("/")
        self._api = HttpSession(_runyard_api(self.target), _quick_config())
        self.store = SqlTrackingStore(
            f"sqlite:///{self.db}", str(self.db.parent / "artifacts"), auto_upgrade=True
        )
        self._state_path = self.db.parent / _STATE_FILE
        self._experiments: dict[str, str] = {}

    def close(self) -> None:
        """Close the store and the connections."""
        self.store.close()
        self._api.close()

    # -- what to push --------------------------------------------------------------------------
    def runs(self, experiment_names: Sequence[str] = (), run_ids: Sequence[str] = ()) -> list[Run]:
        """The offline runs (deleted ones too), oldest first, optionally only some."""
        experiments = self.store.search_experiments(ViewType.ALL, 50_000)
        wanted = set(experiment_names)
        unknown = wanted - {e.name for e in experiments}
        if unknown:
            raise ResourceDoesNotExist(
                f"The offline store has no experiment named {', '.join(sorted(unknown))}."
            )
        ids = [e.experiment_id for e in experiments if not wanted or e.name in wanted]
        self._experiments = {e.experiment_id: e.name for e in experiments}
        found: list[Run] = []
        token = None
        while ids:
            page = self.store.search_runs(
                ids, None, ViewType.ALL, 50_000, ["attributes.start_time ASC"], token
            )
            found.extend(page)
            token = page.token
            if not token:
                break
        if run_ids:
            missing = set(run_ids) - {r.info.run_id for r in found}
            if missing:
                raise ResourceDoesNotExist(
                    f"The offline store has no run {', '.join(sorted(missing))}."
                )
            found = [r for r in found if r.info.run_id in set(run_ids)]
        return found

    # -- pushing -------------------------------------------------------------------------------
    def push(self, run: Run, dry_run: bool = False) -> RunPush:
        """Send one run (info, params, tags, inputs, every metric point, artifacts)."""
        info = run.info
        result = RunPush(
            info.run_id,
            info.run_name,
            self._experiments.get(info.experiment_id, info.experiment_id),
            info.status,
            sum(s.count for s in self.store.get_metric_summaries(info.run_id)),
            len(run.data.params),
            len(run.data.tags),
            len(list(self._local_files(run))),
        )
        fingerprint = self._fingerprint(run)
        if self._synced().get(info.run_id) == fingerprint:
            result.outcome = "up to date"
            return result
        if dry_run:
            result.outcome = "would send"
            return result
        try:
            artifact_uri = self._import(run, result.experiment_name)
            self._upload_artifacts(run, artifact_uri)
        except RunyardError as exc:
            result.outcome, result.error = "failed", " ".join(exc.message.split())
            return result
        self._remember(info.run_id, fingerprint)
        result.outcome = "sent"
        return result

    def _import(self, run: Run, experiment_name: str) -> str:
        info = run.info
        points = [
            metric_to_json(m)
            for key in sorted(run.data.metrics)
            for m in self.store.get_metric_history(info.run_id, key)
        ]
        params = [{"key": k, "value": v} for k, v in run.data.params.items()]
        tags = [{"key": k, "value": v} for k, v in run.data.tags.items()]
        base: dict[str, Any] = {
            "experiment_name": experiment_name,
            "run_id": info.run_id,
            "run_name": info.run_name,
            "user_id": info.user_id,
            "status": info.status,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "lifecycle_stage": info.lifecycle_stage,
        }
        datasets = [dataset_input_to_json(d) for d in run.inputs.dataset_inputs]
        artifact_uri = ""
        first = True
        while first or points or params or tags:
            body = {
                **base,
                "params": params[:_PARAMS_CHUNK],
                "tags": tags[:_PARAMS_CHUNK],
                "metrics": points[:IMPORT_CHUNK],
                "datasets": datasets if first else [],
            }
            params, tags = params[_PARAMS_CHUNK:], tags[_PARAMS_CHUNK:]
            points = points[IMPORT_CHUNK:]
            doc = self._api.call("POST", "runs/import", body=body, idempotent=True)
            artifact_uri = str(doc.get("run_info", {}).get("artifact_uri", ""))
            first = False
        return artifact_uri

    def _local_files(self, run: Run) -> Iterator[tuple[Path, str]]:
        root = _local_dir(run.info.artifact_uri)
        if root is None or not root.is_dir():
            return
        for folder, _dirs, files in os.walk(root):
            for name in sorted(files):
                full = Path(folder) / name
                yield full, full.relative_to(root).as_posix()

    def _upload_artifacts(self, run: Run, artifact_uri: str) -> None:
        files = list(self._local_files(run))
        if not files or not artifact_uri:
            return
        repo = get_artifact_repository(artifact_uri, self.target)
        listed: dict[str, dict[str, int | None]] = {}
        for full, rel in files:
            folder = rel.rpartition("/")[0]
            if folder not in listed:
                try:
                    infos = repo.list_artifacts(folder or None)
                except ResourceDoesNotExist:
                    infos = []
                listed[folder] = {i.path: i.file_size for i in infos if not i.is_dir}
            if listed[folder].get(rel) == full.stat().st_size:
                continue  # sent by an earlier sync
            repo.log_artifact(str(full), folder or None)

    # -- what was pushed -----------------------------------------------------------------------
    def _fingerprint(self, run: Run) -> str:
        info = run.info
        summaries = [
            (s.key, s.count, s.latest_step, s.latest_timestamp)
            for s in self.store.get_metric_summaries(info.run_id)
        ]
        files = [(rel, full.stat().st_size) for full, rel in self._local_files(run)]
        doc = [
            info.status,
            info.end_time,
            info.lifecycle_stage,
            info.run_name,
            sorted(run.data.params.items()),
            sorted(run.data.tags.items()),
            summaries,
            len(run.inputs.dataset_inputs),
            files,
        ]
        return hashlib.sha256(orjson.dumps(doc)).hexdigest()

    def _synced(self) -> dict[str, str]:
        try:
            state = json.loads(self._state_path.read_text())
        except (OSError, ValueError):
            return {}
        runs = state.get(self.target, {}) if isinstance(state, dict) else {}
        return runs if isinstance(runs, dict) else {}

    def _remember(self, run_id: str, fingerprint: str) -> None:
        try:
            state = json.loads(self._state_path.read_text())
        except (OSError, ValueError):
            state = {}
        state.setdefault(self.target, {})[run_id] = fingerprint
        tmp = self._state_path.with_name(self._state_path.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        os.replace(tmp, self._state_path)


def _local_dir(artifact_uri: str) -> Path | None:
    """The directory of a local artifact URI (a path or ``file://``); None for remote ones."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:
        return None
    return Path(artifact_uri)
