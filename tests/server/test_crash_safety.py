"""Crash safety: SIGKILL the server during heavy logging, kill clients mid-run.

Writer threads send log-batches of ``POINTS`` points under a key of their own per batch while
the server is killed (SIGKILL, no shutdown code) ``KILLS`` times at random moments and started
again on the same store. Afterwards every batch is entirely present or entirely absent, each
acknowledged batch is present, every metric summary agrees with the points stored under it, the
database passes its own integrity check (``PRAGMA integrity_check`` on SQLite, amcheck on
PostgreSQL) and the restarted server serves. Runs on SQLite, and on PostgreSQL when
``RUNYARD_TEST_POSTGRES_URI`` is set (as CI does under ``scripts/with-postgres``).

Knobs: ``RUNYARD_TEST_KILLS`` (default 4), ``RUNYARD_TEST_KILL_SEED`` (default: random, printed).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from runyard.entities import Metric
from runyard.errors import ResourceDoesNotExist
from runyard.store.sql.store import SqlTrackingStore
from tests.conftest import FOREIGN_ENV
from tests.pg_cluster import create_database, drop_database, execute
from tests.server.fault_server import ServerProcess, launch

POSTGRES_URI = os.environ.get("RUNYARD_TEST_POSTGRES_URI")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URI else ["sqlite"]
KILLS = int(os.environ.get("RUNYARD_TEST_KILLS", "4"))
WRITERS = 4
POINTS = 100


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new database on the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crash.db'}"
        return
    assert POSTGRES_URI is not None
    uri = create_database(POSTGRES_URI)
    yield uri
    drop_database(uri)


@dataclass
class Ledger:
    """Every batch sent, by key: True once the server acknowledged it (200); the keys of
    batches cut off in flight (sent, no answer) and refused (no connection)."""

    sent: dict[str, bool] = field(default_factory=dict)
    cut: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    run_of: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def _writer(url: str, run_id: str, name: str, ledger: Ledger) -> None:
    n = 0
    with httpx.Client(timeout=30) as http:
        while not ledger.stop.is_set():
            key = f"{name}_b{n}"
            n += 1
            now = int(time.time() * 1000)
            points = [
                {"key": key, "value": float(i), "timestamp": now + i, "step": i}
                for i in range(POINTS)
            ]
            with ledger.lock:
                ledger.sent[key] = False
                ledger.run_of[key] = run_id
            try:
                response = http.post(
                    f"{url}/api/2.0/mlflow/runs/log-batch",
                    json={"run_id": run_id, "metrics": points},
                )
            except httpx.ConnectError:  # the server is not back yet
                with ledger.lock:
                    ledger.refused.add(key)
                time.sleep(0.05)
                continue
            except httpx.TransportError:  # the server died under us
                with ledger.lock:
                    ledger.cut.add(key)
                continue
            if response.status_code == 200:
                with ledger.lock:
                    ledger.sent[key] = True


def _post(url: str, path: str, body: dict[str, object]) -> dict[str, object]:
    response = httpx.post(f"{url}/api/2.0/mlflow/{path}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    doc: dict[str, object] = response.json()
    return doc


def _new_run(url: str, exp_id: str) -> str:
    run = _post(url, "runs/create", {"experiment_id": exp_id})["run"]
    return str(run["info"]["run_id"])  # type: ignore[index]


def _stored_per_key(uri: str) -> tuple[dict[str, int], list[tuple[str, int, int]]]:
    """Points stored per metric key, and (key, summary count, points) where they disagree."""
    engine = create_engine(uri.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT s.key, s.point_count, "
                    "(SELECT count(*) FROM metric_points p WHERE p.series_id = s.series_id) "
                    "FROM metric_summaries s"
                )
            ).all()
            orphans = conn.execute(
                text(
                    "SELECT count(*) FROM metric_points p WHERE NOT EXISTS "
                    "(SELECT 1 FROM metric_summaries s WHERE s.series_id = p.series_id)"
                )
            ).scalar()
    finally:
        engine.dispose()
    assert orphans == 0, f"{orphans} points belong to no series"
    stored = {key: int(points) for key, _, points in rows}
    mismatched = [(key, int(c), int(p)) for key, c, p in rows if int(c) != int(p)]
    return stored, mismatched


def _integrity(uri: str) -> str:
    """The database's own verdict: 'ok' when nothing is corrupt."""
    if uri.startswith("sqlite:///"):
        with sqlite3.connect(uri[len("sqlite:///") :]) as conn:
            found = conn.execute("PRAGMA integrity_check").fetchall()
        return "ok" if found == [("ok",)] else repr(found)
    execute(uri, "CREATE EXTENSION IF NOT EXISTS amcheck")
    indexes = execute(
        uri,
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am am ON am.oid = c.relam "
        "WHERE am.amname = 'btree' AND c.relnamespace = 'public'::regnamespace",
    )
    for (name,) in indexes:  # raises on a corrupt index or a heap row missing from it
        execute(uri, "SELECT bt_index_check(%s::regclass, true)", (name,))
    return "ok"


