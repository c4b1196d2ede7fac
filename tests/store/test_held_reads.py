"""Read connections kept by event-loop threads (runyard/store/sql/held_reads.py).

On PostgreSQL a server's event-loop thread reads on one autocommit connection it keeps, instead
of checking one out of the pool per read. These tests check what that must not change: every
read sees what was committed before it, an error leaves the connection usable, a killed or
invalidated connection costs one failed read and is replaced, threads without an event loop
never hold one, at most two threads hold one (an ended thread's is reclaimed), and closing the
store closes them. On SQLite nothing is held: its reads are transactions that must end.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from runyard.entities import Metric, Param
from runyard.errors import RunyardError
from runyard.store.sql.held_reads import HeldReads
from runyard.store.sql.store import SqlTrackingStore
from tests.pg_cluster import PgServer, pg_primary  # noqa: F401  (session fixture)

T = TypeVar("T")


def _in_loop(action: Callable[[], T]) -> T:
    """Run ``action`` on this thread while an event loop runs on it (as a server handler)."""

    async def main() -> T:
        return action()

    return asyncio.run(main())


def _backend_pid(store: SqlTrackingStore) -> int:
    with store._read() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _held(store: SqlTrackingStore) -> HeldReads:
    store._reader()
    assert store._held is not None
    return store._held


def _sessions(uri: str) -> int:
    """Client sessions on the database other than the one counting."""
    engine = create_engine(
        uri.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=NullPool
    )
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_sqlite_reads_hold_nothing(tmp_path: Path) -> None:
    store = SqlTrackingStore(f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "art"))
    try:
        run_id = store.create_run(store.create_experiment("e"), "u", 0, [], "r").info.run_id
        assert _in_loop(lambda: store.get_run(run_id)).info.run_id == run_id
        store._reader()
        assert store._held is None
    finally:
        store.close()


@pytest.fixture
def pg_uri(pg_primary: PgServer) -> str:  # noqa: F811
    return pg_primary.create_database()


@pytest.fixture
def pg_store(pg_uri: str, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    store = SqlTrackingStore(pg_uri, str(tmp_path / "art"))
    yield store
    store.close()


def test_a_loop_thread_reads_on_one_connection_and_sees_every_commit(
    pg_store: SqlTrackingStore,
) -> None:
    store = pg_store
    run_id = store.create_run(store.create_experiment("e"), "u", 0, [], "r").info.run_id

    def reads() -> tuple[set[int], list[dict[str, str]]]:
        pids, seen = set(), []
        for i in range(5):
            store.log_batch(run_id, [], [Param(f"p{i}", str(i))], [])  # written elsewhere
            pids.add(_backend_pid(store))
            seen.append(store.get_run(run_id).data.params)
        return pids, seen

    pids, seen = _in_loop(reads)
    assert len(pids) == 1
    assert [len(p) for p in seen] == [1, 2, 3, 4, 5]
    assert len(_held(store)) == 1
    # The next loop on this thread reuses it too.
    assert _in_loop(lambda: _backend_pid(store)) in pids


def test_threads_without_a_loop_check_out_as_before(pg_store: SqlTrackingStore) -> None:
    store = pg_store
    store.get_experiment("0")
    assert len(_held(store)) == 0
    assert store._reader().pool.checkedout() == 0  # type: ignore[attr-defined]


def test_an_error_leaves_the_held_connection_usable(pg_store: SqlTrackingStore) -> None:
    store = pg_store

    def reads() -> tuple[int, int, str]:
        first = _backend_pid(store)
        with pytest.raises(RunyardError) as missing:
            store.get_run("0" * 32)
        with pytest.raises(RunyardError), store._read() as conn:
            conn.execute(text("SELECT 1/0"))
        return first, _backend_pid(store), missing.value.error_code

    first, after, code = _in_loop(reads)
    assert code == "RESOURCE_DOES_NOT_EXIST"
    assert first == after


def test_a_killed_connection_costs_one_read_then_is_replaced(pg_store: SqlTrackingStore) -> None:
    store = pg_store
    exp = store.create_experiment("survives")

    def reads() -> tuple[int, int, str]:
        before = _backend_pid(store)
        with store._engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": before})
            admin.commit()
        with pytest.raises(RunyardError) as failed:
            store.get_experiment(exp)
        assert store.get_experiment(exp).name == "survives"
        return before, _backend_pid(store), failed.value.error_code

    before, after, code = _in_loop(reads)
    assert code == "TEMPORARILY_UNAVAILABLE"
    assert after != before


def test_reads_while_the_database_is_down_are_unavailable_not_errors(
    pg_primary: PgServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A held connection that must be replaced while nothing accepts connections: the read
    says TEMPORARILY_UNAVAILABLE (clients retry), as a pooled checkout would."""
    store = SqlTrackingStore(pg_primary.create_database(), str(tmp_path / "art"))
    try:
        exp = store.create_experiment("e")

        def reads() -> str:
            _backend_pid(store)
            held = _held(store)
            held._engine = create_engine(  # type: ignore[misc]  # a server that is down
                "postgresql+psycopg://u@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
            )
            next(iter(held._held.values()))[1].invalidate()
            with pytest.raises(RunyardError) as failed:
                store.get_experiment(exp)
            return failed.value.error_code

        assert _in_loop(reads) == "TEMPORARILY_UNAVAILABLE"
    finally:
        store.close()


