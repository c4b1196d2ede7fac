"""The background writer: ``log_*`` calls enqueue, a daemon thread writes batches.

Training code pays a list append per call. Every ``flush_interval`` seconds (or as soon as the
queue is long) a daemon thread turns the queue into ``log_batch`` calls, in order, at most
MLflow's batch limits each. ``flush()`` does the same work in the caller's thread and is what
reads, ``runyard.flush()``, interpreter exit and SIGTERM call, so nothing waits on a thread
hand-off and nothing is dropped. A batch that the store refuses is retried piece by piece so the
good values still land; the first error is raised by the next ``flush()``.

Outages (docs/reliability.md). A transient error (connection refused or reset, a timeout, 429,
a gateway's 502/503/504, a locked or restarting database) leaves the values queued; the thread
tries again with capped exponential backoff, not every tick, and logs one warning a minute with
what is pending. Values never leave the queue before they are written: a batch is taken off only
once the store accepted it. When the store stays away longer than ``RUNYARD_SPOOL_AFTER`` seconds
or too much piles up in memory, the queue moves to an append-only spool file
(:mod:`runyard.tracking.spool`); when the store answers again the spool is replayed in order, then
the queue. Replays are idempotent: the server stores an identical metric point once, accepts a
param logged again with the same value, and tags are upserts. ``end_run`` waits at most
``RUNYARD_END_RUN_TIMEOUT`` seconds for an unreachable server, then leaves the rest and the run's
end in the spool for ``runyard sync``.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from runyard.config import ENV
from runyard.entities import Metric, Param, RunTag
from runyard.entities.run import new_metric
from runyard.errors import RunyardError
from runyard.store.base import GroupWriter, TrackingStore
from runyard.tracking.spool import (
    TRANSIENT_ERRORS,
    SpoolRecord,
    SpoolWriter,
    is_transient,
    replay_spool,
    spool_dir,
    sync_command,
    write_batch,
)

__all__ = ["TRANSIENT_ERRORS", "AsyncWriter", "flush_all"]

log = logging.getLogger(__name__)

_METRIC, _PARAM, _TAG, _BATCH = 0, 1, 2, 3


@dataclasses.dataclass(frozen=True)
class _Limits:
    """How many values one store call may carry."""

    metrics: int
    params: int
    tags: int
    total: int


#: MLflow's log-batch limits: what one request may carry.
_REQUEST_LIMITS = _Limits(1000, 100, 100, 1000)
#: A :class:`GroupWriter` store's (a local database): several queued calls of a run per
#: transaction, so one commit and one summary/tile update per series cover ten times more.
_GROUP_LIMITS = _Limits(10_000, 10_000, 10_000, 10_000)
# Past this many queued values the producer wakes the thread instead of waiting for the tick.
_WAKE_AT = 20_000
# During an outage, past this many queued calls the queue moves to the spool however short the
# outage has been so far: memory stays bounded.
_SPILL_AT = 100_000
# Retries during an outage: 0.5 s, 1 s, 2 s... at most this many seconds apart (with jitter), so
# a server that comes back is used again within seconds, and many clients do not retry in step.
_BACKOFF_BASE, _BACKOFF_CAP = 0.5, 5.0
_WARN_EVERY = 60.0
_SPILL_EVERY = 1.0
# The writer's own HTTP requests: at most one quick retry (a stale keep-alive socket) and a
# bounded timeout, since the writer retries with its own backoff and must not sit for minutes
# in the HTTP client's retry loop while end_run waits.
_WRITE_TIMEOUT = 30.0
# A 500 without an MLflow error body is what a proxy answers while the server behind it
# restarts (and what MLflow's own server answers for a locked database): tried again this many
# times, with backoff, before it counts as a refusal.
_INTERNAL_RETRIES = 5

Item = tuple[Any, ...]

_all_writers: list[AsyncWriter] = []
_hooks_installed = False


class _Outage:
    """Since when the store is unreachable, how often it failed, when to try again."""

    def __init__(self, now: float) -> None:
        self.since = now
        self.attempts = 0
        self.next_try = now
        self.warned = -_WARN_EVERY
        self.reason = ""
        self.error: RunyardError | None = None


class AsyncWriter:
    """Queues values per run and writes them with ``store.log_batch``.

    Args:
        store_factory: returns the store to write to (called for every write pass).
        flush_interval: seconds between the thread's write passes.
        tracking_uri: the store's URI; with it, values outlive an outage in a spool file
            (without it, a writer only keeps them in memory).
    """

    def __init__(
        self,
        store_factory: Callable[[], TrackingStore],
        flush_interval: float,
        tracking_uri: str | None = None,
    ) -> None:
        self._store_factory = store_factory
        self._interval = max(0.01, flush_interval)
        self._uri = tracking_uri
        self._spool_after = ENV.SPOOL_AFTER.get()
        # Unwritten values, oldest first: ``_taken[_taken_pos:]`` (what a write pass is
        # working through) then ``_queue`` (what arrived since).
        self._queue: list[Item] = []
        self._taken: list[Item] = []
        self._taken_pos = 0
        # Bumped when unwritten values move to the spool behind a write pass's back.
        self._generation = 0
        self._queue_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._spool_lock = threading.Lock()
        self._spool: SpoolWriter | None = None
        self._spooled = 0
        self._uploaded = 0
        self._last_spill = 0.0
        # Spool size when a warning last named the `runyard sync` command (no repeats at exit).
        self._announced = 0
        self._outage: _Outage | None = None
        self._internal_errors = 0
        self._fast: tuple[TrackingStore, TrackingStore] | None = None
        self._wake = threading.Event()
        self._errors: list[RunyardError] = []
        self._thread: threading.Thread | None = None
        _all_writers.append(self)
        _install_exit_hooks()

    # -- producers (hot path) ---------------------------------------------------------------
    def add_metric(self, run_id: str, key: str, value: float, timestamp: int, step: int) -> None:
        """Queue one metric point (already validated)."""
        with self._queue_lock:
            self._queue.append((_METRIC, run_id, new_metric(key, value, timestamp, step, None)))
            size = len(self._queue)
        self._after_add(size)

    def add(
        self,
        run_id: str,
        metrics: list[Metric] | tuple[Metric, ...] = (),
        params: list[Param] | tuple[Param, ...] = (),
        tags: list[RunTag] | tuple[RunTag, ...] = (),
    ) -> None:
        """Queue validated metrics, params and tags of one run."""
        item = (_BATCH, run_id, (list(metrics), list(params), list(tags)))
        with self._queue_lock:
            self._queue.append(item)
            size = len(self._queue)
        self._after_add(size + len(metrics))

    def _after_add(self, size: int) -> None:
        if self._thread is None:
            self._start_thread()
        if size >= _WAKE_AT:
            self._wake.set()

    def _start_thread(self) -> None:
        with self._queue_lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._loop, name="runyard-writer", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 - the thread must survive to retry
                log.warning("runyard: background write failed: %s", exc)

    def _step(self) -> None:
        """One tick of the thread: spool during a long outage, write when the backoff allows."""
        now = time.monotonic()
        outage = self._outage
        if outage is not None:
            if self._should_spill(outage, now):
                self._spill()
            if now < outage.next_try:
                return
        if self._has_work():
            self._attempt(raise_transient=False)

    def close(self) -> None:
        """Drop anything still queued and stop taking part in exit/SIGTERM flushes (a spool
        file already written stays for ``runyard sync``)."""
        with self._queue_lock:
            self._queue, self._taken, self._taken_pos = [], [], 0
        self._errors = []
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        if self._fast is not None:
            _close_store(self._fast[1])
            self._fast = None
        if self in _all_writers:
            _all_writers.remove(self)

    # -- state ------------------------------------------------------------------------------
    def pending(self) -> int:
        """How many queued calls and spooled values wait to be written."""
        with self._queue_lock:
            queued = len(self._queue) + len(self._taken) - self._taken_pos
        return queued + self._spooled

    @property
    def spool_path(self) -> str | None:
        """The spool file holding values of this writer, if any."""
        spool = self._spool
        return None if spool is None else str(spool.path)

    def _has_work(self) -> bool:
        spool = self._spool
        return (
            bool(self._queue)
            or self._taken_pos < len(self._taken)
            or (spool is not None and spool.pending)
        )

    # -- consumers ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything now, in this thread; raise the first write error seen.

        A transient error is raised too (reads call this and cannot go on without the store);
        the values stay queued for the next try.
        """
        self._attempt(raise_transient=True)
        self.raise_errors()

    def try_flush(self) -> bool:
        """Write everything now; on a transient error keep the values (queued or spooled), log
        the outage warning and return False. Refused values raise, as with :meth:`flush`."""
        written = self._attempt(raise_transient=False)
        self.raise_errors()
        return written

    def raise_errors(self) -> None:
        """Raise the first error of values the store refused since the last call."""
        if self._errors:
            errors, self._errors = self._errors, []
            if len(errors) > 1:
                log.warning("runyard: %d logging errors; raising the first", len(errors))
            raise errors[0]

    def finish(self, timeout: float) -> bool:
        """Write everything, retrying with backoff for at most ``timeout`` seconds while the
        store is unreachable; then move what is left to the spool and return False.

        Refused values are kept for :meth:`raise_errors`. A writer without a spool raises the
        transient error when time is up.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        while not self._attempt(raise_transient=False):
            now = time.monotonic()
            outage = self._outage
            if now >= deadline:
                if self._uri is None and outage is not None and outage.error is not None:
                    raise outage.error
                self._spill()
                return False
            wait = deadline - now if outage is None else min(deadline, outage.next_try) - now
            time.sleep(max(0.01, wait))
        return True

    def terminate_run(self, run_id: str, status: str, end_time: int, timeout: float) -> bool:
        """Write the queue, then end the run; when the store stays unreachable for ``timeout``
        seconds, spool the rest and the run's end and return False (with a warning naming the
        ``runyard sync`` command). Raises only when the store refuses to end the run."""
        ended = self.finish(timeout)
        if ended:
            try:
                with self._flush_lock:
                    self._write_store().update_run_info(run_id, status, end_time, None)
            except RunyardError as exc:
                if not self._transient(exc) or self._uri is None:
                    raise
                self._failed(exc)
                ended = False
        if not ended:
            self._spool_end(run_id, status, end_time, timeout)
        return ended

    def flush_at_exit(self) -> None:
        """What interpreter exit and SIGTERM do: write what is queued, waiting for an unreachable
        store only when it was fine so far; what cannot be written stays in the spool."""
        outage = self._outage
        if outage is None or self._uri is None:
            written = self.finish(ENV.END_RUN_TIMEOUT.get())
        else:
            written = self._attempt(raise_transient=False)
            if not written:
                self._spill()
        spool = self._spool
        if not written and spool is not None and spool.size > self._announced:
            self._announced = spool.size
            log.warning(
                "runyard: %d logged values could not reach %s and wait in %s; upload them with: %s",
                self._spooled,
                self._uri,
                spool.path,
                sync_command(spool.directory),
            )
        self.raise_errors()

    # -- one write pass ----------------------------------------------------------------------
    def _attempt(self, raise_transient: bool) -> bool:
        """Replay the spool, then write the queue. True when everything was written; False
        (or the error, with ``raise_transient``) when the store is unreachable."""
        with self._flush_lock:
            if not self._has_work():
                return True
            try:
                store = self._write_store()
                self._replay(store)
                self._drain(store)
                # Values another thread moved to the spool while this pass wrote the queue.
                self._replay(store)
            except RunyardError as exc:
                if not self._transient(exc):
                    raise
                self._failed(exc)
                if raise_transient:
                    raise
                return False
            self._succeeded()
            return True

    def _write_store(self) -> TrackingStore:
        store = self._store_factory()
        uri = self._uri
        if uri is None or not uri.startswith(("http://", "https://")):
            return store
        if self._fast is None or self._fast[0] is not store:
            self._fast = (store, _fail_fast_rest_store(uri))
        return self._fast[1]

    def _drain(self, store: TrackingStore) -> None:
        # Twice at most: what a failed pass left, then what was queued meanwhile. Producers that
        # never stop must not keep a flush going forever.
        for _ in range(2):
            with self._queue_lock:
                if self._taken_pos >= len(self._taken):
                    if not self._queue:
                        return
                    self._taken, self._taken_pos, self._queue = self._queue, 0, []
                items, start, generation = self._taken, self._taken_pos, self._generation
            if isinstance(store, GroupWriter):
                log, limits = store.log_group, _GROUP_LIMITS
            else:
                log, limits = store.log_batch, _REQUEST_LIMITS
            for end, run_id, metrics, params, tags in _batches(items, start, limits):
                write_batch(
                    store, run_id, metrics, params, tags, self._errors, self._transient, log
                )
                with self._queue_lock:
                    if self._generation != generation:
                        return  # moved to the spool meanwhile (and replayed from there)
                    self._taken_pos = end

    def _replay(self, store: TrackingStore) -> None:
        spool = self._spool
        if spool is None:
            return
        if not spool.pending:
            # Opened, but what was to go in did not fit: nothing for `runyard sync` to do.
            with self._spool_lock:
                if not spool.pending and self._spool is spool:
                    spool.discard()
                    self._spool = None
            return
        report = replay_spool(
            spool.path, store, spool.replayed, spool.mark_replayed, transient=self._transient
        )
        self._errors.extend(report.errors)
        with self._spool_lock:
            self._uploaded += report.values
            self._spooled = max(0, self._spooled - report.values)
            if not spool.pending and self._spool is spool:
                spool.discard()
                self._spool = None
                self._spooled = 0

    # -- outages -----------------------------------------------------------------------------
    def _transient(self, exc: RunyardError) -> bool:
        if is_transient(exc):
            return True
        return exc.error_code == "INTERNAL_ERROR" and self._internal_errors < _INTERNAL_RETRIES

    def _failed(self, exc: RunyardError) -> None:
        if exc.error_code == "INTERNAL_ERROR":
            self._internal_errors += 1
        now = time.monotonic()
        outage = self._outage
        if outage is None:
            outage = self._outage = _Outage(now)
        outage.attempts += 1
        outage.error = exc
        outage.reason = " ".join(str(exc.message).split())[:300]
        delay = min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0 ** (outage.attempts - 1))
        outage.next_try = now + delay * random.uniform(0.75, 1.0)
        if now - outage.warned >= _WARN_EVERY:
            outage.warned = now
            log.warning("runyard: %s", self._outage_message(outage.reason))

    def _outage_message(self, reason: str) -> str:
        with self._queue_lock:
            queued = _count_values(self._taken, self._taken_pos) + _count_values(self._queue, 0)
        where = f"; {self._spooled} in the spool {self._spool.path}" if self._spool else ""
        later = (
            f", to the spool under {spool_dir()} after {self._spool_after:g} s"
            if self._uri is not None and self._spool is None
            else ""
        )
        return (
            f"cannot reach the tracking store {self._uri or ''} ({reason}). Logging goes on: "
            f"{queued} values wait in memory{where}{later}, and are sent when it answers again."
        )

    def _succeeded(self) -> None:
        self._internal_errors = 0
        outage = self._outage
        if outage is None:
            return
        self._outage = None
        log.warning(
            "runyard: the tracking store %s answers again after %.1f s; %d spooled values "
            "were uploaded",
            self._uri or "",
            time.monotonic() - outage.since,
            self._uploaded,
        )
        self._uploaded = 0

    def _should_spill(self, outage: _Outage, now: float) -> bool:
        if self._uri is None or now - self._last_spill < _SPILL_EVERY:
            return False
        with self._queue_lock:
            queued = len(self._queue) + len(self._taken) - self._taken_pos
        if not queued:
            return False
        return now - outage.since >= self._spool_after or queued >= _SPILL_AT

    def _spill(self) -> bool:
        """Move every unwritten value to the spool (oldest first); False when it cannot take
        them (no spool, the size limit, a full disk): they stay in memory."""
        if self._uri is None:
            return False
        with self._spool_lock:
            with self._queue_lock:
                items = self._taken[self._taken_pos :] + self._queue
                self._taken, self._taken_pos, self._queue = [], 0, []
                self._generation += 1
            self._last_spill = time.monotonic()
            if not items:
                return True
            records = [
                SpoolRecord(run_id, tuple(m), tuple(p), tuple(g))
                for _, run_id, m, p, g in _batches(items, 0)
            ]
            spool = self._open_spool()
            if spool is not None and spool.append(records):
                self._spooled += sum(r.values for r in records)
                return True
            with self._queue_lock:
                self._queue[:0] = items
        log.warning(
            "runyard: the spool under %s is full (RUNYARD_SPOOL_MAX_BYTES=%d) or not writable; "
            "%d values wait in memory until the tracking store answers",
            spool_dir(),
            ENV.SPOOL_MAX_BYTES.get(),
            _count_values(items, 0),
        )
        return False

    def _open_spool(self) -> SpoolWriter | None:
        if self._spool is None and self._uri is not None:
            try:
                self._spool = SpoolWriter(spool_dir(), self._uri, ENV.SPOOL_MAX_BYTES.get())
            except OSError as exc:
                log.warning("runyard: cannot create a spool file under %s: %s", spool_dir(), exc)
        return self._spool

    def _spool_end(self, run_id: str, status: str, end_time: int, timeout: float) -> None:
        self._spill()
        end = SpoolRecord(run_id, status=status, end_time=end_time)
        with self._spool_lock:
            spool = self._open_spool()
            kept = spool is not None and spool.append([end])
        reason = self._outage.reason if self._outage is not None else "no answer"
        if spool is None or not kept:
            log.error(
                "runyard: the tracking store %s did not answer within %g s (%s) and the spool "
                "cannot be written: run %s stays RUNNING and %d values are lost if this "
                "process ends now",
                self._uri,
                timeout,
                reason,
                run_id,
                self.pending(),
            )
            return
        self._announced = spool.size
        log.warning(
            "runyard: the tracking store %s did not answer within %g s (%s). The end of run %s "
            "(%s) and %d logged values are kept in %s. They are sent if it answers while this "
            "process runs; otherwise upload them with: %s",
            self._uri,
            timeout,
            reason,
            run_id,
            status,
            self._spooled,
            spool.path,
            sync_command(spool.directory),
        )


def _count_values(items: list[Item], start: int) -> int:
    total = 0
    for index in range(start, len(items)):
        kind, _, value = items[index]
        total += sum(map(len, value)) if kind == _BATCH else 1
    return total


def _fail_fast_rest_store(uri: str) -> TrackingStore:
    """A REST store for the writer's own requests (see ``_WRITE_TIMEOUT``)."""
    from runyard.store.http_session import HttpConfig
    from runyard.store.rest import RestStore

    config = HttpConfig.from_env()
    config = dataclasses.replace(
        config,
        max_retries=min(config.max_retries, 1),
        backoff_factor=min(config.backoff_factor, 0.25),
        backoff_jitter=min(config.backoff_jitter, 0.25),
        timeout=min(config.timeout, _WRITE_TIMEOUT),
    )
    return RestStore(uri, config)


