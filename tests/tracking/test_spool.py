"""The spool file: whole records, torn tails, limits, locks, idempotent replays; and the writer
moving values there while a real SQLite database stays locked, then replaying them."""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard import Client
from runyard.entities import Metric, Param, RunTag
from runyard.store.sql.store import SqlTrackingStore
from runyard.tracking.registry import get_writer, release
from runyard.tracking.spool import (
    SpoolRecord,
    SpoolWriter,
    list_spools,
    locked_spool,
    read_header,
    read_records,
    replay_spool,
    start_offset,
)

URI = "http://tracking.example:5000"


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "spool"
    monkeypatch.setenv("RUNYARD_SPOOL_DIR", str(directory))
    return directory


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlTrackingStore]:
    st = SqlTrackingStore(f"sqlite:///{tmp_path}/replay.db", str(tmp_path / "artifacts"))
    yield st
    st.close()


def batch(run_id: str, steps: range, **extra: object) -> SpoolRecord:
    metrics = tuple(Metric("loss", 1.0 / (s + 1), 1000 + s, s) for s in steps)
    return SpoolRecord(run_id, metrics, **extra)  # type: ignore[arg-type]


def test_records_round_trip(spool_dir: Path) -> None:
    spool = SpoolWriter(spool_dir, URI, 10**9)
    special = (
        Metric("nan", math.nan, 5, 1),
        Metric("inf", math.inf, 5, 2),
        Metric("ninf", -math.inf, 5, 3),
        Metric("m", 0.5, 7, 4, None, "m-abc", "train", "d1g35t"),
    )
    records = [
        SpoolRecord("r1", special, (Param("lr", "0.1"),), (RunTag("t", "x y"),)),
        SpoolRecord("r1", status="FAILED", end_time=99),
    ]
    assert spool.append(records)
    spool.close()
    header = read_header(spool.path)
    assert (header.tracking_uri, header.pid > 0, header.start > 0) == (URI, True, True)
    read = [r for _, r in read_records(spool.path, header.start)]
    assert read[1] == records[1]
    nan, inf, ninf, model = read[0].metrics
    assert math.isnan(nan.value)
    assert (inf.value, ninf.value) == (math.inf, -math.inf)
    assert model == special[3]
    assert (read[0].params, read[0].tags) == (records[0].params, records[0].tags)
    assert list_spools(spool_dir) == [spool.path]
    assert spool.path.stat().st_mode & 0o777 == 0o600


def test_a_torn_last_record_is_ignored(spool_dir: Path) -> None:
    spool = SpoolWriter(spool_dir, URI, 10**9)
    assert spool.append([batch("r", range(3)), batch("r", range(3, 6))])
    spool.close()
    whole = spool.path.read_bytes()
    # A crash in the middle of an append leaves half a line: no newline, or a bad checksum.
    for torn in (whole + b'0000abcd {"t":"batch","run":"r","m":[[', whole + b"deadbeef {}\n"):
        spool.path.write_bytes(torn)
        steps = [m.step for _, r in read_records(spool.path, 0) for m in r.metrics]
        assert steps == list(range(6))


def test_a_damaged_record_in_the_middle_is_skipped(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = SpoolWriter(spool_dir, URI, 10**9)
    assert spool.append([batch("r", range(0, 2)), batch("r", range(2, 4)), batch("r", range(4, 6))])
    spool.close()
    lines = spool.path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"loss"', b'"lost"')  # a flipped byte: the checksum fails
    spool.path.write_bytes(b"".join(lines))
    with caplog.at_level(logging.WARNING, "runyard.tracking.spool"):
        steps = [m.step for _, r in read_records(spool.path, 0) for m in r.metrics]
    assert steps == [0, 1, 4, 5]
    assert "damaged record" in caplog.text


def test_the_spool_directory_is_bounded(spool_dir: Path) -> None:
    first = SpoolWriter(spool_dir, URI, 4000)
    assert first.append([batch("r", range(20))])
    size = first.path.stat().st_size
    # Another process's spool counts against the same limit.
    second = SpoolWriter(spool_dir, URI, 4000)
    assert not second.append([batch("r", range(200))])
    assert first.path.stat().st_size == size
    assert [r for _, r in read_records(second.path, second.start)] == []
    first.close()
    second.close()


def test_a_live_spool_is_locked(spool_dir: Path) -> None:
    spool = SpoolWriter(spool_dir, URI, 10**9)
    with locked_spool(spool.path) as ours:
        assert not ours
    spool.close()  # the owner is gone (as when its process ends)
    with locked_spool(spool.path) as ours:
        assert ours


def test_replaying_twice_stores_everything_once(spool_dir: Path, store: SqlTrackingStore) -> None:
    run_id = store.create_run("0", "u", 1, [], None).info.run_id
    spool = SpoolWriter(spool_dir, URI, 10**9)
    records = [
        batch(run_id, range(0, 500), params=(Param("lr", "0.1"),), tags=(RunTag("k", "a"),)),
        batch(run_id, range(500, 1000), tags=(RunTag("k", "b"),)),
        SpoolRecord(run_id, status="FINISHED", end_time=4242),
    ]
    assert spool.append(records)
    spool.close()
    for _ in range(2):  # the second replay is what a crash before deleting the spool causes
        report = replay_spool(spool.path, store, read_header(spool.path).start)
        assert (report.records, report.values, report.errors) == (3, 1003, [])
    history = store.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(1000))
    assert store.get_metric_summaries(run_id)[0].count == 1000
    run = store.get_run(run_id)
    assert (run.info.status, run.info.end_time) == ("FINISHED", 4242)
    assert (run.data.params, run.data.tags["k"]) == ({"lr": "0.1"}, "b")


