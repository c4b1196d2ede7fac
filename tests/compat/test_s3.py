"""The official mlflow 3.17.2 client against ``runyard server --artifacts-destination s3://...``,
with its metadata on SQLite and on PostgreSQL (the production set-up of docs/deploy.md).

The client only speaks the ``mlflow-artifacts`` protocol to the server (it has no AWS settings);
the server stores the bytes in a real S3-compatible bucket (moto_server), under the prefix, and
the runs in a real database: a SQLite file, or a database on the session's PostgreSQL server
whose schema ``runyard db upgrade`` created, as an operator does before starting the server.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import ClientResult, run_official_client
from tests.pg_cluster import PgServer, execute, pg_primary  # noqa: F401  (fixture)
from tests.s3_server import (
    ProxyServer,
    S3Server,
    s3_server,  # noqa: F401
    start_proxy_server,
    stop_proxy_server,
)

pytestmark = pytest.mark.slow

BIG_SIZE = 12 * 1024 * 1024

SCRIPT = """
import hashlib
import pathlib

work = pathlib.Path.cwd()


def sha(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


exp_id = mlflow.set_experiment(PARAMS["experiment"]).experiment_id

with section("upload") as out:
    tree = work / "tree"
    (tree / "nested").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "nested" / "b.json").write_text('{"b": 2}')
    big = work / "big.bin"
    big.write_bytes(bytes(range(256)) * (PARAMS["big_size"] // 256))
    with mlflow.start_run() as run:
        mlflow.log_params({"lr": "0.01", "layers": "3"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.set_tag("stage", "prod")
        mlflow.log_artifacts(str(tree), "tree")
        mlflow.log_artifact(str(big), "blobs")
        mlflow.log_text("héllo", "notes/hello.txt")
        mlflow.log_dict({"k": [1, 2]}, "notes/d.json")
    out["run_id"] = run.info.run_id
    out["artifact_uri"] = run.info.artifact_uri
    out["big_sha"] = sha(big)

run_id = RESULT["upload"]["run_id"]

with section("data") as out:
    data = client.get_run(run_id).data
    out["params"] = data.params
    out["metrics"] = data.metrics
    out["stage"] = data.tags.get("stage")
    out["history"] = [[m.step, m.value] for m in client.get_metric_history(run_id, "loss")]
    found = mlflow.search_runs([exp_id], "params.lr = '0.01'", output_format="list")
    out["found"] = [r.info.run_id for r in found]

with section("list") as out:
    out["root"] = [[f.path, f.is_dir, f.file_size] for f in client.list_artifacts(run_id)]
    out["tree"] = [[f.path, f.is_dir, f.file_size] for f in client.list_artifacts(run_id, "tree")]
    out["blobs"] = [[f.path, f.file_size] for f in client.list_artifacts(run_id, "blobs")]

with section("download") as out:
    root = pathlib.Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path="dl"))
    out["files"] = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
    )
    out["big_sha"] = sha(root / "blobs" / "big.bin")
    one = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="tree/nested/b.json", dst_path="one"
    )
    out["one"] = pathlib.Path(one).read_text()
    out["text"] = mlflow.artifacts.load_text(f"runs:/{run_id}/notes/hello.txt")
    out["dict"] = mlflow.artifacts.load_dict(f"runs:/{run_id}/notes/d.json")
"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """The server's ``--backend-store-uri``: None for a SQLite file, or a new database on the
    session's PostgreSQL server, upgraded with ``runyard db upgrade``."""
    if request.param == "sqlite":
        return None
    server: PgServer = request.getfixturevalue("pg_primary")
    uri = server.create_database()
    upgrade = subprocess.run(
        [str(Path(sys.executable).parent / "runyard"), "db", "upgrade", uri],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    return uri


@pytest.fixture(scope="module")
def s3_proxy(
    backend: str | None,
    s3_server: S3Server,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyServer]:
    server = start_proxy_server(
        tmp_path_factory.mktemp("compat-s3"), s3_server, f"compat-{uuid.uuid4().hex[:8]}", backend
    )
    yield server
    stop_proxy_server(server)


@pytest.fixture(scope="module")
def result(
    s3_proxy: ProxyServer, compat_venv: Path, tmp_path_factory: pytest.TempPathFactory
) -> ClientResult:
    """The official client's script, run once against the S3-backed server."""
    workdir = tmp_path_factory.mktemp("compat-s3-client")
    params: dict[str, Any] = {"experiment": f"s3-{uuid.uuid4().hex[:8]}", "big_size": BIG_SIZE}
    # The client has no S3 credentials: every byte goes through the server's proxy.
    return run_official_client(
        compat_venv, workdir, SCRIPT, s3_proxy.url, s3_proxy.log, params, ("AWS_",)
    )


def test_uploads_land_in_the_bucket_under_the_prefix(
    result: ClientResult,
    s3_proxy: ProxyServer,
    s3_server: S3Server,  # noqa: F811
) -> None:
    upload = result["upload"]
    assert upload["artifact_uri"].startswith("mlflow-artifacts:/")
    root = upload["artifact_uri"].removeprefix("mlflow-artifacts:").strip("/")
    keys = sorted(s3_server.keys(f"{s3_proxy.prefix}/{root}"))
    assert [key.removeprefix(f"{s3_proxy.prefix}/{root}/") for key in keys] == [
        "blobs/big.bin",
        "notes/d.json",
        "notes/hello.txt",
        "tree/a.txt",
        "tree/nested/b.json",
    ]
    body = s3_server.client().get_object(
        Bucket=s3_server.bucket, Key=f"{s3_proxy.prefix}/{root}/blobs/big.bin"
    )["Body"]
    assert hashlib.sha256(body.read()).hexdigest() == upload["big_sha"]


def test_runs_metrics_and_params_are_stored_in_the_backend(
    result: ClientResult, backend: str | None
) -> None:
    data = result["data"]
    run_id = result["upload"]["run_id"]
    assert data["params"] == {"lr": "0.01", "layers": "3"}
    assert data["metrics"] == {"loss": 0.2}
    assert data["stage"] == "prod"
    assert data["history"] == [[s, 1.0 / (s + 1)] for s in range(5)]
    assert data["found"] == [run_id]
    if backend is not None:  # the rows are in PostgreSQL itself, not somewhere else
        stored = execute(
            backend,
            "SELECT count(*) FROM metric_points p JOIN metric_summaries s"
            " ON s.series_id = p.series_id WHERE s.run_uuid = %s AND s.key = 'loss'",
            (run_id,),
        )
        assert stored == [(5,)]


def test_listing_through_the_proxy(result: ClientResult) -> None:
    listing = result["list"]
    assert listing["root"] == [
        ["blobs", True, None],
        ["notes", True, None],
        ["tree", True, None],
    ]
    assert listing["tree"] == [["tree/a.txt", False, 1], ["tree/nested", True, None]]
    assert listing["blobs"] == [["blobs/big.bin", BIG_SIZE]]


def test_download_and_load_through_the_proxy(result: ClientResult) -> None:
    download = result["download"]
    assert download["files"] == [
        "blobs/big.bin",
        "notes/d.json",
        "notes/hello.txt",
        "tree/a.txt",
        "tree/nested/b.json",
    ]
    assert download["big_sha"] == result["upload"]["big_sha"]
    assert download["one"] == '{"b": 2}'
    assert download["text"] == "héllo"
    assert download["dict"] == {"k": [1, 2]}