def _close_store(store: TrackingStore) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def _batches(
    items: list[Item], start: int, limits: _Limits = _REQUEST_LIMITS
) -> Iterator[tuple[int, str, list[Metric], list[Param], list[RunTag]]]:
    """Turn queued values (from index ``start``) into per-run batches within ``limits`` (MLflow's
    log-batch limits by default), in order, each with the index just past its last item.

    A queued ``log_batch`` call was validated against the limits already and passes through
    whole; single values (``log_metric`` in a loop) are grouped.
    """
    current: str | None = None
    metrics: list[Metric] = []
    params: list[Param] = []
    tags: list[RunTag] = []
    param_keys: set[str] = set()
    for index in range(start, len(items)):
        kind, rid, value = items[index]
        if kind == _BATCH:
            b_metrics, b_params, b_tags = value
            fits = (
                rid == current
                and len(metrics) + len(b_metrics) <= limits.metrics
                and len(params) + len(b_params) <= limits.params
                and len(tags) + len(b_tags) <= limits.tags
                and len(metrics)
                + len(params)
                + len(tags)
                + len(b_metrics)
                + len(b_params)
                + len(b_tags)
                <= limits.total
                and not any(p.key in param_keys for p in b_params)
                and not any(g.key == t.key for g in b_tags for t in tags)
            )
            if not fits:
                if current is not None and (metrics or params or tags):
                    yield index, current, metrics, params, tags
                current, metrics, params, tags, param_keys = rid, [], [], [], set()
            metrics.extend(b_metrics)
            params.extend(b_params)
            tags.extend(b_tags)
            param_keys.update(p.key for p in b_params)
            continue
        full = (
            rid != current
            or len(metrics) + len(params) + len(tags) >= limits.total
            or (kind == _METRIC and len(metrics) >= limits.metrics)
            or (kind == _PARAM and (len(params) >= limits.params or value.key in param_keys))
            or (kind == _TAG and len(tags) >= limits.tags)
        )
        if full:
            if current is not None and (metrics or params or tags):
                yield index, current, metrics, params, tags
            current, metrics, params, tags, param_keys = rid, [], [], [], set()
        if kind == _METRIC:
            metrics.append(value)
        elif kind == _PARAM:
            params.append(value)
            param_keys.add(value.key)
        else:
            # A later value of the same tag wins, as it would have with synchronous calls.
            tags = [g for g in tags if g.key != value.key]
            tags.append(value)
    if current is not None and (metrics or params or tags):
        yield len(items), current, metrics, params, tags


