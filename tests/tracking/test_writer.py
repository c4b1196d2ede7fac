"""The background writer: order, batch limits, refused values, threads, exit and SIGTERM."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

import runyard.tracking.writer as writer_mod
from runyard import Client
from runyard.entities import Metric, Param, RunTag
from runyard.exceptions import MlflowException
from runyard.store.sql.store import SqlTrackingStore
from runyard.tracking.writer import AsyncWriter

Call = tuple[str, list[Metric], list[Param], list[RunTag]]


class RecordingStore(SqlTrackingStore):
    """The real SQLite store, remembering every ``log_batch`` call it served. Its grouped
    writes are switched off, so the writer treats it as it treats a server: calls within
    MLflow's per-request limits (``GroupingStore`` below records the grouped writes)."""

    log_group = None  # type: ignore[assignment]  # not a GroupWriter

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls: list[Call] = []

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        self.calls.append((run_id, list(metrics), list(params), list(tags)))
        super().log_batch(run_id, metrics, params, tags)


class GroupingStore(SqlTrackingStore):
    """The real SQLite store, remembering every grouped write the writer made."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls: list[Call] = []

    def log_group(
        self,
        run_id: str,
        metrics: Sequence[Metric],
        params: Sequence[Param],
        tags: Sequence[RunTag],
    ) -> None:
        self.calls.append((run_id, list(metrics), list(params), list(tags)))
        super().log_group(run_id, metrics, params, tags)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordingStore]:
    st = RecordingStore(f"sqlite:///{tmp_path}/w.db", str(tmp_path / "artifacts"))
    yield st
    st.close()


@pytest.fixture
def make_writer() -> Iterator[Callable[..., AsyncWriter]]:
    made: list[AsyncWriter] = []

    def make(store: SqlTrackingStore, interval: float = 3600.0) -> AsyncWriter:
        w = AsyncWriter(lambda: store, interval)
        made.append(w)
        return w

    yield make
    for w in made:
        w._queue = []
        if w in writer_mod._all_writers:
            writer_mod._all_writers.remove(w)


def new_run(store: SqlTrackingStore) -> str:
    return store.create_run("0", "tester", 0, [], None).info.run_id


def check_limits(calls: list[Call]) -> None:
    for _, metrics, params, tags in calls:
        assert len(metrics) <= 1000
        assert len(params) <= 100
        assert len(tags) <= 100
        assert len(metrics) + len(params) + len(tags) <= 1000
        assert len({p.key for p in params}) == len(params)


def test_values_are_written_in_order(
    store: RecordingStore, make_writer: Callable[..., AsyncWriter]
) -> None:
    writer = make_writer(store)
    run = new_run(store)
    for i in range(3000):
        writer.add_metric(run, "m", float(i), 1000, i)
        if i % 10 == 0:
            writer.add(run, tags=[RunTag("phase", str(i))])
    assert writer.pending() > 0
    writer.flush()
    assert writer.pending() == 0
    history = store.get_metric_history(run, "m")
    assert [m.step for m in history] == list(range(3000))
    assert [m.value for m in history] == [float(i) for i in range(3000)]
    assert store.get_run(run).data.tags["phase"] == "2990"  # the last set_tag wins
    steps = [m.step for _, metrics, _, _ in store.calls for m in metrics]
    assert steps == list(range(3000))  # sent in the order they were logged
    check_limits(store.calls)


def test_same_tag_many_times_keeps_the_last(
    store: RecordingStore, make_writer: Callable[..., AsyncWriter]
) -> None:
    writer = make_writer(store)
    run = new_run(store)
    for i in range(350):
        writer.add(run, tags=[RunTag("t", str(i)), RunTag(f"k{i}", "v")])
    writer.flush()
    tags = store.get_run(run).data.tags
    assert tags["t"] == "349"
    assert all(tags[f"k{i}"] == "v" for i in range(350))
    check_limits(store.calls)


def test_interleaved_runs_keep_their_own_order(
    store: RecordingStore, make_writer: Callable[..., AsyncWriter]
) -> None:
    writer = make_writer(store)
    a, b = new_run(store), new_run(store)
    for i in range(500):
        writer.add_metric(a, "m", float(i), 1, i)
        writer.add_metric(b, "m", float(-i), 1, i)
    writer.add(a, params=[Param("p", "a")])
    writer.add(b, params=[Param("p", "b")])
    writer.flush()
    assert [m.value for m in store.get_metric_history(a, "m")] == [float(i) for i in range(500)]
    assert [m.value for m in store.get_metric_history(b, "m")] == [float(-i) for i in range(500)]
    assert store.get_run(a).data.params == {"p": "a"}
    assert store.get_run(b).data.params == {"p": "b"}
    assert all(rid in (a, b) for rid, *_ in store.calls)


def test_batches_respect_limits(
    store: RecordingStore, make_writer: Callable[..., AsyncWriter]
) -> None:
    writer = make_writer(store)
    run = new_run(store)
    for i in range(2500):
        writer.add_metric(run, f"m{i % 7}", float(i), 1, i)
        if i % 10 == 0:
            writer.add(run, params=[Param(f"p{i}", "v")])
            writer.add(run, tags=[RunTag(f"t{i}", "v")])
    # whole log_batch calls at the limits, as Client.log_batch may queue them
    writer.add(run, metrics=[Metric("big", float(i), 2, i) for i in range(1000)])
    writer.add(run, params=[Param(f"q{i}", "v") for i in range(100)])
    writer.add(run, tags=[RunTag(f"u{i}", "v") for i in range(100)])
    writer.flush()
    check_limits(store.calls)
    data = store.get_run(run).data
    assert len(data.params) == 250 + 100
    assert len([k for k in data.tags if k.startswith(("t", "u"))]) == 250 + 100
    total = sum(len(store.get_metric_history(run, f"m{k}")) for k in range(7))
    assert total == 2500
    assert len(store.get_metric_history(run, "big")) == 1000
    # small values are grouped, not sent one call each
    assert len(store.calls) < 100


def test_a_local_store_gets_grouped_writes(
    tmp_path: Path, make_writer: Callable[..., AsyncWriter]
) -> None:
    """A GroupWriter store gets up to 10,000 queued values of a run per transaction, in order;
    runs and duplicate param keys still split groups."""
    store = GroupingStore(f"sqlite:///{tmp_path}/g.db", str(tmp_path / "artifacts"))
    try:
        writer = make_writer(store)
        a, b = new_run(store), new_run(store)
        for call in range(25):  # 25 log_batch calls of 1,000 metrics each
            metrics = [Metric(f"k{k}", float(call), 7, call * 100 + j)
                       for k in range(10) for j in range(100)]  # fmt: skip
            writer.add(a, metrics=metrics)
        for i in range(30):
            writer.add_metric(b, "m", float(i), 7, i)
        writer.add(b, params=[Param("p", "1")])
        writer.add(b, params=[Param("p", "1")])  # the same key again: a new group
        writer.flush()
        assert [(rid, len(m), len(p)) for rid, m, p, _ in store.calls] == [
            (a, 10_000, 0), (a, 10_000, 0), (a, 5_000, 0), (b, 30, 1), (b, 0, 1)
        ]  # fmt: skip
        for k in range(10):
            history = store.get_metric_history(a, f"k{k}")
            assert [m.step for m in history] == list(range(2_500))
        assert store.get_run(b).data.params == {"p": "1"}
        assert len(store.get_metric_history(b, "m")) == 30
    finally:
        store.close()


def test_a_refused_value_does_not_sink_a_group(
    tmp_path: Path, make_writer: Callable[..., AsyncWriter]
) -> None:
    store = GroupingStore(f"sqlite:///{tmp_path}/g.db", str(tmp_path / "artifacts"))
    try:
        writer = make_writer(store)
        run = new_run(store)
        store.log_batch(run, params=[Param("lr", "0.1")])
        for call in range(3):
            writer.add(run, metrics=[Metric("loss", 1.0, 1, call * 1000 + j) for j in range(1000)])
        writer.add(run, params=[Param("lr", "0.2"), Param("seed", "42")], tags=[RunTag("t", "x")])
        with pytest.raises(MlflowException, match="lr"):
            writer.flush()
        data = store.get_run(run).data
        assert data.params == {"lr": "0.1", "seed": "42"}
        assert data.tags["t"] == "x"
        assert len(store.get_metric_history(run, "loss")) == 3000
    finally:
        store.close()


def test_a_refused_value_does_not_sink_the_batch(
    store: RecordingStore, make_writer: Callable[..., AsyncWriter]
) -> None:
    writer = make_writer(store)
    run = new_run(store)
    store.log_batch(run, params=[Param("lr", "0.1")])
    for i in range(20):
        writer.add_metric(run, "loss", float(i), 1, i)
    writer.add(
        run,
        params=[Param("lr", "0.2"), Param("seed", "42")],  # lr changes: refused
        tags=[RunTag("team", "a")],
    )
    writer.add(run, params=[Param("epochs", "3")])
    with pytest.raises(MlflowException, match="lr") as info:
        writer.flush()
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    data = store.get_run(run).data
    assert data.params == {"lr": "0.1", "seed": "42", "epochs": "3"}
    assert data.tags["team"] == "a"
    assert len(store.get_metric_history(run, "loss")) == 20
    writer.flush()  # reported once


def test_values_of_a_deleted_run_are_refused_others_kept(
    store: RecordingStore, make_writer: Callable[..., AsyncWriter]
) -> None:
    writer = make_writer(store)
    gone, alive = new_run(store), new_run(store)
    store.delete_run(gone)
    writer.add_metric(gone, "m", 1.0, 1, 0)
    writer.add_metric(alive, "m", 2.0, 1, 0)
    writer.add(gone, params=[Param("p", "1")])
    writer.add(alive, params=[Param("p", "2")])
    with pytest.raises(MlflowException, match=gone):
        writer.flush()
    assert store.get_run(alive).data.metrics == {"m": 2.0}
    assert store.get_run(alive).data.params == {"p": "2"}
    assert store.get_run(gone).data.metrics == {}


def test_second_value_of_a_param_in_the_queue_is_refused(
    store: RecordingStore, make_writer: Callable[..., AsyncWriter]
) -> None:
    writer = make_writer(store)
    run = new_run(store)
    writer.add(run, params=[Param("p", "1")])
    writer.add(run, params=[Param("p", "1")])  # same value: fine
    writer.add(run, params=[Param("p", "2")])
    with pytest.raises(MlflowException, match="p"):
        writer.flush()
    assert store.get_run(run).data.params == {"p": "1"}


def test_background_thread_writes_and_defers_errors(
    store: RecordingStore, make_writer: Callable[..., AsyncWriter]
) -> None:
    writer = make_writer(store, interval=0.02)
    run = new_run(store)
    store.log_batch(run, params=[Param("p", "1")])
    writer.add_metric(run, "m", 1.0, 1, 0)
    writer.add(run, params=[Param("p", "2")])
    deadline = time.monotonic() + 30
    while not store.get_run(run).data.metrics and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.get_run(run).data.metrics == {"m": 1.0}  # written without any flush call
    with pytest.raises(MlflowException, match="p"):
        writer.flush()  # the thread's error surfaces here


def test_flush_from_many_threads(logging_mode: str) -> None:
    client = Client()
    run = client.create_run("0").info.run_id
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            start.wait()
            for step in range(400):
                client.log_metric(run, f"t{n}", float(step), timestamp=1, step=step)
                if step % 50 == 0:
                    client.flush()
                if step % 100 == 0:
                    client.get_run(run)
            client.flush()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads)
    assert errors == []
    for n in range(8):
        history = client.get_metric_history(run, f"t{n}")
        assert [m.step for m in history] == list(range(400))
    assert client.get_run(run).data.metrics == {f"t{n}": 399.0 for n in range(8)}


def test_values_survive_a_locked_database(
    tmp_path: Path, make_writer: Callable[..., AsyncWriter]
) -> None:
    # Another process holding SQLite's write lock past the busy timeout makes a write fail.
    # The values must stay queued for the next flush ("nothing is silently dropped").
    db = tmp_path / "locked.db"
    store = SqlTrackingStore(f"sqlite:///{db}", str(tmp_path / "a"), busy_timeout=0.05)
    try:
        writer = make_writer(store)
        run = new_run(store)
        for i in range(10):
            writer.add_metric(run, "m", float(i), 1, i)
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(MlflowException) as info:
                writer.flush()
            assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
            assert writer.pending() > 0
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        writer.flush()
        assert [m.step for m in store.get_metric_history(run, "m")] == list(range(10))
    finally:
        store.close()


# -- process exit -----------------------------------------------------------------------------
def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(body))
    return path


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # Values must still be queued when the process ends: only exit hooks can write them.
    env["RUNYARD_ASYNC_FLUSH_INTERVAL"] = "3600"
    env.update(extra)
    return env


@pytest.mark.parametrize("api", ["fluent", "client"])
def test_exit_without_end_run_keeps_every_point(tmp_path: Path, api: str) -> None:
    if api == "fluent":
        body = """
            import runyard as mlflow
            run = mlflow.start_run()
            for i in range(5000):
                mlflow.log_metric("m", float(i), step=i)
            print(run.info.run_id, flush=True)
        """
    else:
        body = """
            from runyard import Client
            client = Client()
            run = client.create_run("0")
            for i in range(5000):
                client.log_metric(run.info.run_id, "m", float(i), step=i)
            print(run.info.run_id, flush=True)
        """
    done = subprocess.run(
        [sys.executable, str(_script(tmp_path, body))],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[0]
    client = Client()
    history = client.get_metric_history(run_id, "m")
    assert [m.step for m in history] == list(range(5000))
    run = client.get_run(run_id)
    assert run.data.metrics == {"m": 4999.0}
    # MLflow ends a fluent run left open at exit as FINISHED
    assert run.info.status == ("FINISHED" if api == "fluent" else "RUNNING")


def _sigterm_after_ready(script: Path, settle: float = 0.0) -> tuple[int | str, str]:
    """Start ``script``, wait for its "ready" line (then ``settle`` s), SIGTERM it."""
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "ready" in line, proc.stderr.read() if proc.stderr else ""
        time.sleep(settle)
        proc.send_signal(signal.SIGTERM)
        try:
            code: int | str = proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            code = "hung after SIGTERM"
        return code, line.split()[0]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_sigterm_keeps_queued_points(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        """
        import time
        import runyard as mlflow
        run = mlflow.start_run()
        for i in range(3000):
            mlflow.log_metric("m", float(i), step=i)
        print(run.info.run_id, "ready", flush=True)
        time.sleep(120)
        """,
    )
    code, run_id = _sigterm_after_ready(script)
    assert code == -signal.SIGTERM
    history = Client().get_metric_history(run_id, "m")
    assert [m.step for m in history] == list(range(3000))


def test_sigterm_while_flushing_exits_and_keeps_points(tmp_path: Path) -> None:
    # A training loop that flushes often is usually inside flush() when SIGTERM arrives; the
    # process must still flush what is queued and exit. Where the signal lands is up to the
    # scheduler, so try a few processes: every one of them must exit.
    script = _script(
        tmp_path,
        """
        import runyard as mlflow
        run = mlflow.start_run()
        step = 0
        while True:
            mlflow.log_metrics({f"m{k}": float(step) for k in range(200)}, step=step)
            mlflow.flush()
            step += 1
            if step == 5:
                print(run.info.run_id, "ready", flush=True)
        """,
    )
    for _ in range(3):
        code, run_id = _sigterm_after_ready(script, settle=0.2)
        assert code == -signal.SIGTERM
        history = Client().get_metric_history(run_id, "m0")
        assert [m.step for m in history] == list(range(len(history)))
        assert len(history) >= 5
        assert len(Client().get_metric_history(run_id, "m199")) == len(history)
