"""PostgreSQL restarted under a serving ``runyard server``: 503, never 500, then service again.

Writer threads keep sending log-batches (a unique key per batch, ``POINTS`` points each) and
reads while the database is stopped for ``RUNYARD_TEST_PG_OUTAGE_S`` seconds (default 3) and
started again. During the outage every answer is 503 ``TEMPORARILY_UNAVAILABLE`` (which clients
retry); after it the same server process answers 200 again, and every batch is either entirely
stored or entirely absent: the ones answered 200 are all there.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from runyard.errors import RunyardError
from runyard.store.sql import engine
from runyard.store.sql.store import SqlTrackingStore
from tests.pg_cluster import PgCluster, create_database, execute, start_cluster
from tests.server.fault_server import ServerProcess, launch

OUTAGE_S = float(os.environ.get("RUNYARD_TEST_PG_OUTAGE_S", "3"))
WRITERS = 3
POINTS = 100
#: The server must serve again within this many seconds of the database coming back.
RECOVERY_LIMIT_S = 15.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    """A cluster of this module's own: the tests stop and start it."""
    started = start_cluster()
    yield started
    started.stop()


@dataclass
class Traffic:
    """What the client threads saw: (monotonic time, status, error_code) per request, and the
    outcome of every log-batch by its key."""

    answers: list[tuple[float, int, str]] = field(default_factory=list)
    batches: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def record(self, response: httpx.Response) -> None:
        code = ""
        if response.status_code != 200:
            try:
                code = str(response.json().get("error_code", ""))
            except ValueError:
                code = response.text[:100]
        with self.lock:
            self.answers.append((time.monotonic(), response.status_code, code))


def _batch(key: str) -> list[dict[str, object]]:
    now = int(time.time() * 1000)
    return [{"key": key, "value": float(i), "timestamp": now, "step": i} for i in range(POINTS)]


def _writer(url: str, run_id: str, exp_id: str, name: str, traffic: Traffic) -> None:
    api = f"{url}/api/2.0/mlflow"
    n = 0
    key = f"{name}_b{n}"
    metrics = _batch(key)
    with httpx.Client(timeout=60) as http:
        while not traffic.stop.is_set():
            try:
                response = http.post(
                    f"{api}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}
                )
            except httpx.TransportError:
                status = -1
            else:
                traffic.record(response)
                status = response.status_code
            with traffic.lock:
                traffic.batches[key] = status
            if status == 200:
                n += 1
                key = f"{name}_b{n}"
                metrics = _batch(key)
            # else: sent again as it was, as clients do. Its series may have been created in a
            # transaction the outage rolled back, which must not leave a trace.
            reads = (
                http.get(f"{api}/runs/get", params={"run_id": run_id}),
                http.post(f"{api}/runs/search", json={"experiment_ids": [exp_id]}),
            )
            for read in reads:
                traffic.record(read)
            time.sleep(0.02)


