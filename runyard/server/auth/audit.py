"""The audit writer: entries are queued by requests and appended in batches by one thread.

A request never waits for the audit table: its entry is queued, and a background thread
appends what has accumulated every ``interval`` seconds in one transaction. ``flush()`` writes
at once (the audit endpoint calls it before reading; shutdown calls it last). If the database
is briefly unavailable, entries stay queued (up to ``max_pending``) and are written later.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from runyard.server.auth.entities import AuditEntry
from runyard.server.auth.store import AuthStore

__all__ = ["AuditWriter"]

log = logging.getLogger(__name__)


class AuditWriter:
    """Batches audit entries into the auth store."""

    def __init__(self, store: AuthStore, interval: float = 0.2, max_pending: int = 100_000):
        self._store = store
        self._interval = interval
        self._pending: deque[AuditEntry] = deque(maxlen=max_pending)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def add(self, entry: AuditEntry) -> None:
        """Queue one entry (never blocks on the database)."""
        self._pending.append(entry)
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(
                    target=self._loop, name="runyard-audit", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while not self._stopped:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - kept queued, retried on the next tick
                log.warning("Audit entries not written yet (will retry)", exc_info=True)

    def flush(self) -> None:
        """Write every queued entry now (in order); on failure they stay queued."""
        with self._lock:
            batch = list(self._pending)
            if not batch:
                return
            self._store.append_audit(batch)
            for _ in batch:
                self._pending.popleft()

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - the process is going away; say what is lost
            log.error("%d audit entries could not be written", len(self._pending))
