"""Horizontal scale on PostgreSQL: several server processes on one database and one bucket,
``--workers``, and a read replica (``--read-replica-backend-store-uri``).

Everything is real: ``runyard server`` processes, PostgreSQL clusters (tests/pg_cluster.py),
``moto_server`` for S3 (tests/s3_server.py) and client processes writing concurrently.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from runyard.errors import InvalidParameterValue, RunyardError
from runyard.server.app import ENDPOINTS, open_read_replica
from runyard.server.settings import ServerSettings
from runyard.store.sql.store import SqlTrackingStore
from runyard.tracking.client import MlflowClient
from tests.conftest import FOREIGN_ENV
from tests.live_server import wait_healthy
from tests.pg_cluster import (
    PgServer,
    ReplicaPair,
    execute,
    free_port,
    pg_primary,  # noqa: F401  (fixture)
    pg_replica_pair,  # noqa: F401  (fixture)
)
from tests.s3_server import S3Server, s3_server  # noqa: F401  (fixture)

RUNS_PER_CLIENT = 4
POINTS = 30

#: A client process: creates runs in an experiment through one server and logs params, a
#: metric series, a tag and an artifact in each (argv: uri, experiment id, client number).
CLIENT = textwrap.dedent(
    """
    import os, sys, tempfile, time
    from runyard.entities import Metric
    from runyard.tracking.client import MlflowClient

    uri, exp_id, worker = sys.argv[1], sys.argv[2], int(sys.argv[3])
    runs, points = int(sys.argv[4]), int(sys.argv[5])
    client = MlflowClient(uri)
    folder = tempfile.mkdtemp()
    for i in range(runs):
        run = client.create_run(exp_id, run_name=f"c{worker}-r{i}", tags={"client": str(worker)})
        run_id = run.info.run_id
        client.log_param(run_id, "client", worker)
        client.log_param(run_id, "index", i)
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (s + 1), now, s)
                                          for s in range(points)])
        client.log_metric(run_id, "acc", 0.5 + worker / 100, step=0)
        path = os.path.join(folder, f"c{worker}-r{i}.txt")
        with open(path, "w") as f:
            f.write(f"{run_id}\\n")
        client.log_artifact(run_id, path, "out")
        client.set_terminated(run_id)
    print("done", worker)
    """
)


@dataclass
class Server:
    """A ``runyard server`` process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """Terminate it (and its workers) and wait."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env.update({"RUNYARD_ASYNC_LOGGING": "false", "RUNYARD_HTTP_REQUEST_MAX_RETRIES": "3",
                "RUNYARD_HTTP_REQUEST_BACKOFF_FACTOR": "0.2"})  # fmt: skip
    env.update(extra or {})
    return env


def start_server(root: Path, *args: str, env: dict[str, str] | None = None) -> Server:
    """``runyard server ARGS`` on a free port; waits for ``/health``."""
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    log = root / f"server-{port}.log"
    command = [str(Path(sys.executable).parent / "runyard"), "server", *args,
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=root, env=_child_env(env), stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    if wait_healthy(server.url, process):
        return server
    server.stop()
    pytest.fail(f"server did not start: {' '.join(command)}\n{log.read_text()[-3000:]}")


def run_clients(script_dir: Path, urls: list[str], exp_id: str, clients: int) -> None:
    """``clients`` client processes at once, client ``i`` talking to ``urls[i % len(urls)]``."""
    script = script_dir / "client.py"
    script.write_text(CLIENT)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                urls[i % len(urls)],
                exp_id,
                str(i),
                str(RUNS_PER_CLIENT),
                str(POINTS),
            ],
            env=_child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for i in range(clients)
    ]
    for i, proc in enumerate(procs):
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"client {i} failed:\n{out.decode(errors='replace')}"


def check_everything_visible(url: str, exp_id: str, clients: int) -> None:
    """Through the server at ``url``: every run of every client, with exact counts."""
    client = MlflowClient(url)
    runs = client.search_runs([exp_id], max_results=1000)
    assert len(runs) == clients * RUNS_PER_CLIENT
    assert runs.token is None
    names = sorted(r.info.run_name for r in runs)
    expected = sorted(f"c{c}-r{i}" for c in range(clients) for i in range(RUNS_PER_CLIENT))
    assert names == expected
    for run in runs:
        worker, index = run.info.run_name[1:].split("-r")
        assert run.data.params == {"client": worker, "index": index}
        assert run.data.tags["client"] == worker
        assert run.data.metrics == {"loss": 1.0 / POINTS, "acc": 0.5 + int(worker) / 100}
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(POINTS)]
        files = client.list_artifacts(run.info.run_id, "out")
        assert [f.path for f in files] == [f"out/{run.info.run_name}.txt"]
    # Filtered searches agree too (each client's runs, by param).
    for c in range(clients):
        mine = client.search_runs([exp_id], f"params.client = '{c}'", max_results=1000)
        assert len(mine) == RUNS_PER_CLIENT


def _download(url: str, run_id: str, name: str, dst: Path) -> str:
    path = MlflowClient(url).download_artifacts(run_id, f"out/{name}.txt", str(dst))
    return Path(path).read_text()


@pytest.mark.slow
def test_two_servers_share_one_database_and_bucket(
    pg_primary: PgServer,  # noqa: F811
    s3_server: S3Server,  # noqa: F811
    tmp_path: Path,
) -> None:
    db = pg_primary.create_database()
    SqlTrackingStore(db, "mlflow-artifacts:").close()  # the schema, as `runyard db upgrade` does
    prefix = f"scale-{uuid.uuid4().hex[:8]}"
    args = ("--backend-store-uri", db,
            "--artifacts-destination", f"s3://{s3_server.bucket}/{prefix}")  # fmt: skip
    servers = [start_server(tmp_path / f"s{i}", *args, env=s3_server.env) for i in range(2)]
    try:
        urls = [s.url for s in servers]
        exp_id = MlflowClient(urls[0]).create_experiment("shared")
        clients = 4
        run_clients(tmp_path, urls, exp_id, clients)
        for url in urls:
            check_everything_visible(url, exp_id, clients)
        # Every artifact is in the one bucket, and each server serves the others' uploads.
        keys = s3_server.keys(prefix + "/")
        assert len(keys) == clients * RUNS_PER_CLIENT
        runs = MlflowClient(urls[0]).search_runs([exp_id], max_results=1000)
        for n, run in enumerate(runs):
            content = _download(urls[n % 2], run.info.run_id, run.info.run_name, tmp_path / "dl")
            assert content == f"{run.info.run_id}\n"
    finally:
        for server in servers:
            server.stop()


def _child_pids(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(c) for c in children]
    return found


@pytest.mark.slow
def test_workers_on_postgresql_under_concurrent_writers(
    pg_primary: PgServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    db = pg_primary.create_database()
    SqlTrackingStore(db, "mlflow-artifacts:").close()
    server = start_server(tmp_path / "srv", "--backend-store-uri", db, "--workers", "3",
                          "--artifacts-destination", str(tmp_path / "artifacts"))  # fmt: skip
    try:
        # uvicorn's supervisor runs three worker processes.
        deadline = time.monotonic() + 30
        while len(_child_pids(server.process.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_child_pids(server.process.pid)) >= 3
        exp_id = MlflowClient(server.url).create_experiment("workers")
        clients = 5
        run_clients(tmp_path, [server.url], exp_id, clients)
        check_everything_visible(server.url, exp_id, clients)
        # The workers each hold their own connections to the one database.
        backends = execute(
            db, "SELECT count(DISTINCT client_port) FROM pg_stat_activity WHERE datname = "
            "current_database() AND pid <> pg_backend_pid()",
        )[0][0]  # fmt: skip
        assert backends >= 2
    finally:
        server.stop()


def _run_names(url: str, exp_id: str) -> set[str]:
    return {r.info.run_name for r in MlflowClient(url).search_runs([exp_id], max_results=1000)}


@pytest.mark.slow
def test_read_replica_serves_searches_primary_serves_writes_and_gets(
    pg_replica_pair: ReplicaPair,  # noqa: F811
    tmp_path: Path,
) -> None:
    pair = pg_replica_pair
    SqlTrackingStore(pair.primary_uri, "mlflow-artifacts:").close()
    pair.wait_for_replay()  # the schema reaches the replica
    server = start_server(tmp_path / "srv", "--backend-store-uri", pair.primary_uri,
                          "--read-replica-backend-store-uri", pair.replica_uri,
                          "--artifacts-destination", str(tmp_path / "artifacts"))  # fmt: skip
    try:
        client = MlflowClient(server.url)
        exp_id = client.create_experiment("replica")
        first = client.create_run(exp_id, run_name="first")
        client.log_metric(first.info.run_id, "loss", 1.0, step=0)
        pair.wait_for_replay()
        assert _run_names(server.url, exp_id) == {"first"}

        pair.pause_replay()
        try:
            second = client.create_run(exp_id, run_name="second")  # a write: on the primary
            client.log_metric(second.info.run_id, "loss", 2.0, step=0)
            # Reads by id go to the primary: the client reads back its own write at once.
            got = client.get_run(second.info.run_id)
            assert (got.info.run_name, got.data.metrics) == ("second", {"loss": 2.0})
            # Searches go to the replica, frozen before the write: it is not there yet.
            assert _run_names(server.url, exp_id) == {"first"}
            # So do metric histories (the first run's point is there, the new one's not).
            assert [m.value for m in client.get_metric_history(first.info.run_id, "loss")] == [1.0]
            assert client.get_metric_history(second.info.run_id, "loss") == []
            # Nothing was written on the replica: the primary has both runs.
            rows = execute(pair.primary_uri, "SELECT name FROM runs ORDER BY name")
            assert [r[0] for r in rows] == ["first", "second"]
            rows = execute(pair.replica_uri, "SELECT name FROM runs ORDER BY name")
            assert [r[0] for r in rows] == ["first"]
        finally:
            pair.resume_replay()
        pair.wait_for_replay()
        assert _run_names(server.url, exp_id) == {"first", "second"}
        history = client.get_metric_history(second.info.run_id, "loss")
        assert [m.value for m in history] == [2.0]
    finally:
        server.stop()


@pytest.mark.slow
def test_read_replica_is_checked_at_startup(
    pg_replica_pair: ReplicaPair,  # noqa: F811
    tmp_path: Path,
) -> None:
    pair = pg_replica_pair
    settings = ServerSettings(backend_store_uri=pair.primary_uri)
    with pytest.raises(InvalidParameterValue, match="same as --backend-store-uri"):
        open_read_replica(settings, pair.primary_uri)
    # A replica without runyard's schema is refused with the command that fixes it (never
    # migrated from here: it may be a writable database by mistake).
    empty = f"empty_{uuid.uuid4().hex[:8]}"
    execute(pair.primary.uri(), f'CREATE DATABASE "{empty}"')
    pair.wait_for_replay()
    with pytest.raises(RunyardError, match="runyard db upgrade' on the primary"):
        open_read_replica(settings, pair.replica.uri(empty))
    assert execute(pair.primary.uri(empty), "SELECT to_regclass('runs')::text") == [(None,)]
    # The CLI says it in one line and exits non-zero.
    done = subprocess.run(
        [str(Path(sys.executable).parent / "runyard"), "server",
         "--backend-store-uri", pair.primary_uri,
         "--read-replica-backend-store-uri", "postgresql://postgres@127.0.0.1:1/nowhere",
         "--port", str(free_port())],
        cwd=tmp_path, env=_child_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "Cannot open the read replica" in done.stderr + done.stdout


def test_only_searches_and_histories_read_the_replica() -> None:
    flagged = {(e.namespace, e.path) for e in ENDPOINTS if e.reads_replica}
    assert flagged == {
        ("mlflow", "/runs/search"),
        ("mlflow", "/experiments/search"),
        ("mlflow", "/metrics/get-history"),
        ("mlflow", "/metrics/get-history-bulk-interval"),
        ("mlflow", "/logged-models/search"),
        ("mlflow", "/registered-models/search"),
        ("mlflow", "/model-versions/search"),
        ("runyard", "/runs/keys"),
        ("runyard", "/metrics/get-history-downsampled"),
    }
    # None of them writes: every flagged endpoint is a GET, or a POST whose handler only reads.
    for endpoint in ENDPOINTS:
        if endpoint.reads_replica:
            assert not endpoint.method_handlers


def test_replica_setting_reaches_workers() -> None:
    settings = ServerSettings(
        backend_store_uri="postgresql://a@primary/db",
        read_replica_backend_store_uri="postgresql://a@replica/db",
    )
    env = settings.to_env()
    assert env["RUNYARD_READ_REPLICA_BACKEND_STORE_URI"] == "postgresql://a@replica/db"
    assert ServerSettings.from_env(env).read_replica_backend_store_uri == (
        "postgresql://a@replica/db"
    )
    # MLflow's variable name works too.
    mlflow_env = {"MLFLOW_READ_REPLICA_BACKEND_STORE_URI": "postgresql://b@r/db"}
    assert ServerSettings.from_env(mlflow_env).read_replica_backend_store_uri == (
        "postgresql://b@r/db"
    )


def test_routing_in_process_with_two_sqlite_files(tmp_path: Path) -> None:
    """The same routing without PostgreSQL: the 'replica' is a second database file that
    never receives the writes, so what a request returns shows which one it read."""
    from starlette.testclient import TestClient

    from runyard.server.app import create_app

    replica = f"sqlite:///{tmp_path / 'replica.db'}"
    SqlTrackingStore(replica, "mlflow-artifacts:").close()
    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 'primary.db'}",
        read_replica_backend_store_uri=replica,
        artifacts_destination=str(tmp_path / "artifacts"),
    )
    with TestClient(create_app(settings)) as api:
        api_base = "/api/2.0/mlflow"
        exp_id = api.post(f"{api_base}/experiments/create", json={"name": "e"}).json()[
            "experiment_id"
        ]
        run = api.post(f"{api_base}/runs/create", json={"experiment_id": exp_id}).json()
        run_id = run["run"]["info"]["run_id"]
        # By id: the primary.
        assert api.get(f"{api_base}/experiments/get", params={"experiment_id": exp_id}).is_success
        assert api.get(f"{api_base}/runs/get", params={"run_id": run_id}).is_success
        # Searches: the replica, which has only the default experiment and no runs.
        found = api.post(f"{api_base}/experiments/search", json={"max_results": 10}).json()
        assert [e["name"] for e in found["experiments"]] == ["Default"]
        runs = api.post(f"{api_base}/runs/search", json={"experiment_ids": [exp_id]}).json()
        assert runs == {}
