"""The background writer: ``log_*`` calls enqueue, a daemon thread writes batches.

Training code pays a list append per call. Every ``flush_interval`` seconds (or as soon as the
queue is long) a daemon thread turns the queue into ``log_batch`` calls, in order, at most
MLflow's batch limits each. ``flush()`` does the same work in the caller's thread and is what
``end_run``, reads, ``runyard.flush()``, interpreter exit and SIGTERM call, so nothing waits on a
thread hand-off and nothing is dropped. A batch that the store refuses is retried piece by piece so
the good values still land; the first error is raised by the next ``flush()``.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from runyard.entities import Metric, Param, RunTag
from runyard.entities.run import new_metric
from runyard.errors import RunyardError
from runyard.store.base import TrackingStore

__all__ = ["TRANSIENT_ERRORS", "AsyncWriter", "flush_all"]

log = logging.getLogger(__name__)

_METRIC, _PARAM, _TAG, _BATCH = 0, 1, 2, 3
_MAX_METRICS, _MAX_PARAMS, _MAX_TAGS, _MAX_TOTAL = 1000, 100, 100, 1000
# Past this many queued values the producer wakes the thread instead of waiting for the tick.
_WAKE_AT = 20_000

#: Error codes that mean "try again later": values stay queued instead of being reported.
TRANSIENT_ERRORS = frozenset(
    {"TEMPORARILY_UNAVAILABLE", "UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED"}
)

_all_writers: list[AsyncWriter] = []
_hooks_installed = False


class AsyncWriter:
    """Queues values per run and writes them with ``store.log_batch``."""

    def __init__(self, store_factory: Callable[[], TrackingStore], flush_interval: float) -> None:
        self._store_factory = store_factory
        self._interval = max(0.01, flush_interval)
        self._queue: list[tuple[Any, ...]] = []
        self._queue_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._errors: list[BaseException] = []
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
                self._drain()
            except Exception as exc:  # noqa: BLE001 - the thread must survive to retry
                log.warning("runyard: background write failed: %s", exc)

    def close(self) -> None:
        """Drop anything still queued and stop taking part in exit/SIGTERM flushes."""
        with self._queue_lock:
            self._queue = []
        self._errors = []
        if self in _all_writers:
            _all_writers.remove(self)

    # -- consumers ---------------------------------------------------------------------------
    def pending(self) -> int:
        """How many values wait to be written."""
        return len(self._queue)

    def flush(self) -> None:
        """Write everything queued now, in this thread; raise the first write error seen."""
        self._drain()
        if self._errors:
            errors, self._errors = self._errors, []
            if len(errors) > 1:
                log.warning("runyard: %d logging errors; raising the first", len(errors))
            raise errors[0]

    def _drain(self) -> None:
        with self._flush_lock:
            with self._queue_lock:
                items, self._queue = self._queue, []
            if not items:
                return
            store = self._store_factory()
            batches = list(_batches(items))
            for done, (run_id, metrics, params, tags) in enumerate(batches):
                try:
                    self._write(store, run_id, metrics, params, tags)
                except RunyardError:
                    # A temporary outage: keep what is not written yet, ahead of newer values,
                    # for the next flush; the caller (or the thread's next tick) retries.
                    unwritten = [(_BATCH, rid, (m, p, g)) for rid, m, p, g in batches[done:]]
                    with self._queue_lock:
                        self._queue[:0] = unwritten
                    raise

    def _write(
        self,
        store: TrackingStore,
        run_id: str,
        metrics: list[Metric],
        params: list[Param],
        tags: list[RunTag],
    ) -> None:
        try:
            store.log_batch(run_id, metrics, params, tags)
            return
        except RunyardError as exc:
            if exc.error_code in TRANSIENT_ERRORS:
                raise
            parts: list[tuple[list[Metric], list[Param], list[RunTag]]] = [
                (metrics, [], []),
                *(([], [p], []) for p in params),
                ([], [], tags),
            ]
            parts = [part for part in parts if part[0] or part[1] or part[2]]
            if len(parts) == 1:
                self._errors.append(exc)
                return
        # One bad value must not sink the rest of the batch: write the parts separately.
        for part_metrics, part_params, part_tags in parts:
            try:
                store.log_batch(run_id, part_metrics, part_params, part_tags)
            except RunyardError as exc:
                if exc.error_code in TRANSIENT_ERRORS:
                    raise
                self._errors.append(exc)


def _batches(
    items: list[tuple[Any, ...]],
) -> Iterator[tuple[str, list[Metric], list[Param], list[RunTag]]]:
    """Turn queued values into per-run batches within MLflow's log-batch limits, in order.

    A queued ``log_batch`` call was validated against the limits already and passes through
    whole; single values (``log_metric`` in a loop) are grouped.
    """
    current: str | None = None
    metrics: list[Metric] = []
    params: list[Param] = []
    tags: list[RunTag] = []
    param_keys: set[str] = set()
    for kind, rid, value in items:
        if kind == _BATCH:
            b_metrics, b_params, b_tags = value
            fits = (
                rid == current
                and len(metrics) + len(b_metrics) <= _MAX_METRICS
                and len(params) + len(b_params) <= _MAX_PARAMS
                and len(tags) + len(b_tags) <= _MAX_TAGS
                and len(metrics)
                + len(params)
                + len(tags)
                + len(value[0])
                + len(b_params)
                + len(b_tags)
                <= _MAX_TOTAL
                and not any(p.key in param_keys for p in b_params)
                and not any(g.key == t.key for g in b_tags for t in tags)
            )
            if not fits:
                if current is not None and (metrics or params or tags):
                    yield current, metrics, params, tags
                current, metrics, params, tags, param_keys = rid, [], [], [], set()
            metrics.extend(b_metrics)
            params.extend(b_params)
            tags.extend(b_tags)
            param_keys.update(p.key for p in b_params)
            continue
        full = (
            rid != current
            or len(metrics) + len(params) + len(tags) >= _MAX_TOTAL
            or (kind == _METRIC and len(metrics) >= _MAX_METRICS)
            or (kind == _PARAM and (len(params) >= _MAX_PARAMS or value.key in param_keys))
            or (kind == _TAG and len(tags) >= _MAX_TAGS)
        )
        if full:
            if current is not None and (metrics or params or tags):
                yield current, metrics, params, tags
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
        yield current, metrics, params, tags


def _after_fork_in_child() -> None:
    # The parent's writer thread does not exist in a forked child; start a fresh one on demand,
    # and don't write the parent's queued values twice.
    for writer in _all_writers:
        writer._thread = None
        writer._queue = []
        writer._queue_lock = threading.Lock()
        writer._flush_lock = threading.Lock()


def flush_all() -> None:
    """Flush every writer of this process (exit and SIGTERM hooks call this)."""
    for writer in list(_all_writers):
        try:
            writer.flush()
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
