"""Engines and migrations for the SQL stores.

SQLite gets WAL, ``synchronous=NORMAL``, a busy timeout and foreign keys on every connection, and
write transactions start with ``BEGIN IMMEDIATE`` so two writers never deadlock upgrading a read
lock. Alembic is only imported when the schema is not already at head, so opening an up-to-date
store costs one small query.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.store.sql.schema import SCHEMA_REVISION

__all__ = ["MIGRATIONS_DIR", "current_revision", "make_engine", "prepare_schema", "upgrade"]

try:
    import fcntl
except ImportError:  # Windows: no advisory file locks; concurrent first starts are not guarded
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_path(uri: str) -> str | None:
    url = make_url(uri)
    if url.get_backend_name() != "sqlite":
        return None
    return url.database or ":memory:"


def make_engine(uri: str, busy_timeout: float = 30.0) -> Engine:
    """An engine for ``uri`` tuned for runyard's access pattern."""
    try:
        path = _sqlite_path(uri)
    except ArgumentError:
        raise InvalidParameterValue(
            f"Invalid database URI '{uri}'. Use sqlite:///path.db or postgresql://user@host/db."
        ) from None
    if path is None:
        if uri.startswith("postgresql://"):
            uri = "postgresql+psycopg://" + uri[len("postgresql://") :]
        try:
            return create_engine(uri, pool_pre_ping=True)
        except ArgumentError:
            raise InvalidParameterValue(
                f"Unsupported database URI '{uri}'. Use sqlite:///path.db or "
                "postgresql://user@host/db."
            ) from None
        except ModuleNotFoundError as exc:
            raise RunyardError(
                f"The database driver for '{make_url(uri).drivername}' is not installed "
                f"({exc.name}). For PostgreSQL: pip install 'runyard[postgres]'."
            ) from None
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": busy_timeout}}
    if path == ":memory:":
        kwargs["poolclass"] = StaticPool
    else:
        Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(uri, **kwargs)
    _tune_sqlite(engine, busy_timeout)
    return engine


def _tune_sqlite(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Straight on the DBAPI cursor: this runs for every transaction.
        statement = "BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN"
        cursor = conn.connection.cursor()
        try:
            cursor.execute(statement)
        except conn.dialect.loaded_dbapi.OperationalError as exc:
            # Raised outside SQLAlchemy's execution, so wrap it as SQLAlchemy would.
            raise OperationalError(statement, None, exc) from exc
        finally:
            cursor.close()


@contextlib.contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection whose transaction takes the write lock up front (SQLite)."""
    with engine.connect() as conn:
        conn.info["write"] = True
        try:
            with conn.begin():
                yield conn
        finally:
            conn.info["write"] = False


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision stored in the database, or None for an empty database."""
    with engine.connect() as conn:
        try:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        except (OperationalError, ProgrammingError):
            return None
    return row[0] if row else None


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations between processes sharing one SQLite file."""
    path = _sqlite_path(str(engine.url))
    if path is None or path == ":memory:" or fcntl is None:
        yield
        return
    lock_path = Path(path).expanduser().resolve().with_suffix(".migrate.lock")
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision`` (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with _migration_lock(engine), engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def prepare_schema(engine: Engine, auto_upgrade: bool) -> None:
    """Make sure the schema is at head: upgrade when allowed, else explain what to run."""
    try:
        _prepare_schema(engine, auto_upgrade)
    except DBAPIError as exc:
        url = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise RunyardError(
            f"Cannot open the tracking database {url}: {reason}", error_code="IO_ERROR"
        ) from None


def _prepare_schema(engine: Engine, auto_upgrade: bool) -> None:
    found = current_revision(engine)
    if found == SCHEMA_REVISION:
        return
    url = engine.url.render_as_string(hide_password=True)
    if found is not None and not (MIGRATIONS_DIR / "versions" / f"{found}.py").exists():
        raise RunyardError(
            f"The database at {url} was not created by runyard (schema revision {found}); "
            "point runyard at a new database URI.",
            error_code="INVALID_STATE",
        )
    if auto_upgrade or found is None:
        log.info("Upgrading tracking schema from %s to %s", found, SCHEMA_REVISION)
        upgrade(engine)
        return
    raise RunyardError(
        f"The database schema is at revision {found}, this runyard needs {SCHEMA_REVISION}. "
        f"Back up the database, then run: runyard db upgrade '{url}'",
        error_code="INVALID_STATE",
    )
