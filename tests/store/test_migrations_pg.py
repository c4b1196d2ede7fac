"""Migrations on PostgreSQL (and concurrency on SQLite): from an empty database, from revision
0001 with data, two ``runyard db upgrade`` processes at once, and a server that refuses an
outdated schema. Pool settings come from the SQLALCHEMYSTORE_* variables.

PostgreSQL comes from ``tests/pg_cluster.py`` (RUNYARD_TEST_POSTGRES_URI's server, else a
cluster of its own); every test gets a new database.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from runyard.entities import Metric, Param
from runyard.errors import InvalidParameterValue, RunyardError
from runyard.store.sql import schema
from runyard.store.sql.engine import current_revision, make_engine, prepare_schema, upgrade
from runyard.store.sql.store import SqlTrackingStore
from tests.pg_cluster import PgServer, pg_primary  # noqa: F401  (session fixture)

OLD_RUN = "a" * 32


@pytest.fixture
def pg_database(request: pytest.FixtureRequest) -> str:
    """The URI of a new, empty PostgreSQL database."""
    server: PgServer = request.getfixturevalue("pg_primary")
    return server.create_database()


def _runyard(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from runyard.cli import main; main()", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _seed_0001(uri: str) -> None:
    """A database at revision 0001 holding one experiment, run, param and metric point."""
    engine = make_engine(uri)
    upgrade(engine, "0001_initial")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage,"
                " creation_time, last_update_time) VALUES (7, 'kept', '/a', 'active', 1, 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO runs (run_uuid, experiment_id, name, status, start_time,"
                " lifecycle_stage, artifact_uri) VALUES (:run, 7, 'old-run',"
                " 'FINISHED', 5, 'active', '/a/r')"
            ),
            {"run": OLD_RUN},
        )
        conn.execute(text("INSERT INTO params VALUES (:run, 'lr', '0.1')"), {"run": OLD_RUN})
    engine.dispose()


def test_upgrade_an_empty_postgres_database(pg_database: str) -> None:
    uri = pg_database
    engine = make_engine(uri)
    assert current_revision(engine) is None
    upgrade(engine)
    upgrade(engine)  # idempotent
    assert current_revision(engine) == schema.SCHEMA_REVISION
    inspector = inspect(engine)
    for table in schema.metadata.sorted_tables:
        migrated = {c["name"] for c in inspector.get_columns(table.name)}
        assert migrated == {c.name for c in table.columns}, table.name
        declared = {i.name for i in table.indexes}
        assert declared <= {i["name"] for i in inspector.get_indexes(table.name)}, table.name
    # 0005: the planner knows which values go with which keys (filtered searches).
    with engine.connect() as conn:
        found = conn.execute(text("SELECT stxname FROM pg_statistic_ext ORDER BY 1")).scalars()
        assert list(found) == [
            "metric_summaries_key_value",
            "params_key_value",
            "run_tags_key_value",
        ]
    engine.dispose()


def test_upgrade_from_0001_with_data_on_postgres(pg_database: str, tmp_path: Path) -> None:
    uri = pg_database
    _seed_0001(uri)
    # A server (no auto-upgrade) refuses the outdated schema and names the command to run.
    engine = make_engine(uri)
    with pytest.raises(RunyardError, match=r"runyard db upgrade '"):
        prepare_schema(engine, auto_upgrade=False)
    engine.dispose()
    proc = _runyard("db", "upgrade", uri, cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "from 0001_initial to 0006_runs_newest_first" in out
    store = SqlTrackingStore(uri, str(tmp_path), auto_upgrade=False)
    try:
        assert store.get_experiment("7").name == "kept"
        run = store.get_run(OLD_RUN)
        assert run.info.run_name == "old-run"
        assert run.data.params == {"lr": "0.1"}
        store.log_batch(run.info.run_id, [Metric("m", 1.5, 10, 0)], [Param("p", "x")])
        assert store.get_metric_history(run.info.run_id, "m")[0].value == 1.5
        assert store.create_registered_model("after-upgrade").name == "after-upgrade"
    finally:
        store.close()


def _concurrent_upgrades(uri: str, cwd: Path, count: int = 4) -> list[str]:
    procs = [_runyard("db", "upgrade", uri, cwd=cwd) for _ in range(count)]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * count, [err for _, err in results]
    return [out for out, _ in results]


@pytest.mark.slow
def test_concurrent_upgrades_on_one_postgres_database(pg_database: str, tmp_path: Path) -> None:
    uri = pg_database
    outputs = _concurrent_upgrades(uri, tmp_path)
    # Exactly one process migrated; the others waited on the lock and found nothing to do.
    assert sum("Upgraded the schema from empty database" in out for out in outputs) == 1
    assert sum("nothing to do" in out for out in outputs) == len(outputs) - 1
    engine = make_engine(uri)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    assert versions == [(schema.SCHEMA_REVISION,)]
    store = SqlTrackingStore(uri, str(tmp_path), auto_upgrade=False)
    assert store.get_experiment_by_name("Default") is not None
    store.close()
    engine.dispose()


@pytest.mark.slow
def test_concurrent_upgrades_from_0001_on_postgres(pg_database: str, tmp_path: Path) -> None:
    uri = pg_database
    _seed_0001(uri)
    outputs = _concurrent_upgrades(uri, tmp_path, count=3)
    assert sum("from 0001_initial to 0006_runs_newest_first" in out for out in outputs) == 1
    engine = make_engine(uri)
    assert current_revision(engine) == schema.SCHEMA_REVISION
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM experiments")).scalars().all() == ["kept"]
    engine.dispose()


@pytest.mark.slow
def test_concurrent_upgrades_on_one_sqlite_file(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    outputs = _concurrent_upgrades(uri, tmp_path)
    assert sum("Upgraded the schema from empty database" in out for out in outputs) == 1
    engine = make_engine(uri)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    assert versions == [(schema.SCHEMA_REVISION,)]
    engine.dispose()


@pytest.mark.slow
def test_server_refuses_an_outdated_postgres_schema(pg_database: str, tmp_path: Path) -> None:
    uri = pg_database
    _seed_0001(uri)
    proc = _runyard("server", "--backend-store-uri", uri, "--port", "1", cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: The database schema is at revision 0001_initial")
    assert "runyard db upgrade '" in lines[0]
    assert "Traceback" not in err
    engine = make_engine(uri)
    assert current_revision(engine) == "0001_initial"  # left alone
    engine.dispose()


def test_pool_settings_come_from_the_environment(
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", "3")
    monkeypatch.setenv("RUNYARD_SQLALCHEMYSTORE_MAX_OVERFLOW", "2")
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE", "60")
    engine = make_engine(pg_database)
    pool = engine.pool
    assert pool.size() == 3  # type: ignore[attr-defined]
    assert pool._max_overflow == 2  # type: ignore[attr-defined]
    assert pool._recycle == 60
    assert engine.dialect.driver == "psycopg"
    # The pool really hands out at most size + overflow connections.
    conns = [engine.connect() for _ in range(5)]
    assert pool.checkedout() == 5  # type: ignore[attr-defined]
    for conn in conns:
        conn.close()
    engine.dispose()


def test_pool_settings_defaults_and_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POOL_SIZE", "MAX_OVERFLOW", "POOL_RECYCLE"):
        for prefix in ("RUNYARD_", "MLFLOW_"):
            monkeypatch.delenv(f"{prefix}SQLALCHEMYSTORE_{name}", raising=False)
    engine = make_engine("postgresql://user@127.0.0.1:1/nowhere")  # no connection is made
    assert engine.pool.size() == 5  # type: ignore[attr-defined]  (SQLAlchemy's default)
    assert engine.pool._recycle == -1
    monkeypatch.setenv("RUNYARD_SQLALCHEMYSTORE_POOL_SIZE", "many")
    with pytest.raises(InvalidParameterValue, match="RUNYARD_SQLALCHEMYSTORE_POOL_SIZE"):
        make_engine("postgresql://user@127.0.0.1:1/nowhere")
    # SQLite keeps its own pool: the settings are not read (so not even a bad value fails).
    sqlite_engine = make_engine("sqlite:///:memory:")
    assert type(sqlite_engine.pool).__name__ == "StaticPool"
