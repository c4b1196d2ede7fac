"""The spool: logged values that wait on disk while the tracking server is unreachable.

The background writer (:mod:`runyard.tracking.writer`) moves values here when the server stays
away too long or too much piles up in memory, and ``end_run`` leaves here what it could not send
in time, with the run's end. The writer replays its spool when the server answers again;
``runyard sync`` replays the spools of processes that ended first.

A spool file belongs to one process and one tracking URI (``<time>-<host>-<pid>-<hex>.spool``)
and is only ever appended to. Each line is one record, written whole::

    <crc32 of the JSON, 8 hex digits> <one JSON object>\\n

The first record names the tracking URI; the others are batches (``log_batch`` of one run: metric
points, params, tags) and run ends (status, end time), in the order they were logged. A crash can
only tear the last line: a last line without its newline or whose checksum does not match is
ignored. Every append is fsync'd. The owner holds an exclusive ``flock`` on the file while it is
open, so ``runyard sync`` never replays a spool that a live process is still writing. Replays
record how far they got in a ``.pos`` file beside the spool, so an interrupted replay resumes;
replaying a record twice is harmless (the server stores an identical metric point once, accepts a
param logged again with the same value, and tags are upserts).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runyard.config import ENV
from runyard.entities import Metric, Param, RunTag
from runyard.errors import RunyardError
from runyard.protocol.codec import parse_double, wire_double
from runyard.store.base import TrackingStore

try:  # POSIX; elsewhere spools are not locked (a running process's spool could be replayed)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "SPOOL_SUFFIX",
    "TRANSIENT_ERRORS",
    "ReplayReport",
    "SpoolHeader",
    "SpoolRecord",
    "SpoolWriter",
    "is_transient",
    "list_spools",
    "locked_spool",
    "read_header",
    "read_records",
    "remove_spool",
    "replay_spool",
    "save_position",
    "send_record",
    "spool_dir",
    "start_offset",
    "sync_command",
    "write_batch",
]

log = logging.getLogger(__name__)

SPOOL_SUFFIX = ".spool"
_VERSION = 1
_POS_SUFFIX = ".pos"

#: Error codes that mean "try again later": values stay queued (or spooled) instead of being
#: reported. Connection errors and timeouts of the HTTP client come as TEMPORARILY_UNAVAILABLE
#: and DEADLINE_EXCEEDED, 429 as REQUEST_LIMIT_EXCEEDED, a gateway's 502/503/504 likewise.
TRANSIENT_ERRORS = frozenset(
    {"TEMPORARILY_UNAVAILABLE", "UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED"}
)


def is_transient(exc: RunyardError) -> bool:
    """True when ``exc`` says the store is unreachable or busy for now."""
    return exc.error_code in TRANSIENT_ERRORS


def spool_dir() -> Path:
    """The spool directory (``RUNYARD_SPOOL_DIR``, default ``~/.runyard/spool``)."""
    return Path(os.path.expanduser(ENV.SPOOL_DIR.get())).absolute()


def sync_command(directory: Path) -> str:
    """The exact command that uploads the spools of ``directory`` (from any shell: a directory
    set with ``RUNYARD_SPOOL_DIR`` is named, since the shell may not have the variable)."""
    if directory == Path(os.path.expanduser(ENV.SPOOL_DIR.default)).absolute():
        return "runyard sync"
    return f"runyard sync --spool-dir '{directory}'"


# -- records -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpoolRecord:
    """One spooled operation: a batch of values of one run, or the end of a run."""

    run_id: str
    metrics: tuple[Metric, ...] = ()
    params: tuple[Param, ...] = ()
    tags: tuple[RunTag, ...] = ()
    #: Set for the end of a run (``set_terminated``): its terminal status and end time.
    status: str | None = None
    end_time: int | None = None

    @property
    def values(self) -> int:
        """How many metric points, params and tags the record holds."""
        return len(self.metrics) + len(self.params) + len(self.tags)

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object (NaN and ±Inf as MLflow's strings)."""
        if self.status is not None:
            return {"t": "end", "run": self.run_id, "status": self.status, "end": self.end_time}
        doc: dict[str, Any] = {"t": "batch", "run": self.run_id}
        if self.metrics:
            doc["m"] = [_metric_row(m) for m in self.metrics]
        if self.params:
            doc["p"] = [[p.key, p.value] for p in self.params]
        if self.tags:
            doc["g"] = [[g.key, g.value] for g in self.tags]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SpoolRecord:
        """A record from :meth:`to_json`'s object."""
        run_id = str(doc["run"])
        if doc["t"] == "end":
            end = doc.get("end")
            return cls(run_id, status=str(doc["status"]), end_time=None if end is None else end)
        return cls(
            run_id,
            tuple(_metric_from_row(row) for row in doc.get("m", ())),
            tuple(Param(k, v) for k, v in doc.get("p", ())),
            tuple(RunTag(k, v) for k, v in doc.get("g", ())),
        )


