"""Throwaway PostgreSQL servers for tests: a cluster on a free port, and a streaming replica.

:func:`start_cluster` runs ``initdb`` and ``pg_ctl start`` in a temporary folder (as the
``postgres`` user when the tests run as root: ``initdb`` refuses root, see
``scripts/with-postgres``); :func:`start_replica` copies a running cluster with
``pg_basebackup -R`` and starts it as a hot standby that streams the primary's WAL.

Fixtures (import them into a test module or conftest)::

    from tests.pg_cluster import pg_primary, pg_replica_pair  # noqa: F401

``pg_primary`` (session) is a :class:`PgServer`: the server of ``RUNYARD_TEST_POSTGRES_URI`` when
that is set (CI runs the suite under ``scripts/with-postgres``), else a cluster of its own; its
``create_database()`` hands out fresh, empty databases. ``pg_replica_pair`` (session) always
starts its own primary and replica (replication needs control of both servers).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

#: The role the replica connects as (``REPLICATION``; trusted from 127.0.0.1 in pg_hba.conf).
REPLICATION_USER = "replicator"
_NO_POSTGRES = (
    "PostgreSQL is not available: set RUNYARD_TEST_POSTGRES_URI=postgresql://user@host:port/db "
    "or install the server (apt-get install postgresql) so tests can start their own cluster."
)


def pg_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` (or the folder of ``initdb`` on PATH)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parts[-3].split(".")],
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(_NO_POSTGRES)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_database(uri: str, database: str) -> str:
    """``uri`` pointing at another database of the same server."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path="/" + database))


def connect(uri: str) -> Any:
    """An autocommit psycopg connection (``postgresql://`` URIs as the store takes them)."""
    import psycopg

    return psycopg.connect(
        uri.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
    )


