"""``runyard doctor``: configuration shown with secrets masked, real database and artifact checks
(SQLite, PostgreSQL, a local folder, an S3 bucket on a moto server), exit status 1 on failure."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from runyard.cli.doctor import mask_secrets
from runyard.store.sql import schema
from runyard.store.sql.engine import make_engine, upgrade
from tests.cli.conftest import Invoke
from tests.pg_cluster import PgServer, pg_primary  # noqa: F401  (session fixture)
from tests.s3_server import S3Server, s3_server  # noqa: F401  (session fixture)

HEAD = schema.SCHEMA_REVISION


@pytest.fixture
def pg_database(request: pytest.FixtureRequest) -> str:
    """The URI of a new, empty PostgreSQL database."""
    server: PgServer = request.getfixturevalue("pg_primary")
    return server.create_database()


@pytest.fixture
def s3(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The session's moto server, with its endpoint and credentials in the environment."""
    server: S3Server = request.getfixturevalue("s3_server")
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    return server


def _json(cli: Invoke, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("doctor", "--output", "json", *args)
    return result.exit_code, json.loads(result.stdout)


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def _checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


def test_local_setup_passes_and_the_write_probe_is_removed(cli: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    dest = tmp_path / "artifacts"
    dest.mkdir()
    (dest / "existing.txt").write_text("x")
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    engine.dispose()
    code, report = _json(
        cli,
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--artifacts-destination",
        str(dest),
        "--write-check",
    )
    assert code == 0, report
    assert report["ok"] is True
    checks = _checks(report)
    assert checks["tracking database"]["detail"] == f"reachable; schema {HEAD} (up to date)"
    proxied = checks["artifact store (proxied)"]
    assert proxied["ok"] is True
    assert "1 entries at the root" in proxied["detail"]
    assert "wrote, listed and deleted runyard-doctor-" in proxied["detail"]
    assert sorted(p.name for p in dest.iterdir()) == ["existing.txt"]  # the probe is gone
    config = report["configuration"]
    assert config["tracking_uri"] == f"sqlite:///{db}"
    assert config["artifacts_destination"] == str(dest)
    assert set(report["drivers"]) == {"psycopg", "boto3"}


def test_table_output_and_defaults_from_the_environment(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_BACKEND_STORE_URI", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("RUNYARD_DEFAULT_ARTIFACT_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("RUNYARD_REGISTRY_STORE_URI", "postgresql://reg:regpass@127.0.0.1:1/reg")
    result = cli("doctor")
    assert result.exit_code == 1, result.output  # the registry database is unreachable
    out = result.stdout
    assert "hunter2" not in out
    assert "aws-secret" not in out
    assert "regpass" not in out
    rows = {cells[0]: cells[1:] for cells in map(_cells, out.splitlines()) if len(cells) > 1}
    assert rows["tracking uri"] == [f"sqlite:///{tmp_path / 'env.db'}"]
    assert rows["registry uri"] == ["postgresql://reg:***@127.0.0.1:1/reg"]
    assert rows["MLFLOW_TRACKING_PASSWORD"] == ["***"]
    assert rows["registry database"][0] == "FAIL"
    assert rows["artifact store (default root)"][0] == "ok"
    assert "env.db does not exist yet; the server creates it" in out
    assert not (tmp_path / "env.db").exists()  # doctor creates nothing


def test_outdated_postgres_schema_fails_with_the_command_to_run(
    cli: Invoke, pg_database: str, tmp_path: Path
) -> None:
    engine = make_engine(pg_database)
    upgrade(engine, "0001_initial")
    engine.dispose()
    code, report = _json(
        cli, "--backend-store-uri", pg_database, "--artifacts-destination", str(tmp_path)
    )
    assert code == 1
    assert report["ok"] is False
    detail = _checks(report)["tracking database"]["detail"]
    assert "0001_initial (out of date" in detail
    assert f"run: runyard db upgrade '{pg_database}'" in detail
    cli("db", "upgrade", pg_database)
    code, report = _json(
        cli, "--backend-store-uri", pg_database, "--artifacts-destination", str(tmp_path)
    )
    assert code == 0, report
    assert _checks(report)["tracking database"]["detail"].endswith("(up to date)")


def test_empty_postgres_database_is_fine(cli: Invoke, pg_database: str, tmp_path: Path) -> None:
    code, report = _json(
        cli, "--backend-store-uri", pg_database, "--artifacts-destination", str(tmp_path)
    )
    assert code == 0, report
    assert "empty, the server creates the schema" in _checks(report)["tracking database"]["detail"]


def test_unusable_artifact_destination_fails_the_write_check(cli: Invoke, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, report = _json(
        cli,
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'ok.db'}",
        "--artifacts-destination",
        str(blocker),
        "--write-check",
    )
    assert code == 1
    check = _checks(report)["artifact store (proxied)"]
    assert check["ok"] is False
    assert str(blocker) in check["detail"]
    assert blocker.read_text() == "not a folder"


@pytest.mark.slow
def test_s3_artifact_store_is_listed_and_written(cli: Invoke, s3: S3Server, tmp_path: Path) -> None:
    root = f"s3://{s3.bucket}/doctor-{tmp_path.name}"
    code, report = _json(
        cli,
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'ok.db'}",
        "--artifacts-destination",
        root,
        "--write-check",
    )
    assert code == 0, report
    check = _checks(report)["artifact store (proxied)"]
    assert check["detail"].startswith("reachable; 0 entries at the root; wrote, listed and deleted")
    assert s3.keys(f"doctor-{tmp_path.name}/") == []
    assert report["environment"]["AWS_SECRET_ACCESS_KEY"] == "***"
    assert report["environment"]["MLFLOW_S3_ENDPOINT_URL"] == s3.endpoint_url
    missing = f"s3://no-such-bucket-{tmp_path.name.lower().replace('_', '-')}/x"
    code, report = _json(
        cli, "--backend-store-uri", f"sqlite:///{tmp_path / 'ok.db'}", "--default-artifact-root",
        missing, "--no-serve-artifacts",
    )  # fmt: skip
    assert code == 1
    assert _checks(report)["artifact store (default root)"]["ok"] is False


def test_mask_secrets() -> None:
    assert mask_secrets("MLFLOW_TRACKING_TOKEN", "abc") == "***"
    assert mask_secrets("AWS_ACCESS_KEY_ID", "AKIA") == "***"
    assert mask_secrets("RUNYARD_BACKEND_STORE_URI", "postgresql://u:p@h/db") == (
        "postgresql://u:***@h/db"
    )
    assert mask_secrets("RUNYARD_PORT", "5000") == "5000"
