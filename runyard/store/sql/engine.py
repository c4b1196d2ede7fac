"""Engines and migrations for the SQL stores.

SQLite gets WAL, ``synchronous=NORMAL``, a busy timeout and foreign keys on every connection, and
write transactions start with ``BEGIN IMMEDIATE`` so two writers never deadlock upgrading a read
lock. Alembic is only imported when the schema is not already at head, so opening an up-to-date
store costs one small query.

Migrations are serialised between processes that start at once: an flock beside the SQLite file,
a transaction-level advisory lock (``pg_advisory_xact_lock``) on PostgreSQL. Whoever waited
re-reads the revision under the lock and finds nothing left to do. Other databases get a
connection pool sized by ``RUNYARD_SQLALCHEMYSTORE_POOL_SIZE`` / ``_MAX_OVERFLOW`` /
``_POOL_RECYCLE`` (MLflow's ``MLFLOW_`` names work too); on PostgreSQL reads use a second pool
of that size whose connections are autocommit (:func:`read_engine`).
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

from runyard.config import ENV
from runyard.errors import InvalidParameterValue, RunyardError
from runyard.store.sql.held_reads import HeldReads
from runyard.store.sql.schema import SCHEMA_REVISION

__all__ = [
    "MIGRATIONS_DIR",
    "current_revision",
    "describe_db_error",
    "held_reads",
    "limit_sqlite_cache",
    "make_engine",
    "read_engine",
    "pool_options",
    "prepare_schema",
    "upgrade",
]

try:
    import fcntl
except ImportError:  # Windows: no advisory file locks; concurrent first starts are not guarded
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: Key of the PostgreSQL advisory lock held while migrating ("runyard" in ASCII).
MIGRATION_LOCK_KEY = 0x72756E79617264


def _sqlite_path(uri: str) -> str | None:
    url = make_url(uri)
    if url.get_backend_name() != "sqlite":
        return None
    return url.database or ":memory:"


def pool_options() -> dict[str, int]:
    """``create_engine`` pool arguments from the SQLALCHEMYSTORE_* variables that are set."""
    options: dict[str, int] = {}
    for name, var in (
        ("pool_size", ENV.SQLALCHEMYSTORE_POOL_SIZE),
        ("max_overflow", ENV.SQLALCHEMYSTORE_MAX_OVERFLOW),
        ("pool_recycle", ENV.SQLALCHEMYSTORE_POOL_RECYCLE),
    ):
        try:
            value = var.get()
        except ValueError as exc:
            raise InvalidParameterValue(str(exc)) from None
        if value is not None:
            options[name] = value
    return options


#: Seconds a PostgreSQL connection attempt may take (``?connect_timeout=`` in the URI wins): an
#: unreachable host answers TEMPORARILY_UNAVAILABLE quickly instead of hanging a worker.
PG_CONNECT_TIMEOUT = 10


def _connect_args(uri: str) -> dict[str, Any]:
    url = make_url(uri)
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        return {"connect_timeout": PG_CONNECT_TIMEOUT}
    return {}


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
            # No pre-ping (a round trip per request): a connection that died with its server
            # fails its statement, which invalidates the whole pool and answers
            # TEMPORARILY_UNAVAILABLE; clients retry and get fresh connections.
            return create_engine(uri, connect_args=_connect_args(uri), **pool_options())
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


#: The autocommit reader of each PostgreSQL engine (see :func:`read_engine`).
_READERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
#: The connections event-loop threads keep on each reader (see :mod:`.held_reads`).
_HELD: weakref.WeakKeyDictionary[Engine, HeldReads] = weakref.WeakKeyDictionary()


def read_engine(engine: Engine) -> Engine:
    """The engine reads use: ``engine`` itself on SQLite; on PostgreSQL a second engine on the
    same database whose pool holds autocommit connections.

    A read is one statement (or a few, each consistent on its own), so a transaction around it
    costs a BEGIN and a ROLLBACK, two round trips for nothing. Switching pooled connections to
    autocommit per checkout (``execution_options(isolation_level=...)`` on the shared pool) is
    ~10 % of a ``runs/get``'s CPU; connections that are autocommit from the start cost nothing.
    The reader has its own pool, sized like the writer's (``SQLALCHEMYSTORE_POOL_SIZE``...), and
    is disposed with ``engine``.
    """
    if engine.dialect.name != "postgresql":
        return engine
    reader = _READERS.get(engine)
    if reader is None:
        url = engine.url
        options = pool_options()
        reader = create_engine(
            url,
            isolation_level="AUTOCOMMIT",
            # No transaction to end: the ROLLBACK a checkin sends by default is a round trip
            # (and ~4 % of a runs/get) for nothing.
            pool_reset_on_return=None,
            connect_args=_connect_args(url.render_as_string(hide_password=True)),
            **options,
        )
        # Holders never take the last connection of the pool (defaults: 5 + 10 overflow).
        capacity = options.get("pool_size", 5) + options.get("max_overflow", 10)
        held = HeldReads(
            reader,
            limit=min(2, capacity - 1),
            recycle=float(options.get("pool_recycle", 3600)),
        )
        event.listen(engine, "engine_disposed", _disposer(reader, held))
        _READERS[engine] = reader
        _HELD[engine] = held
    return reader


def held_reads(engine: Engine) -> HeldReads | None:
    """The held read connections of a PostgreSQL ``engine`` (None on SQLite, whose reads are
    transactions that must end), created with its :func:`read_engine`."""
    read_engine(engine)
    return _HELD.get(engine)


@contextlib.contextmanager
def planned_each_time(conn: Connection) -> Iterator[None]:
    """PostgreSQL: psycopg does not prepare the statements run inside, so the server plans
    each for its values (a no-op elsewhere).

    psycopg prepares a statement on the server once it has run five times; five executions
    later PostgreSQL may switch it to a generic plan, made without the values. For a run
    search that is a gamble: on 5,000 runs the generic plan of a filtered search ordered by a
    metric took 14 ms against 11 for the planned one, and a filter's selectivity changes with
    its values. Ad-hoc searches would also push the fixed statements of the hot paths out of
    psycopg's 100 prepared statements per connection.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    driver: Any = conn.connection.driver_connection
    saved = driver.prepare_threshold
    driver.prepare_threshold = None
    try:
        yield
    finally:
        driver.prepare_threshold = saved