@pytest.mark.slow
def test_sigkill_during_heavy_logging_never_leaves_a_partial_batch(
    backend: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("RUNYARD_TEST_KILL_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    server = launch(backend, tmp_path)
    ledger = Ledger()
    threads: list[threading.Thread] = []
    try:
        exp_id = str(_post(server.url, "experiments/create", {"name": "crash"})["experiment_id"])
        for i in range(WRITERS):
            run_id = _new_run(server.url, exp_id)
            args = (server.url, run_id, f"w{i}", ledger)
            threads.append(threading.Thread(target=_writer, args=args))
        for thread in threads:
            thread.start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.5))
            server.kill()
            server.start()
        time.sleep(0.5)
        ledger.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        # The restarted server serves: a new run takes a batch.
        run_id = _new_run(server.url, exp_id)
        point = {"key": "after", "value": 1.0, "timestamp": 1, "step": 0}
        _post(server.url, "runs/log-batch", {"run_id": run_id, "metrics": [point]})
    finally:
        ledger.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        server.stop()

    stored, mismatched = _stored_per_key(backend)
    partial = {k: n for k, n in stored.items() if k != "after" and n != POINTS}
    lost = [k for k, acked in ledger.sent.items() if acked and stored.get(k) != POINTS]
    print(
        f"\n{backend.split(':')[0]} seed={seed}: {KILLS} kills, {WRITERS} writers, "
        f"{len(ledger.sent)} batches attempted ({len(ledger.refused)} refused while down), "
        f"{sum(ledger.sent.values())} acknowledged, {len(stored) - 1} stored; "
        f"{len(ledger.cut)} cut off in flight ({sum(k in stored for k in ledger.cut)} of those "
        f"stored whole), {len(partial)} partial"
    )
    assert not partial, f"partial batches (seed {seed}): {list(partial.items())[:5]}"
    assert not lost, f"acknowledged batches missing (seed {seed}): {lost[:5]}"
    assert not mismatched, f"summaries disagree with points (seed {seed}): {mismatched[:5]}"
    assert stored.get("after") == 1
    assert sum(ledger.sent.values()) > 0
    assert _integrity(backend) == "ok"


# -- clients killed mid-run ----------------------------------------------------------------------

_CLIENT = """
import sys, time
import runyard
runyard.set_tracking_uri(sys.argv[1])
runyard.set_experiment("killed")
run = runyard.start_run()
print(run.info.run_id, flush=True)
step = 0
while True:
    runyard.log_metrics({f"m{k}": float(step) for k in range(20)}, step=step)
    step += 1
    time.sleep(0.01)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["server", "embedded"])
def test_a_killed_client_leaves_its_run_running(mode: str, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'client.db'}"
    server: ServerProcess | None = launch(uri, tmp_path) if mode == "server" else None
    target = server.url if server is not None else uri
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env["RUNYARD_ASYNC_FLUSH_INTERVAL"] = "0.05"
    errors = tmp_path / "client.err"
    with open(errors, "wb") as err:
        client = subprocess.Popen(
            [sys.executable, "-c", _CLIENT, target],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    try:
        assert client.stdout is not None
        run_id = client.stdout.readline().decode().strip()
        assert len(run_id) == 32, errors.read_text()
        store = SqlTrackingStore(uri, str(tmp_path / "art"), auto_upgrade=False)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if len(store.get_metric_history(run_id, "m0")) >= 20:
                    break
                time.sleep(0.05)
            client.send_signal(signal.SIGKILL)  # mid-run, and likely mid-write
            client.wait(timeout=30)
            run = store.get_run(run_id)
        finally:
            store.close()
        assert run.info.status == "RUNNING"
        assert run.info.end_time is None
        assert len(run.data.metrics) == 20
        assert _integrity(uri) == "ok"
        if server is not None:  # and the server still serves it
            doc = httpx.get(f"{server.url}/api/2.0/mlflow/runs/get", params={"run_id": run_id})
            assert doc.json()["run"]["info"]["status"] == "RUNNING"
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        if client.stdout is not None:
            client.stdout.close()
        if server is not None:
            server.stop()


# -- a refused batch leaves nothing behind (store level) ------------------------------------------


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    opened = SqlTrackingStore(backend, str(tmp_path / "art"))
    yield opened
    opened.close()


def test_a_rolled_back_batch_leaves_no_series_behind(store: SqlTrackingStore) -> None:
    """A batch refused after its series were created (an unknown model id here; a dropped
    database connection in production) rolls back entirely, and the series ids it saw are
    not reused for later points: on SQLite the next new series gets the same id."""
    exp = store.create_experiment("rollback")
    run_id = store.create_run(exp, "u", 0, [], "r").info.run_id
    with pytest.raises(ResourceDoesNotExist):
        store.log_batch(run_id, [Metric("a", 1.0, 0, 0, None, "no-such-model")])
    assert store.get_metric_history(run_id, "a") == []
    store.log_batch(run_id, [Metric("b", 2.0, 0, 0)])
    store.log_batch(run_id, [Metric("a", 3.0, 0, 1)])
    assert [(m.value, m.step) for m in store.get_metric_history(run_id, "a")] == [(3.0, 1)]
    assert [(m.value, m.step) for m in store.get_metric_history(run_id, "b")] == [(2.0, 0)]
    assert store.get_run(run_id).data.metrics == {"a": 3.0, "b": 2.0}