def _after_fork_in_child() -> None:
    # The parent's writer thread does not exist in a forked child; start a fresh one on demand,
    # and don't write the parent's queued values twice. The parent's spool and sockets stay
    # the parent's.
    for writer in _all_writers:
        writer._thread = None
        writer._queue, writer._taken, writer._taken_pos = [], [], 0
        writer._queue_lock = threading.Lock()
        writer._flush_lock = threading.Lock()
        writer._spool_lock = threading.Lock()
        if writer._spool is not None:
            writer._spool.close()
        writer._spool, writer._spooled, writer._outage, writer._fast = None, 0, None, None


def flush_all() -> None:
    """Flush every writer of this process (exit and SIGTERM hooks call this)."""
    for writer in list(_all_writers):
        try:
            writer.flush_at_exit()
        except RunyardError as exc:
            log.warning("runyard: could not write logged values: %s", exc)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # The signal can land while this very thread holds a writer's lock (inside a flush), so the
    # handler must not flush itself: a helper thread writes everything, then ends the process
    # with the default SIGTERM action. The interrupted code runs on meanwhile and lets go of
    # the lock; a second SIGTERM kills at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def flush_then_exit() -> None:
        try:
            flush_all()
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=flush_then_exit, name="runyard-sigterm", daemon=True).start()


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(flush_all)
    os.register_at_fork(after_in_child=_after_fork_in_child)
    # Only take over SIGTERM when nobody else did, and only from the main thread (a rule of
    # the signal module).
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:
            pass