def test_a_replay_resumes_where_it_stopped(spool_dir: Path, store: SqlTrackingStore) -> None:
    run_id = store.create_run("0", "u", 1, [], None).info.run_id
    spool = SpoolWriter(spool_dir, URI, 10**9)
    assert spool.append([batch(run_id, range(i, i + 10)) for i in range(0, 50, 10)])
    offsets = [offset for offset, _ in read_records(spool.path, spool.start)]
    spool.mark_replayed(offsets[2])  # three records reached the server before a crash
    spool.close()
    start = start_offset(spool.path)
    assert start == offsets[2]
    report = replay_spool(spool.path, store, start)
    assert report.records == 2
    assert [m.step for m in store.get_metric_history(run_id, "loss")] == list(range(30, 50))


def test_refused_values_are_reported_and_the_rest_sent(
    spool_dir: Path, store: SqlTrackingStore
) -> None:
    run_id = store.create_run("0", "u", 1, [], None).info.run_id
    gone = store.create_run("0", "u", 1, [], None).info.run_id
    store.log_batch(run_id, params=[Param("lr", "0.1")])
    store.delete_run(gone)
    spool = SpoolWriter(spool_dir, URI, 10**9)
    records = [
        batch(gone, range(3)),
        batch(run_id, range(3), params=(Param("lr", "0.2"), Param("bs", "8"))),
        SpoolRecord(gone, status="FINISHED", end_time=5),
    ]
    assert spool.append(records)
    spool.close()
    report = replay_spool(spool.path, store, read_header(spool.path).start)
    messages = [e.message for e in report.errors]
    assert len(messages) == 3
    assert "must be in the 'active' state" in messages[0]
    assert "Changing param values is not allowed" in messages[1]
    run = store.get_run(run_id)
    assert run.data.params == {"lr": "0.1", "bs": "8"}
    assert [m.step for m in store.get_metric_history(run_id, "loss")] == [0, 1, 2]


# -- the writer during a real outage: a SQLite file locked by another process --------------------
@pytest.fixture
def locked_db(
    tmp_path: Path, tracking_env: str, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Client, sqlite3.Connection]]:
    monkeypatch.setenv("RUNYARD_SQLITE_BUSY_TIMEOUT", "0.05")
    monkeypatch.setenv("RUNYARD_SPOOL_AFTER", "0.3")
    monkeypatch.setenv("RUNYARD_ASYNC_FLUSH_INTERVAL", "0.05")
    client = Client()
    blocker = sqlite3.connect(str(tmp_path / "t.db"), isolation_level=None)
    yield client, blocker
    blocker.close()
    release(tracking_env, flush=False)


def _wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_values_move_to_the_spool_and_come_back(
    locked_db: tuple[Client, sqlite3.Connection], spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client, blocker = locked_db
    run_id = client.create_run("0").info.run_id
    writer = get_writer(client.tracking_uri)
    blocker.execute("BEGIN IMMEDIATE")
    with caplog.at_level(logging.WARNING, "runyard.tracking.writer"):
        for step in range(3000):
            client.log_metric(run_id, "m", step, step=step)
        client.log_param(run_id, "p", 1)
        assert client.flush() is None  # training code sees no error, only a warning
        _wait_for(lambda: list_spools(spool_dir))
        _wait_for(lambda: writer.pending() == 3001)
        assert "cannot reach the tracking store" in caplog.text
        blocker.execute("ROLLBACK")  # the database is back
        _wait_for(lambda: not list_spools(spool_dir))
    assert "answers again" in caplog.text
    assert [m.step for m in client.get_metric_history(run_id, "m")] == list(range(3000))
    assert client.get_run(run_id).data.params == {"p": "1"}


def test_end_run_spools_the_end_and_the_writer_sends_it_later(
    locked_db: tuple[Client, sqlite3.Connection],
    spool_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import runyard

    monkeypatch.setenv("RUNYARD_END_RUN_TIMEOUT", "0.5")
    client, blocker = locked_db
    run = runyard.start_run()
    blocker.execute("BEGIN IMMEDIATE")
    for step in range(100):
        runyard.log_metric("m", step, step=step)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "runyard.tracking.writer"):
        runyard.end_run()  # returns: the rest and the run's end wait in the spool
    assert time.monotonic() - started < 20
    assert runyard.active_run() is None
    assert "Upload them later" not in caplog.text
    assert f"upload them with: runyard sync --spool-dir '{spool_dir}'" in caplog.text
    (path,) = list_spools(spool_dir)
    last = [r for _, r in read_records(path, 0)][-1]
    assert (last.run_id, last.status) == (run.info.run_id, "FINISHED")
    blocker.execute("ROLLBACK")
    _wait_for(lambda: not list_spools(spool_dir))  # this process is alive: it sends them itself
    ended = client.get_run(run.info.run_id)
    assert ended.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "m")) == 100


def test_a_full_spool_keeps_values_in_memory(
    locked_db: tuple[Client, sqlite3.Connection],
    spool_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("RUNYARD_SPOOL_MAX_BYTES", "300")  # the header fits, no batch does
    client, blocker = locked_db
    run_id = client.create_run("0").info.run_id
    blocker.execute("BEGIN IMMEDIATE")
    with caplog.at_level(logging.WARNING, "runyard.tracking.writer"):
        for step in range(500):
            client.log_metric(run_id, "m", step, step=step)
        _wait_for(lambda: "is full" in caplog.text)
        assert "500 values wait in memory" in caplog.text
        blocker.execute("ROLLBACK")
        client.flush()
    assert [m.step for m in client.get_metric_history(run_id, "m")] == list(range(500))
    assert list_spools(spool_dir) == []
