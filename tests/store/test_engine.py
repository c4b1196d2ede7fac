"""Engine set-up and migrations: head revision, idempotence, refusal of foreign databases."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from runyard.errors import RunyardError
from runyard.store.sql import schema
from runyard.store.sql.engine import (
    MIGRATIONS_DIR,
    current_revision,
    make_engine,
    prepare_schema,
    upgrade,
)
from runyard.store.sql.store import SqlTrackingStore


def test_schema_revision_is_alembic_head() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(cfg).get_current_head() == schema.SCHEMA_REVISION


def test_migrations_create_the_declared_schema(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    upgrade(engine)  # idempotent
    assert current_revision(engine) == schema.SCHEMA_REVISION
    inspector = inspect(engine)
    for table in schema.metadata.sorted_tables:
        migrated = {c["name"] for c in inspector.get_columns(table.name)}
        assert migrated == {c.name for c in table.columns}, table.name
        declared_indexes = {i.name for i in table.indexes}
        assert declared_indexes <= {i["name"] for i in inspector.get_indexes(table.name)}


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL


def test_refuses_database_of_another_program(tmp_path: Path) -> None:
    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        conn.execute("INSERT INTO alembic_version VALUES ('f4a9b2c7d1e6')")
    with pytest.raises(RunyardError, match="was not created by runyard"):
        SqlTrackingStore(f"sqlite:///{path}", str(tmp_path))


def test_empty_database_is_initialised_even_without_auto_upgrade(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    prepare_schema(engine, auto_upgrade=False)
    assert current_revision(engine) == schema.SCHEMA_REVISION
    prepare_schema(engine, auto_upgrade=False)  # at head: nothing to do


def test_concurrent_first_open(tmp_path: Path) -> None:
    """Several processes opening a new database at once all succeed, migrating once."""
    db = tmp_path / "race.db"
    code = (
        "import sys\nfrom runyard.store.sql.store import SqlTrackingStore\n"
        f"s = SqlTrackingStore('sqlite:///{db}', '{tmp_path}')\n"
        "s.create_experiment(sys.argv[1])\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, f"e{i}"], stderr=subprocess.PIPE)
        for i in range(4)
    ]
    errors = [p.communicate()[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    store = SqlTrackingStore(f"sqlite:///{db}", str(tmp_path))
    assert {e.name for e in store.search_experiments()} == {"Default", "e0", "e1", "e2", "e3"}


def test_upgrade_from_0001_keeps_data_and_adds_the_model_tables(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(uri)
    upgrade(engine, "0001_initial")
    assert current_revision(engine) == "0001_initial"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage,"
                " creation_time, last_update_time) VALUES (7, 'kept', '/a', 'active', 1, 1)"
            )
        )
    engine.dispose()
    store = SqlTrackingStore(uri, str(tmp_path / "artifacts"))  # the embedded default upgrades
    try:
        assert current_revision(store.engine) == schema.SCHEMA_REVISION
        assert store.get_experiment("7").name == "kept"
        model = store.create_registered_model("after-upgrade")
        assert model.name == "after-upgrade"
    finally:
        store.close()