def _disposer(reader: Engine, held: HeldReads) -> Any:
    def dispose(_engine: Engine) -> None:
        held.close_all()
        reader.dispose()

    return dispose


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
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
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


#: The page cache of each SQLite connection (KiB) unless :func:`limit_sqlite_cache` says
#: otherwise: large, for the embedded store, where one connection serves one process.
SQLITE_CACHE_KIB = 65536
#: The page cache of each pooled SQLite connection of a tracking server (KiB); see
#: :func:`limit_sqlite_cache`.
SERVER_SQLITE_CACHE_KIB = 512


def limit_sqlite_cache(engine: Engine, kib: int = SERVER_SQLITE_CACHE_KIB) -> None:
    """Give every connection of a SQLite ``engine`` a page cache of at most ``kib`` KiB.

    For servers: their pool holds several connections (one per concurrent request), each with
    its own cache, and in WAL mode a connection drops its whole cache whenever another one has
    committed since its last read. Under traffic that writes, large caches are refilled again
    and again and mostly add to the process's peak memory (which glibc keeps), and when reads
    dominate the operating system's file cache serves the pages anyway. 512 KiB (128 pages of
    4 KiB) still holds the upper levels of every B-tree a request descends; leaf pages come
    from the file cache. A soak of mixed traffic grew ~5 MB/min with 64 MB caches, ~2.5 with
    2 MB and ~1 with 512 KiB. Connections already open are closed, so the next ones get the
    limit; other databases are left alone.
    """
    if engine.dialect.name != "sqlite":
        return
    pragma = f"PRAGMA cache_size=-{int(kib)}"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(pragma)
        cur.close()

    if isinstance(engine.pool, StaticPool):  # :memory: - its one connection is the database
        with engine.connect() as conn:
            conn.exec_driver_sql(pragma)
    else:
        engine.dispose()


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


def _stored_revision(conn: Connection) -> str | None:
    # Checked with the inspector: a failed SELECT would abort a PostgreSQL transaction.
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply Alembic migrations up to ``revision`` (idempotent, safe from several processes).

    The lock is taken first (flock for SQLite, ``pg_advisory_xact_lock`` for PostgreSQL, held
    until this transaction ends), then the revision is read: a process that waited for another
    one's migration finds the schema at head and leaves it alone.

    Returns:
        The revision the database was at under the lock (None: it was empty).
    """
    with _migration_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        found = _stored_revision(conn)
        if revision == "head" and found == SCHEMA_REVISION:
            return found
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        return found


def describe_db_error(engine: Engine, exc: DBAPIError) -> RunyardError:
    """A one-line error naming the database (password hidden) and the driver's reason."""
    url = engine.url.render_as_string(hide_password=True)
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return RunyardError(f"Cannot open the tracking database {url}: {reason}", error_code="IO_ERROR")


def prepare_schema(engine: Engine, auto_upgrade: bool) -> None:
    """Make sure the schema is at head: upgrade when allowed, else explain what to run."""
    try:
        _prepare_schema(engine, auto_upgrade)
    except DBAPIError as exc:
        raise describe_db_error(engine, exc) from None


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