def _start_traffic(server: ServerProcess) -> tuple[Traffic, list[threading.Thread], str]:
    api = f"{server.url}/api/2.0/mlflow"
    exp_id = httpx.post(f"{api}/experiments/create", json={"name": "outage"}).json()[
        "experiment_id"
    ]
    run_id = httpx.post(f"{api}/runs/create", json={"experiment_id": exp_id}).json()["run"]["info"][
        "run_id"
    ]
    traffic = Traffic()
    threads = [
        threading.Thread(target=_writer, args=(server.url, run_id, exp_id, f"w{i}", traffic))
        for i in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    return traffic, threads, run_id


def _stored_points(url: str, run_id: str, key: str) -> int:
    response = httpx.get(
        f"{url}/api/2.0/mlflow/metrics/get-history",
        params={"run_id": run_id, "metric_key": key},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return len(response.json().get("metrics", []))


@pytest.mark.slow
def test_server_answers_503_during_a_postgres_restart_then_recovers(
    cluster: PgCluster, tmp_path: Path
) -> None:
    server = launch(create_database(cluster.uri()), tmp_path)
    threads: list[threading.Thread] = []
    try:
        traffic, threads, run_id = _start_traffic(server)
        time.sleep(1.0)  # traffic flows, pooled connections exist
        down_at = time.monotonic()
        cluster.run_tool("pg_ctl", "-D", str(cluster.data), "-m", "fast", "-w", "stop")
        time.sleep(OUTAGE_S)
        cluster.start("fsync=off", "max_connections=200")
        up_at = time.monotonic()
        deadline = up_at + RECOVERY_LIMIT_S
        recovered_at = None
        while time.monotonic() < deadline and recovered_at is None:
            time.sleep(0.05)
            with traffic.lock:
                recovered_at = next(
                    (t for t, status, _ in traffic.answers if t > up_at and status == 200), None
                )
        time.sleep(1.0)  # and it keeps serving
        traffic.stop.set()
        for thread in threads:
            thread.join(timeout=60)

        statuses = [(status, code) for _, status, code in traffic.answers]
        unexpected = [s for s in statuses if s[0] not in (200, 503)]
        assert not unexpected, f"answers other than 200/503: {unexpected[:5]}"
        unavailable = [s for s in statuses if s[0] == 503]
        assert unavailable, "no request met the outage"
        assert {code for _, code in unavailable} == {"TEMPORARILY_UNAVAILABLE"}
        assert recovered_at is not None, f"no 200 within {RECOVERY_LIMIT_S}s of the restart"
        late = [s for t, s, _ in traffic.answers if t > recovered_at + 0.5 and s != 200]
        assert not late, f"errors after recovery: {late[:5]}"
        assert all(code != -1 for code in traffic.batches.values()), "a request had no answer"

        # All or nothing per batch; everything answered 200 is stored.
        for key, status in traffic.batches.items():
            stored = _stored_points(server.url, run_id, key)
            assert stored in (0, POINTS), f"{key}: partial batch of {stored} points"
            if status == 200:
                assert stored == POINTS, f"{key} was acknowledged but holds {stored} points"
        assert "Traceback" not in server.logs()
        refused_at = [t for t, status, _ in traffic.answers if status == 503]
        print(
            f"\npg outage {OUTAGE_S:.1f}s (stopped {up_at - down_at:.1f}s): "
            f"{len(statuses)} requests, {len(unavailable)} answered 503 over "
            f"{refused_at[-1] - refused_at[0]:.2f}s, first 200 "
            f"{recovered_at - up_at:.2f}s after the database accepted connections again; "
            f"{sum(s == 200 for s in traffic.batches.values())} of {len(traffic.batches)} "
            "batches acknowledged"
        )
    finally:
        for thread in threads:
            thread.join(timeout=60)
        server.stop()


def _read_while_killed(store: SqlTrackingStore, opener: Any, run_id: str, admin: str) -> None:
    """Read a run twice on one connection; between the reads its backend is terminated."""
    with opener() as conn:
        store._run_row(conn, run_id)
        execute(
            admin,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
        )
        store._run_row(conn, run_id)


@pytest.mark.slow
def test_a_connection_lost_mid_read_is_temporary_and_dropped(
    cluster: PgCluster, tmp_path: Path
) -> None:
    """The server of a pooled connection goes away under a prepared statement (which runs on
    the driver's cursor, unseen by SQLAlchemy): TEMPORARILY_UNAVAILABLE, not an internal error,
    and the dead connection is not handed out again."""
    store = SqlTrackingStore(create_database(cluster.uri()), str(tmp_path / "art"))
    try:
        exp = store.create_experiment("lost")
        run_id = store.create_run(exp, "u", 0, [], "r").info.run_id
        for opener in (store._read, store._write):
            with pytest.raises(RunyardError) as caught:
                _read_while_killed(store, opener, run_id, cluster.uri())
            assert caught.value.error_code == "TEMPORARILY_UNAVAILABLE"
            assert store.get_run(run_id).info.run_id == run_id  # a fresh connection
    finally:
        store.close()


def test_an_unanswering_database_host_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that accepts TCP but never speaks (a hung server, a black-holed proxy) costs
    PG_CONNECT_TIMEOUT seconds, not a worker for ever."""
    monkeypatch.setattr(engine, "PG_CONNECT_TIMEOUT", 1)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(RunyardError) as caught:
            SqlTrackingStore(f"postgresql://u@127.0.0.1:{port}/db", "unused")
        assert time.monotonic() - started < 8
    assert "timeout" in caught.value.message
