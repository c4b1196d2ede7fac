"""gc_paused: the collector waits during bulk reads and comes back exactly as it was."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard.entities import Metric
from runyard.store.sql.store import SqlTrackingStore
from runyard.utils.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_nested_pauses_end_with_the_outermost() -> None:
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_pauses_in_threads_restore_once_all_end() -> None:
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    with gc_paused():
        thread.start()
        assert inside.wait(5)
    assert not gc.isenabled()  # the other thread's pause is still on
    release.set()
    thread.join(5)
    assert gc.isenabled()


def test_history_reads_leave_the_collector_on(tmp_path: Path) -> None:
    store = SqlTrackingStore(f"sqlite:///{tmp_path}/g.db", f"{tmp_path}/art")
    try:
        run_id = store.create_run(store.create_experiment("e"), "u", 0, [], "r").info.run_id
        store.log_batch(run_id, [Metric("m", float(i), i, i) for i in range(1000)])
        assert len(store.get_metric_history(run_id, "m")) == 1000
        assert len(store.get_metric_history(run_id, "m", 10)) == 10
        with pytest.raises(Exception, match="page token"):
            store.get_metric_history(run_id, "m", 10, "not a token")
        assert gc.isenabled()
    finally:
        store.close()
