"""Fault injection with real server processes: the tracking server is SIGKILLed and restarted,
or stopped for a while, while a client logs. Nothing may be lost or stored twice, training code
never sees an exception, and a run whose end could not be sent is finished by ``runyard sync``.

The figures (points sent and stored, how long the client took to use a restarted server) are
printed; run with ``-s`` to see them. ``RUNYARD_TEST_OUTAGE_SECONDS`` sets the long outage
(default 30 s).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import runyard
from runyard import Client
from runyard.store.sql.store import SqlTrackingStore
from runyard.tracking.spool import list_spools
from tests.conftest import FOREIGN_ENV
from tests.live_server import _free_port, wait_healthy

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = float(os.environ.get("RUNYARD_TEST_OUTAGE_SECONDS", "30"))


class RestartableServer:
    """A ``runyard server`` process that can be killed and started again on the same port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.launched_at: list[float] = []
        self.healthy_at: list[float] = []

    def start(self) -> None:
        command = [
            str(Path(sys.executable).parent / "runyard"),
            "server",
            *("--backend-store-uri", f"sqlite:///{self.root / 'db'}"),
            *("--artifacts-destination", str(self.root / "art")),
            *("--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"),
        ]
        env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
        self.launched_at.append(time.time())
        with open(self.root / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        assert wait_healthy(self.url, self.process), (self.root / "server.log").read_text()
        self.healthy_at.append(time.time())

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, requests in flight are cut."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def store(self) -> SqlTrackingStore:
        """The server's database, read directly (after :meth:`stop`)."""
        return SqlTrackingStore(f"sqlite:///{self.root / 'db'}", str(self.root / "art"))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RestartableServer]:
    root = tmp_path / "server"
    root.mkdir()
    srv = RestartableServer(root)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client_env(
    server: RestartableServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = {
        "MLFLOW_TRACKING_URI": server.url,
        "RUNYARD_SPOOL_DIR": str(tmp_path / "spool"),
        "RUNYARD_SPOOL_AFTER": "1",
        # Synchronous calls (create_run) fail fast; the writer has its own backoff.
        "RUNYARD_HTTP_REQUEST_BACKOFF_FACTOR": "0.1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _recoveries(records: list[logging.LogRecord], server: RestartableServer) -> list[float]:
    """Seconds from each restarted server answering its health check to the client writing to
    it again (0 when the client got there before the check's next poll)."""
    back = [r.created for r in records if "answers again" in r.getMessage()]
    out = []
    for launched, healthy in zip(server.launched_at[1:], server.healthy_at[1:], strict=True):
        first = min((t for t in back if t >= launched), default=None)
        if first is not None:
            out.append(round(max(0.0, first - healthy), 2))
    return out


def test_100k_points_survive_two_server_kills(
    server: RestartableServer,
    client_env: dict[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    total = 100_000
    client = Client()
    run_id = client.create_run("0").info.run_id

    def chaos() -> None:
        for _ in range(2):
            time.sleep(2.0)
            server.kill()  # while the writer is sending: a batch may be cut mid-request
            time.sleep(1.5)
            server.start()

    chaos_thread = threading.Thread(target=chaos)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, "runyard.tracking.writer"):
        chaos_thread.start()
        for step in range(total):
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
            if step % 1000 == 999:
                time.sleep(0.1)  # ~10 s of "training" spanning both kills
        chaos_thread.join()
        client.set_terminated(run_id)
    elapsed = time.monotonic() - started

    history = client.get_metric_history(run_id, "loss")
    assert len(history) == total
    assert sorted(m.step for m in history) == list(range(total))
    assert len({(m.step, m.timestamp, m.value) for m in history}) == total
    assert client.get_run(run_id).info.status == "FINISHED"
    server.stop()
    stored = server.store()
    try:
        assert stored.get_metric_summaries(run_id)[0].count == total
    finally:
        stored.close()
    assert list_spools(tmp_path / "spool") == []
    recoveries = _recoveries(caplog.records, server)
    assert len(recoveries) == 2
    print(
        f"\nFIGURES kill/restart x2: sent {total}, stored {len(history)} (distinct), "
        f"summary count {total}; recovery after restart (s): {recoveries}; "
        f"wall {elapsed:.1f} s"
    )


def test_30s_of_refused_connections_lose_nothing(
    server: RestartableServer,
    client_env: dict[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runyard.set_tracking_uri(server.url)
    run = runyard.start_run(run_name="through-the-outage")
    down = threading.Event()

    def outage() -> None:
        time.sleep(1.0)
        server.stop()  # connection refused from now on
        down.set()
        time.sleep(OUTAGE_SECONDS)
        server.start()

    outage_thread = threading.Thread(target=outage)
    steps = 0
    with caplog.at_level(logging.WARNING, "runyard.tracking.writer"):
        outage_thread.start()
        while outage_thread.is_alive() or steps < 200:
            runyard.log_metric("acc", steps / 10, step=steps)
            if steps % 100 == 0:
                runyard.log_params({f"p{steps}": steps})
                runyard.set_tag("progress", str(steps))
                runyard.flush()  # training code that flushes: no exception while refused
            steps += 1
            time.sleep(0.005)
        assert down.is_set()
        started = time.monotonic()
        runyard.end_run()
        end_run_s = time.monotonic() - started

    client = Client(server.url)
    ended = client.get_run(run.info.run_id)
    assert ended.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "acc")] == list(range(steps))
    assert ended.data.params == {f"p{s}": str(s) for s in range(0, steps, 100)}
    assert ended.data.tags["progress"] == str((steps - 1) // 100 * 100)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot reach the tracking store" in m for m in messages) <= 1 + int(
        OUTAGE_SECONDS // 60
    )  # one warning a minute, not one per retry
    assert list_spools(tmp_path / "spool") == []
    recovery = _recoveries(caplog.records, server)
    assert len(recovery) == 1
    print(
        f"\nFIGURES refused {OUTAGE_SECONDS:g} s: sent {steps} points, stored {steps}; "
        f"recovery after restart (s): {recovery}; end_run took {end_run_s:.2f} s"
    )


_CLIENT = """
    import sys
    import runyard

    run = runyard.start_run(run_name="ends-during-outage")
    print(run.info.run_id, flush=True)
    sys.stdin.readline()  # the test kills the server now
    runyard.log_param("lr", 0.01)
    for step in range(5000):
        runyard.log_metric("loss", 1.0 / (step + 1), step=step)
    runyard.end_run()
    print("end_run returned", flush=True)
"""


def test_a_run_ended_during_an_outage_is_finished_by_runyard_sync(
    server: RestartableServer, client_env: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(_CLIENT))
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env.update(client_env, RUNYARD_END_RUN_TIMEOUT="2")
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    run_id = proc.stdout.readline().strip()
    server.kill()
    started = time.monotonic()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "end_run returned" in out
    assert time.monotonic() - started < 30
    spool_dir = tmp_path / "spool"
    assert f"runyard sync --spool-dir '{spool_dir}'" in err
    assert len(list_spools(spool_dir)) == 1

    server.start()
    runyard_cli = str(Path(sys.executable).parent / "runyard")
    sync = [runyard_cli, "sync", "--spool-dir", str(spool_dir)]
    first = subprocess.run(sync, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"run {run_id}: 5000 points, 1 param, 0 tags, ended FINISHED" in first.stdout
    assert list_spools(spool_dir) == []
    again = subprocess.run(sync, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0
    assert "Nothing to sync" in again.stdout

    client = Client(server.url)
    run = client.get_run(run_id)
    assert (run.info.status, run.data.params) == ("FINISHED", {"lr": "0.01"})
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == list(range(5000))
