"""Shared plumbing of the SQL store mixins: connections, dialect upserts, existence checks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, Row, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, OperationalError

from runyard.entities import LifecycleStage
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.store.sql import schema as t
from runyard.store.sql.engine import held_reads, read_engine, write_connection
from runyard.store.sql.held_reads import HeldReads
from runyard.store.sql.statements import RunRecord, Statements

__all__ = ["SqlBase", "parse_experiment_id"]


def parse_experiment_id(experiment_id: object) -> int:
    """Experiment ids are integers sent as strings; anything else is a caller mistake."""
    try:
        return int(str(experiment_id))
    except ValueError:
        raise InvalidParameterValue(
            f"Invalid experiment ID: '{experiment_id}'. Experiment ids are integers, e.g. '0'."
        ) from None


# Messages of OperationalErrors that pass: a busy SQLite file, a PostgreSQL server that is
# restarting or unreachable. Others ("no such column") are bugs and must not be retried forever.
_TRANSIENT_MESSAGES = (
    "database is locked",
    "database table is locked",
    "database is busy",
    "connection",
    "server closed",
    "terminating",
    "the database system is",
    "timeout",
)


@contextlib.contextmanager
def _unavailable_as_error(dbapi: Any = None) -> Iterator[None]:
    """A locked, unreachable or restarting database is a temporary condition, said so.

    Callers (the background writer above all) keep their values and retry on
    TEMPORARILY_UNAVAILABLE; everything else is a permanent error. Prepared statements
    (:mod:`~runyard.store.sql.prepared`) run on the DBAPI cursor, so the driver's own
    ``OperationalError``/``InterfaceError`` (a server gone mid-statement) arrive here too.
    """
    raw = (dbapi.OperationalError, dbapi.InterfaceError) if dbapi is not None else ()
    try:
        yield
    except (OperationalError, *raw) as exc:
        invalidated = getattr(exc, "connection_invalidated", False)
        orig = getattr(exc, "orig", None) or exc
        reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        lowered = reason.lower()
        if invalidated or any(m in lowered for m in _TRANSIENT_MESSAGES):
            raise RunyardError(
                f"The tracking database is unavailable: {reason}",
                error_code="TEMPORARILY_UNAVAILABLE",
            ) from exc
        raise


@contextlib.contextmanager
def _dropped_when_lost(conn: Connection) -> Iterator[None]:
    """A connection whose server went away under a prepared statement (which SQLAlchemy does
    not see) is dropped from the pool rather than handed to the next request."""
    try:
        yield
    except conn.dialect.loaded_dbapi.Error as exc:  # SQLAlchemy's own errors it handled itself
        if not conn.invalidated:
            error: Any = exc
            if conn.dialect.is_disconnect(error, conn.connection.dbapi_connection, None):
                conn.invalidate(exc)
        raise


@contextlib.contextmanager
def _bad_values_as_error(dbapi: Any) -> Iterator[None]:
    """A value the database cannot hold is the caller's mistake, not an internal error.

    PostgreSQL refuses NUL characters in text and integers beyond a column's range; SQLite's
    driver raises OverflowError for integers beyond 64 bits. Prepared statements
    (:mod:`~runyard.store.sql.prepared`) run on the DBAPI cursor, so the driver's own
    ``DataError`` arrives here as well as SQLAlchemy's.
    """
    try:
        yield
    except (DataError, dbapi.DataError, OverflowError) as exc:
        orig = getattr(exc, "orig", None) or exc
        reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        raise InvalidParameterValue(f"Invalid value: {reason}") from None


class SqlBase:
    """Holds the engine; the mixins build on these helpers."""

    _engine: Engine
    _sql: Statements

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        reader = self._reader()
        dbapi = reader.dialect.loaded_dbapi
        held = None
        if self._held is not None:
            with _unavailable_as_error(dbapi):  # the server may be down when it reconnects
                held = self._held.connection()
        if held is not None:  # PostgreSQL, on a server's event-loop thread
            try:
                with (
                    _unavailable_as_error(dbapi),
                    _bad_values_as_error(dbapi),
                    _dropped_when_lost(held),
                ):
                    yield held
            except BaseException:
                if not held.invalidated:
                    held.rollback()  # ends SQLAlchemy's own bookkeeping; autocommit: no trip
                raise
            return
        with (
            _unavailable_as_error(dbapi),
            _bad_values_as_error(dbapi),
            reader.connect() as conn,
            _dropped_when_lost(conn),
        ):
            yield conn

    def _reader(self) -> Engine:
        """The engine reads use (see :func:`~runyard.store.sql.engine.read_engine`): on
        PostgreSQL its connections are in autocommit, so a read sends no BEGIN and no
        ROLLBACK."""
        reader: Engine | None = self.__dict__.get("_read_engine")
        if reader is None:
            reader = self.__dict__["_read_engine"] = read_engine(self._engine)
            self.__dict__["_held"] = held_reads(self._engine)
        return reader

    #: Connections a server's event-loop thread keeps for its reads (PostgreSQL; see
    #: :mod:`~runyard.store.sql.held_reads`); set by :meth:`_reader`.
    _held: HeldReads | None = None

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        dbapi = self._engine.dialect.loaded_dbapi
        with (
            _unavailable_as_error(dbapi),
            _bad_values_as_error(dbapi),
            write_connection(self._engine) as conn,
            _dropped_when_lost(conn),
        ):
            yield conn

    def _autocommit(self) -> contextlib.AbstractContextManager[Connection]:
        """A connection for one write statement that is its own transaction (PostgreSQL's
        autocommit reader, see :mod:`~runyard.store.sql.pg_writes`)."""
        return self._read()

    def _insert(self, table: Table) -> Any:
        """A dialect INSERT that supports ``on_conflict_do_*``."""
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _run_row(self, conn: Connection, run_id: str) -> RunRecord:
        row = self._sql.run_row.run(conn, run_uuid=run_id).fetchone()
        if row is None:
            raise ResourceDoesNotExist(f"Run with id={run_id} not found")
        return RunRecord(*row)

    def _check_run_active(self, conn: Connection, run_id: str) -> int:
        """Raise unless the run exists and is active; return its experiment id."""
        row = self._sql.run_state.run(conn, run_uuid=run_id).fetchone()
        if row is None:
            raise ResourceDoesNotExist(f"Run with id={run_id} not found")
        if row[0] != LifecycleStage.ACTIVE:
            raise InvalidParameterValue(
                f"The run {run_id} must be in the 'active' state. Current state is {row[0]}."
            )
        return int(row[1])

    @staticmethod
    def _experiment_row(conn: Connection, experiment_id: str | int) -> Row[Any]:
        exp_id = parse_experiment_id(experiment_id)
        row = conn.execute(
            select(t.experiments).where(t.experiments.c.experiment_id == exp_id)
        ).first()
        if row is None:
            raise ResourceDoesNotExist(f"No Experiment with id={experiment_id} exists")
        return row