def execute(uri: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on its own connection; the rows it returned (none for commands)."""
    with connect(uri) as conn:
        cur = conn.execute(statement, params)
        return list(cur.fetchall()) if cur.description else []


def create_database(server_uri: str, name: str | None = None) -> str:
    """Create an empty database on the server of ``server_uri``; its URI."""
    name = name or f"runyard_{uuid.uuid4().hex[:12]}"
    execute(server_uri, f'CREATE DATABASE "{name}"')
    return with_database(server_uri, name)


def drop_database(uri: str) -> None:
    """Drop the database ``uri`` names (closing other sessions on it first)."""
    name = urlsplit(uri).path.lstrip("/")
    execute(with_database(uri, "postgres"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class PgCluster:
    """A PostgreSQL server this process started (data folder, log and socket under ``root``)."""

    root: Path
    port: int
    bin_dir: Path
    data: Path = field(init=False)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"

    def uri(self, database: str = "postgres") -> str:
        """The superuser URI of ``database`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def run_tool(self, *args: str) -> None:
        """Run a PostgreSQL program of ``bin_dir`` as the cluster's owner; fail loudly."""
        command = [str(self.bin_dir / args[0]), *args[1:]]
        user = "postgres" if os.geteuid() == 0 else None
        done = subprocess.run(command, capture_output=True, text=True, user=user, cwd="/")
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}{log}"
            )

    def start(self, *settings: str) -> None:
        """``pg_ctl start`` on ``port``, loopback only, with ``-c name=value`` ``settings``."""
        options = [f"-p {self.port}", f"-k {self.root}", "-c listen_addresses=127.0.0.1"]
        options += [f"-c {s}" for s in settings]
        self.run_tool("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                      "-o", " ".join(options), "start")  # fmt: skip

    def stop(self) -> None:
        """Stop the server (immediately) and remove its folder."""
        with contextlib.suppress(RuntimeError):  # already stopped
            self.run_tool("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _owned_tempdir(prefix: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    return root


def start_cluster() -> PgCluster:
    """A new cluster on a free port (trust authentication, fsync off, WAL for one replica)."""
    cluster = PgCluster(_owned_tempdir("runyard-pg."), free_port(), pg_bin_dir())
    try:
        cluster.run_tool("initdb", "-D", str(cluster.data), "-A", "trust", "-U", "postgres")
        with (cluster.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host replication {REPLICATION_USER} 127.0.0.1/32 trust\n")
        cluster.start("fsync=off", "wal_level=replica", "max_wal_senders=4", "max_connections=200")
        execute(cluster.uri(), f"CREATE ROLE {REPLICATION_USER} WITH REPLICATION LOGIN")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def start_replica(primary: PgCluster) -> PgCluster:
    """A hot standby of ``primary``: ``pg_basebackup -R`` (streaming WAL), then started."""
    replica = PgCluster(_owned_tempdir("runyard-pg-replica."), free_port(), primary.bin_dir)
    try:
        replica.run_tool("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port),
                         "-U", REPLICATION_USER, "-D", str(replica.data), "-R", "-X", "stream",
                         "-c", "fast")  # fmt: skip
        replica.start("fsync=off", "hot_standby=on", "max_connections=200")
    except BaseException:
        replica.stop()
        raise
    return replica


def wait_for_replay(primary_uri: str, replica_uri: str, timeout: float = 30.0) -> None:
    """Block until the replica has replayed everything the primary wrote so far."""
    primary_uri, replica_uri = (with_database(u, "postgres") for u in (primary_uri, replica_uri))
    (target,) = execute(primary_uri, "SELECT pg_current_wal_lsn()::text")[0]
    deadline = time.monotonic() + timeout
    while True:
        caught_up = execute(
            replica_uri, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
        )[0][0]
        if caught_up:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the replica did not replay up to {target} in {timeout:.0f}s")
        time.sleep(0.05)


@dataclass
class PgServer:
    """A PostgreSQL server for tests: fresh databases on demand."""

    #: The URI of the server's ``postgres`` database (for administration).
    admin_uri: str
    cluster: PgCluster | None = None
    created: list[str] = field(default_factory=list)

    def create_database(self) -> str:
        """A new, empty database; its URI (dropped when the fixture ends)."""
        uri = create_database(self.admin_uri)
        self.created.append(uri)
        return uri

    def close(self) -> None:
        """Drop the databases handed out; stop the cluster when this process started it."""
        if self.cluster is not None:
            self.cluster.stop()
            return
        for uri in self.created:
            drop_database(uri)


@dataclass
class ReplicaPair:
    """A primary and its streaming hot standby, with one database created on the primary."""

    primary: PgCluster
    replica: PgCluster
    database: str

    @property
    def primary_uri(self) -> str:
        """The database on the primary (read-write)."""
        return self.primary.uri(self.database)

    @property
    def replica_uri(self) -> str:
        """The same database on the replica (read-only)."""
        return self.replica.uri(self.database)

    def wait_for_replay(self, timeout: float = 30.0) -> None:
        """Block until the replica has caught up with the primary."""
        wait_for_replay(self.primary_uri, self.replica_uri, timeout)

    def pause_replay(self) -> None:
        """Stop applying WAL on the replica: it keeps answering, frozen at this point."""
        execute(self.replica_uri, "SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        """Apply WAL again (the replica catches up)."""
        execute(self.replica_uri, "SELECT pg_wal_replay_resume()")

    def close(self) -> None:
        """Stop both servers and remove their folders."""
        self.replica.stop()
        self.primary.stop()


def open_pg_server() -> PgServer:
    """``RUNYARD_TEST_POSTGRES_URI``'s server when set, else a cluster started here."""
    given = os.environ.get("RUNYARD_TEST_POSTGRES_URI")
    if given:
        return PgServer(with_database(given, "postgres"))
    try:
        cluster = start_cluster()
    except (RuntimeError, OSError) as exc:
        raise RuntimeError(f"{_NO_POSTGRES}\n{exc}") from None
    return PgServer(cluster.uri(), cluster)


def open_replica_pair() -> ReplicaPair:
    """A new primary, a streaming replica of it, and a database (replicated) to use."""
    try:
        primary = start_cluster()
    except (RuntimeError, OSError) as exc:
        raise RuntimeError(f"{_NO_POSTGRES}\n{exc}") from None
    try:
        replica = start_replica(primary)
    except BaseException:
        primary.stop()
        raise
    pair = ReplicaPair(primary, replica, "runyard")
    try:
        execute(primary.uri(), 'CREATE DATABASE "runyard"')
        pair.wait_for_replay()
    except BaseException:
        pair.close()
        raise
    return pair


@pytest.fixture(scope="session")
def pg_primary() -> Iterator[PgServer]:
    """A PostgreSQL server for the session (see the module docstring)."""
    try:
        server = open_pg_server()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def pg_replica_pair() -> Iterator[ReplicaPair]:
    """A primary and a hot-standby replica this session started (a database ``runyard``)."""
    try:
        pair = open_replica_pair()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield pair
    finally:
        pair.close()
