"""A throwaway PostgreSQL server for ``python -m benchmarks --suite server --backend postgres``.

``initdb`` + ``pg_ctl start`` in a temporary folder on a free loopback port (as the ``postgres``
user when running as root: ``initdb`` refuses root), one fresh database per server start, all
removed at the end. Settings are PostgreSQL's defaults except ``fsync=off`` (the SQLite runs do
not fsync to a real disk either, see benchmarks/README.md) and more connections (MLflow's
workers each keep a pool), and autovacuum looking for work every second.

A deliberate twin of ``tests/pg_cluster.py`` (which also makes replicas and pytest fixtures):
benchmarks never import the test suite, and the suite does not depend on benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Server settings of the benchmark cluster (``-c name=value``).
SETTINGS = (
    "fsync=off",
    "max_connections=200",
    "listen_addresses=127.0.0.1",
    # Autovacuum looks for tables to ANALYZE every second instead of every minute, so the
    # planner knows the size of tables the workloads have just filled (see server_workloads'
    # SETTLE_S), as it would on a server that has been in use for a while.
    "autovacuum_naptime=1",
)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server programs here."""


def _bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailable("PostgreSQL is not installed (apt-get install postgresql)")


@dataclass
class Cluster:
    """A running PostgreSQL server owned by this process."""

    root: Path
    port: int
    bin_dir: Path

    @property
    def version(self) -> str:
        """The major version (the ``/usr/lib/postgresql/<version>`` folder)."""
        return self.bin_dir.parent.name

    def uri(self, database: str = "postgres") -> str:
        """``postgresql://`` URI of ``database`` (trust authentication, no password)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def tool(self, *args: str) -> None:
        """Run a program of the PostgreSQL ``bin`` folder as the cluster's owner."""
        user = "postgres" if os.geteuid() == 0 else None
        command = [str(self.bin_dir / args[0]), *args[1:]]
        done = subprocess.run(command, capture_output=True, text=True, user=user, cwd="/")
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stdout}{done.stderr}")

    def psql(self, statement: str) -> None:
        """Run one SQL statement on the ``postgres`` database."""
        self.tool("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", statement)  # fmt: skip

    def create_database(self, name: str) -> str:
        """A new empty database; its URI."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` (closing sessions a stopped server left behind)."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Databases:
    """A ``store_uri`` for benchmark servers: a new database per server start, named after
    its scratch directory; :meth:`drop_all` removes those handed out so far."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.names: list[str] = []

    def __call__(self, scratch: Path) -> str:
        name = "bench_" + "".join(c if c.isalnum() else "_" for c in scratch.name.lower())
        self.names.append(name)
        return self.cluster.create_database(name)

    def drop_all(self) -> None:
        """Drop every database handed out (their servers are stopped)."""
        while self.names:
            self.cluster.drop_database(self.names.pop())


def start() -> Cluster:
    """initdb and start a cluster on a free port."""
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="runyard-bench-pg."))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    cluster = Cluster(root, port, bin_dir)
    options = " ".join([f"-p {port}", f"-k {root}", *(f"-c {s}" for s in SETTINGS)])
    try:
        cluster.tool("initdb", "-D", str(root / "data"), "-A", "trust", "-U", "postgres")
        cluster.tool("pg_ctl", "-D", str(root / "data"), "-l", str(root / "log"), "-w",
                     "-o", options, "start")  # fmt: skip
    except BaseException:
        stop(cluster)
        raise
    return cluster


def stop(cluster: Cluster) -> None:
    """Stop the server and delete its files."""
    with contextlib.suppress(RuntimeError):
        cluster.tool("pg_ctl", "-D", str(cluster.root / "data"), "-m", "fast", "-w", "stop")
    shutil.rmtree(cluster.root, ignore_errors=True)


@contextlib.contextmanager
def running() -> Iterator[Cluster]:
    """A cluster for the duration of the block."""
    cluster = start()
    try:
        yield cluster
    finally:
        stop(cluster)