def _metric_row(m: Metric) -> list[Any]:
    row: list[Any] = [m.key, wire_double(m.value), m.timestamp, m.step]
    if m.model_id is not None or m.dataset_name is not None or m.dataset_digest is not None:
        row += [m.model_id, m.dataset_name, m.dataset_digest]
    return row


def _metric_from_row(row: list[Any]) -> Metric:
    key, value, timestamp, step, *extra = row
    if extra:
        return Metric(key, parse_double(value), timestamp, step, None, *extra)
    return Metric(key, parse_double(value), timestamp, step)


def _line(doc: dict[str, Any]) -> bytes:
    import orjson  # here: `import runyard` must work with only MLflow's dependencies (pyfunc)

    payload = orjson.dumps(doc)
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def _parse_line(line: bytes) -> dict[str, Any] | None:
    """The object of a whole, intact line; None for a torn or damaged one."""
    if len(line) < 10 or not line.endswith(b"\n") or line[8:9] != b" ":
        return None
    import orjson

    payload = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(payload):
            return None
        doc = orjson.loads(payload)
    except ValueError:  # orjson.JSONDecodeError is one
        return None
    return doc if isinstance(doc, dict) else None


# -- reading -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpoolHeader:
    """What the first record of a spool says about it."""

    path: Path
    tracking_uri: str
    pid: int
    host: str
    created: int
    #: Byte offset where the first operation record starts.
    start: int


def read_header(path: Path) -> SpoolHeader:
    """The header of a spool file; INVALID_STATE when it has none (not a spool, or torn)."""
    with open(path, "rb") as handle:
        first = handle.readline()
    doc = _parse_line(first)
    if doc is None or doc.get("t") != "header" or not doc.get("uri"):
        raise RunyardError(f"{path} is not a runyard spool file.", error_code="INVALID_STATE")
    return SpoolHeader(
        path,
        str(doc["uri"]),
        int(doc.get("pid", 0)),
        str(doc.get("host", "")),
        int(doc.get("created", 0)),
        len(first),
    )


def read_records(path: Path, start: int) -> Iterator[tuple[int, SpoolRecord]]:
    """``(offset after the record, record)`` from byte ``start`` on, in order.

    A torn last line ends the iteration quietly; a damaged line with whole records after it
    (which appends never leave) is skipped with a warning.
    """
    with open(path, "rb") as handle:
        handle.seek(start)
        offset = start
        line = handle.readline()
        while line:
            following = handle.readline()
            offset += len(line)
            doc = _parse_line(line)
            if doc is not None:
                if doc.get("t") in ("batch", "end"):
                    yield offset, SpoolRecord.from_json(doc)
                elif doc.get("t") != "header":
                    log.warning("runyard: skipping an unknown record in %s: %s", path, doc.get("t"))
            elif not following:
                return  # a torn last line: the write it belonged to never finished
            else:
                log.warning("runyard: skipping a damaged record in %s at byte %d", path, offset)
            line = following


