"""``runyard db upgrade`` / ``runyard db current`` on real SQLite files and PostgreSQL databases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from runyard.store.sql import schema
from runyard.store.sql.engine import current_revision, make_engine, upgrade
from runyard.store.sql.store import SqlTrackingStore
from tests.cli.conftest import ErrorCheck, Invoke
from tests.pg_cluster import PgServer, pg_primary  # noqa: F401  (session fixture)

HEAD = schema.SCHEMA_REVISION


@pytest.fixture
def pg_database(request: pytest.FixtureRequest) -> str:
    """The URI of a new, empty PostgreSQL database."""
    server: PgServer = request.getfixturevalue("pg_primary")
    return server.create_database()


def _at_0001(uri: str) -> None:
    engine = make_engine(uri)
    upgrade(engine, "0001_initial")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage,"
                " creation_time, last_update_time) VALUES (3, 'kept', '/a', 'active', 1, 1)"
            )
        )
    engine.dispose()


def test_current_of_a_missing_sqlite_file_creates_nothing(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new.db"
    result = cli("db", "current", f"sqlite:///{path}")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("empty database")
    assert not path.exists()
    assert not path.parent.exists()


def test_upgrade_creates_the_schema_then_has_nothing_to_do(cli: Invoke, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'r.db'}"
    first = cli("db", "upgrade", uri)
    assert first.exit_code == 0, first.output
    assert first.stdout == f"Upgraded the schema from empty database to {HEAD}.\n"
    again = cli("db", "upgrade", uri)
    assert again.stdout == f"Schema already at {HEAD}; nothing to do.\n"
    current = cli("db", "current", uri)
    assert current.stdout == f"{HEAD} (up to date)\n"
    engine = make_engine(uri)
    assert current_revision(engine) == HEAD
    engine.dispose()


def test_upgrade_from_0001_keeps_data(cli: Invoke, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    _at_0001(uri)
    current = cli("db", "current", uri)
    assert current.exit_code == 0
    assert current.stdout.splitlines() == [
        f"0001_initial (out of date: this runyard needs {HEAD})",
        f"Run: runyard db upgrade '{uri}'",
    ]
    result = cli("db", "upgrade", uri)
    assert result.stdout == f"Upgraded the schema from 0001_initial to {HEAD}.\n"
    store = SqlTrackingStore(uri, str(tmp_path), auto_upgrade=False)
    try:
        assert store.get_experiment("3").name == "kept"
    finally:
        store.close()


def test_a_database_of_another_program_is_refused(
    cli: Invoke, user_error: ErrorCheck, tmp_path: Path
) -> None:
    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        conn.execute("INSERT INTO alembic_version VALUES ('f4a9b2c7d1e6')")
    conn.close()
    user_error(cli("db", "upgrade", f"sqlite:///{path}"), "was not created by runyard")
    current = cli("db", "current", f"sqlite:///{path}")
    assert current.stdout == "f4a9b2c7d1e6 (not a runyard schema; use a new database)\n"
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("f4a9b2c7d1e6",)
        ]
    conn.close()


def test_bad_and_unreachable_uris_are_one_line_errors(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("db", "upgrade", "not a uri"), "Invalid database URI 'not a uri'")
    result = cli("db", "current", "postgresql://runyard:s3cret@127.0.0.1:1/x")
    user_error(result, "Cannot open the tracking database")
    assert "s3cret" not in result.output


def test_upgrade_and_current_on_postgres(cli: Invoke, pg_database: str) -> None:
    assert cli("db", "current", pg_database).stdout.startswith("empty database")
    result = cli("db", "upgrade", pg_database)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Upgraded the schema from empty database to {HEAD}.\n"
    assert cli("db", "current", pg_database).stdout == f"{HEAD} (up to date)\n"
    assert "nothing to do" in cli("db", "upgrade", pg_database).stdout


def test_upgrade_from_0001_on_postgres(cli: Invoke, pg_database: str, tmp_path: Path) -> None:
    _at_0001(pg_database)
    assert "out of date" in cli("db", "current", pg_database).stdout
    result = cli("db", "upgrade", pg_database)
    assert result.stdout == f"Upgraded the schema from 0001_initial to {HEAD}.\n"
    store = SqlTrackingStore(pg_database, str(tmp_path), auto_upgrade=False)
    try:
        assert store.get_experiment("3").name == "kept"
    finally:
        store.close()
