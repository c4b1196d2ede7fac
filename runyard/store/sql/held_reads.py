"""Read connections a server's event-loop thread keeps instead of checking one out per read.

A tracking server on PostgreSQL answers each read (``runs/get``, a search page) with one or two
statements on an autocommit connection (see :func:`~runyard.store.sql.engine.read_engine`).
Checking that connection out of SQLAlchemy's pool and back in costs more Python than the
statements themselves: ~20 % of a ``runs/get``'s CPU went to the pool's bookkeeping, on the one
thread that serves every request. The thread running an event loop therefore keeps one
connection checked out and reads on it; as the connection is autocommit and the reads run one
at a time on that thread, no transaction or half-read result is ever shared.

Bounded and self-healing:

- At most ``limit`` threads hold a connection (the rest check out as before), so a pool is
  never drained by holders; a holder whose thread has ended is closed when another thread asks.
- A connection that was invalidated (its server went away, see ``_dropped_when_lost``) or is
  older than ``recycle`` seconds is closed and replaced on the next read; a server restart
  costs the one failed statement it costs a pooled connection.
- ``close_all`` (called when the engine is disposed) closes every held connection.

Threads without a running event loop (the embedded store, the background writer, worker
threads) are never given one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from sqlalchemy import Connection, Engine

__all__ = ["HeldReads"]


class HeldReads:
    """Per-thread autocommit read connections of ``engine`` for event-loop threads."""

    def __init__(self, engine: Engine, limit: int = 2, recycle: float = 3600.0) -> None:
        self._engine = engine
        self._limit = max(0, limit)
        self._recycle = recycle if recycle > 0 else 3600.0
        # thread ident -> (thread, connection, when it was opened)
        self._held: dict[int, tuple[threading.Thread, Connection, float]] = {}
        self._lock = threading.Lock()

    def connection(self) -> Connection | None:
        """This thread's connection; None when it runs no event loop or may hold none (the
        caller checks a connection out of the pool as usual)."""
        if asyncio._get_running_loop() is None:
            return None
        ident = threading.get_ident()
        found = self._held.get(ident)
        if found is not None:
            conn = found[1]
            if not conn.invalidated and not conn.closed and time.monotonic() < found[2]:
                return conn
            self._release(ident)
        return self._hold(ident)

    def _hold(self, ident: int) -> Connection | None:
        with self._lock:
            if len(self._held) >= self._limit:
                for other, (thread, _conn, _since) in list(self._held.items()):
                    if not thread.is_alive():
                        self._close(other)
            if len(self._held) >= self._limit:
                return None
        conn = self._engine.connect()
        with self._lock:
            self._held[ident] = (threading.current_thread(), conn, time.monotonic() + self._recycle)
        return conn

    def _release(self, ident: int) -> None:
        with self._lock:
            self._close(ident)

    def _close(self, ident: int) -> None:
        found = self._held.pop(ident, None)
        if found is not None:
            # A connection whose server died closes as well as it can.
            with contextlib.suppress(Exception):
                found[1].close()

    def close_all(self) -> None:
        """Close every held connection (the engine is being disposed)."""
        with self._lock:
            for ident in list(self._held):
                self._close(ident)

    def __len__(self) -> int:
        return len(self._held)