def list_spools(directory: Path) -> list[Path]:
    """The spool files of ``directory``, oldest first (names start with their creation time)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.endswith(SPOOL_SUFFIX) and p.is_file())


def _spool_bytes(directory: Path) -> int:
    total = 0
    for path in list_spools(directory):
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    return total


def _read_pos(path: Path) -> int:
    try:
        return int(Path(str(path) + _POS_SUFFIX).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def save_position(path: Path, offset: int) -> None:
    """Record that a replay of ``path`` got as far as byte ``offset`` (atomically)."""
    pos = Path(str(path) + _POS_SUFFIX)
    tmp = pos.with_name(pos.name + ".tmp")
    tmp.write_text(str(offset))
    os.replace(tmp, pos)


def remove_spool(path: Path) -> None:
    """Delete a spool and its progress file (after a complete replay)."""
    for name in (str(path) + _POS_SUFFIX, str(path)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


@contextlib.contextmanager
def locked_spool(path: Path) -> Iterator[bool]:
    """Hold the spool's lock for a replay; yields False when a live process holds it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
        yield True
    finally:
        os.close(fd)


# -- writing -----------------------------------------------------------------------------------
class SpoolWriter:
    """One process's spool for one tracking URI: append-only, fsync'd, locked while open.

    Args:
        directory: the spool directory (created if missing).
        tracking_uri: where the records go when replayed.
        max_bytes: the most bytes all spools of ``directory`` may take together.
    """

    def __init__(self, directory: Path, tracking_uri: str, max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        host = socket.gethostname().split(".")[0] or "host"
        name = f"{stamp}-{host}-{os.getpid()}-{secrets.token_hex(3)}{SPOOL_SUFFIX}"
        self.directory = directory
        self.path = directory / name
        self.tracking_uri = tracking_uri
        self.max_bytes = max_bytes
        # 0o600: values and tags can be private; the spool lives in the user's home.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        header = {
            "t": "header",
            "v": _VERSION,
            "uri": tracking_uri,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "created": int(time.time() * 1000),
        }
        data = _line(header)
        self.size = 0
        self._write(data)
        self.start = self.size
        #: Offset up to which records were replayed (the writer's own replays).
        self.replayed = self.size

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, view[written:])
            os.fsync(self._fd)
        except OSError:
            # A full disk: cut the partial record off so the file stays whole records.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)
            raise
        self.size += len(data)

    def append(self, records: Sequence[SpoolRecord]) -> bool:
        """Append records durably; False (nothing written) when the size limit or the disk
        does not allow it."""
        data = b"".join(_line(r.to_json()) for r in records)
        if not data:
            return True
        others = _spool_bytes(self.directory) - self.size
        if others + self.size + len(data) > self.max_bytes:
            return False
        try:
            self._write(data)
        except OSError as exc:
            log.warning("runyard: could not write the spool %s: %s", self.path, exc)
            return False
        return True

    @property
    def pending(self) -> bool:
        """True while records wait to be replayed."""
        return self.replayed < self.size

    def mark_replayed(self, offset: int) -> None:
        """Remember that records up to ``offset`` reached the server."""
        self.replayed = offset
        save_position(self.path, offset)

    def discard(self) -> None:
        """Delete the (fully replayed) spool and release its lock."""
        remove_spool(self.path)
        self.close()

    def close(self) -> None:
        """Release the lock and the descriptor (the file stays for ``runyard sync``)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


# -- replaying ---------------------------------------------------------------------------------
#: ``log_batch(run_id, metrics, params, tags)`` of a store.
BatchLogger = Callable[[str, Sequence[Metric], Sequence[Param], Sequence[RunTag]], None]


def write_batch(
    store: TrackingStore,
    run_id: str,
    metrics: Sequence[Metric],
    params: Sequence[Param],
    tags: Sequence[RunTag],
    errors: list[RunyardError],
    transient: Callable[[RunyardError], bool] = is_transient,
    log: BatchLogger | None = None,
) -> None:
    """``store.log_batch`` (or ``log``) that salvages what it can: a ``transient`` error is
    raised (nothing was written, the batch is one transaction); a refused batch is written again
    piece by piece, and what is still refused goes to ``errors``."""
    if log is None:
        log = store.log_batch
    try:
        log(run_id, metrics, params, tags)
        return
    except RunyardError as exc:
        if transient(exc):
            raise
        parts: list[tuple[Sequence[Metric], Sequence[Param], Sequence[RunTag]]] = [
            (metrics, [], []),
            *(([], [p], []) for p in params),
            ([], [], tags),
        ]
        parts = [part for part in parts if part[0] or part[1] or part[2]]
        if len(parts) == 1:
            errors.append(exc)
            return
    # One bad value must not sink the rest of the batch: write the parts separately.
    for part_metrics, part_params, part_tags in parts:
        try:
            log(run_id, part_metrics, part_params, part_tags)
        except RunyardError as exc:
            if transient(exc):
                raise
            errors.append(exc)


@dataclass
class RunReplay:
    """What a replay sent for one run."""

    metrics: int = 0
    params: int = 0
    tags: int = 0
    status: str | None = None


@dataclass
class ReplayReport:
    """The outcome of replaying (part of) a spool."""

    records: int = 0
    values: int = 0
    runs: dict[str, RunReplay] = field(default_factory=dict)
    #: Values or run ends the server refused for good (a deleted run, a changed param...).
    errors: list[RunyardError] = field(default_factory=list)
    #: Offset after the last record sent.
    offset: int = 0

    def add(self, record: SpoolRecord) -> None:
        """Count a record that was sent."""
        self.records += 1
        self.values += record.values
        run = self.runs.setdefault(record.run_id, RunReplay())
        run.metrics += len(record.metrics)
        run.params += len(record.params)
        run.tags += len(record.tags)
        if record.status is not None:
            run.status = record.status


def replay_spool(
    path: Path,
    store: TrackingStore,
    start: int,
    on_progress: Callable[[int], None] | None = None,
    report: ReplayReport | None = None,
    transient: Callable[[RunyardError], bool] = is_transient,
) -> ReplayReport:
    """Send the records of a spool from byte ``start`` on to ``store``, in order.

    A transient error stops the replay and is raised, after ``on_progress`` learnt the offset of
    the last record sent; refused values are collected in the report and skipped.
    """
    report = report or ReplayReport()
    report.offset = start
    last_saved = time.monotonic()
    try:
        for offset, record in read_records(path, start):
            send_record(store, record, report.errors, transient)
            report.add(record)
            report.offset = offset
            if on_progress is not None and time.monotonic() - last_saved > 0.5:
                on_progress(offset)
                last_saved = time.monotonic()
    finally:
        if on_progress is not None and report.offset != start:
            on_progress(report.offset)
    return report


def send_record(
    store: TrackingStore,
    record: SpoolRecord,
    errors: list[RunyardError],
    transient: Callable[[RunyardError], bool] = is_transient,
) -> None:
    """Apply one record to ``store``; refused values go to ``errors``, transient errors raise."""
    if record.status is None:
        m, p, g = record.metrics, record.params, record.tags
        write_batch(store, record.run_id, m, p, g, errors, transient)
        return
    try:
        store.update_run_info(record.run_id, record.status, record.end_time, None)
    except RunyardError as exc:
        if transient(exc):
            raise
        errors.append(exc)


def start_offset(path: Path) -> int:
    """Where a replay of ``path`` resumes: after the header, or where the last one stopped."""
    header = read_header(path)
    return max(header.start, _read_pos(path))