def test_at_most_two_threads_hold_and_an_ended_threads_is_reclaimed(
    pg_store: SqlTrackingStore,
) -> None:
    store = pg_store
    held = _held(store)
    results: dict[str, Any] = {}
    release = threading.Event()

    def holder(name: str) -> None:
        async def main() -> None:
            results[name] = _backend_pid(store)
            await asyncio.get_running_loop().run_in_executor(None, release.wait)

        asyncio.run(main())

    threads = [threading.Thread(target=holder, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    while len(results) < 2:
        threading.Event().wait(0.01)
    assert len(held) == 2
    # A third loop thread reads on a pooled connection instead.
    third = threading.Thread(target=lambda: results.update(c=_in_loop(lambda: len(held))))
    third.start()
    third.join()
    assert results["c"] == 2
    assert len(held) == 2
    release.set()
    for thread in threads:
        thread.join()
    # Both holders ended: the next loop thread reclaims their connections and holds its own.
    _in_loop(lambda: _backend_pid(store))
    assert len(held) == 1


def test_closing_the_store_closes_held_connections(pg_uri: str, tmp_path: Path) -> None:
    store = SqlTrackingStore(pg_uri, str(tmp_path / "art"))
    _in_loop(lambda: store.get_experiment("0"))
    assert len(_held(store)) == 1
    assert _sessions(pg_uri) >= 1
    store.close()
    assert len(_held(store)) == 0
    # A server process leaves pg_stat_activity a moment after its client hung up.
    deadline = time.monotonic() + 10
    while _sessions(pg_uri) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sessions(pg_uri) == 0


def test_run_searches_are_planned_each_time_fixed_reads_are_prepared(
    pg_store: SqlTrackingStore,
) -> None:
    """psycopg prepares a statement run five times; a run search must not be (its generic plan
    ignores the filter's values, and ad-hoc searches would crowd out the hot statements),
    while the fixed reads stay prepared on the held connection."""
    store = pg_store
    exp = store.create_experiment("plans")
    for i in range(3):
        run_id = store.create_run(exp, "u", i, [], f"r{i}").info.run_id
        store.log_batch(run_id, [Metric("m", float(i), 0, 0)], [Param("p", "x")])

    def reads() -> tuple[list[str], int]:
        for _ in range(12):
            found = store.search_runs([exp], "metrics.m >= 1 and params.p = 'x'", max_results=2,
                                      order_by=["metrics.m DESC"])  # fmt: skip
            assert [r.data.metrics["m"] for r in found] == [2.0, 1.0]
            assert store.get_run(run_id).data.params == {"p": "x"}
        with store._read() as conn:
            threshold = conn.connection.driver_connection.prepare_threshold
            statements = conn.execute(text("SELECT statement FROM pg_prepared_statements"))
            return [str(s) for s in statements.scalars()], threshold

    prepared, threshold = _in_loop(reads)
    assert threshold == 5  # restored after each search
    assert prepared, "the fixed reads are prepared"
    assert not [s for s in prepared if "lead_metric" in s or "f0_metric" in s], prepared
