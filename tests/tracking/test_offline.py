"""Offline mode: runs logged with ``RUNYARD_OFFLINE=1`` go to a local store whatever the tracking
URI says, and ``runyard sync --to`` pushes them to a live server with the same ids, steps,
timestamps and artifacts; syncing again sends nothing."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import runyard
from runyard import Client
from runyard.cli import main
from runyard.entities import Metric, Run
from runyard.store.sql.store import SqlTrackingStore
from runyard.tracking.offline import offline_tracking_uri
from runyard.tracking.registry import release
from tests.live_server import TrackingServer, start_server, stop_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    srv = start_server(tmp_path_factory.mktemp("sync-target"), "runyard")
    yield srv
    stop_server(srv)


@pytest.fixture
def offline(
    tmp_path: Path, server: TrackingServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Offline mode on, with the tracking URI pointing at the (unused) server."""
    directory = tmp_path / "offline"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("RUNYARD_OFFLINE", "1")
    monkeypatch.setenv("RUNYARD_OFFLINE_DIR", str(directory))
    monkeypatch.setenv("RUNYARD_SPOOL_DIR", str(tmp_path / "spool"))
    uri = offline_tracking_uri()
    yield directory
    runyard.end_run()
    release(uri, flush=False)


def log_offline_run(tmp_path: Path, experiment: str, name: str) -> str:
    runyard.set_experiment(experiment)
    with runyard.start_run(run_name=name) as run:
        runyard.log_params({"lr": 0.01, "layers": 4})
        runyard.set_tag("stage", "pretrain")
        for step in range(3000):
            runyard.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 3000}, step=step)
        runyard.log_metric("grad", math.nan, step=7)
        runyard.log_text("offline notes", "notes/readme.txt")
        runyard.log_dict({"seed": 1}, "config.json")
        data = tmp_path / "ckpt"
        (data / "inner").mkdir(parents=True, exist_ok=True)
        (data / "inner" / "weights.bin").write_bytes(bytes(range(256)) * 64)
        runyard.log_artifacts(str(data), "checkpoint")
    return run.info.run_id


def sync(*args: str) -> Result:
    return CliRunner().invoke(main, ["sync", *args], catch_exceptions=False)


def points(history: list[Metric]) -> list[tuple[int, int, float]]:
    return [(m.step, m.timestamp, m.value) for m in history]


def same_values(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_offline_runs_are_pushed_with_ids_steps_timestamps_and_artifacts(
    offline: Path, server: TrackingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = log_offline_run(tmp_path, "hpc-job", "node-17")
    assert (offline / "runyard.db").is_file()
    local = SqlTrackingStore(f"sqlite:///{offline / 'runyard.db'}", str(offline / "artifacts"))
    try:
        source: Run = local.get_run(run_id)
        histories = {k: local.get_metric_history(run_id, k) for k in ("loss", "acc", "grad")}
    finally:
        local.close()
    assert source.info.artifact_uri.startswith(str(offline / "artifacts"))

    monkeypatch.delenv("RUNYARD_OFFLINE")  # back on the login node: the server is reachable
    remote = Client(server.url)
    assert remote.get_experiment_by_name("hpc-job") is None  # nothing reached the server

    dry = sync("--to", server.url, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"run {run_id} (node-17) in 'hpc-job', FINISHED: 6001 points" in dry.output
    assert "would send" in dry.output
    assert remote.get_experiment_by_name("hpc-job") is None

    first = sync("--to", server.url, "--from", str(offline))
    assert first.exit_code == 0, first.output
    assert "2 params, " in first.output
    assert "3 files: sent" in first.output

    run = remote.get_run(run_id)
    assert run.info.experiment_id == remote.get_experiment_by_name("hpc-job").experiment_id
    for field in ("run_name", "status", "start_time", "end_time", "user_id"):
        assert getattr(run.info, field) == getattr(source.info, field)
    assert run.data.params == {"lr": "0.01", "layers": "4"}
    assert run.data.tags == source.data.tags
    for key, expected in histories.items():
        got = remote.get_metric_history(run_id, key)
        assert [(s, t) for s, t, _ in points(got)] == [(s, t) for s, t, _ in points(expected)]
        assert all(same_values(a.value, b.value) for a, b in zip(got, expected, strict=True))
    files = {f.path: f.file_size for f in remote.list_artifacts(run_id, "checkpoint/inner")}
    assert files == {"checkpoint/inner/weights.bin": 256 * 64}
    folder = Path(remote.download_artifacts(run_id, "", str(tmp_path / "down")))
    assert (folder / "notes" / "readme.txt").read_text() == "offline notes"
    assert json.loads((folder / "config.json").read_text()) == {"seed": 1}
    assert (folder / "checkpoint" / "inner" / "weights.bin").read_bytes() == bytes(range(256)) * 64

    # Syncing again is a no-op, and even a forced resend (state file gone) changes nothing.
    again = sync("--to", server.url, "--from", str(offline))
    assert again.exit_code == 0
    assert "up to date" in again.output
    assert "and 0 offline runs" in again.output
    (offline / "synced.json").unlink()
    forced = sync("--to", server.url, "--from", str(offline))
    assert forced.exit_code == 0
    assert ": sent" in forced.output
    assert len(remote.get_metric_history(run_id, "loss")) == 3000
    assert len(remote.search_runs([run.info.experiment_id])) == 1


def test_default_store_and_filters(
    offline: Path, server: TrackingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep = log_offline_run(tmp_path, "sweep-a", "a1")
    other = log_offline_run(tmp_path, "sweep-b", "b1")
    monkeypatch.delenv("RUNYARD_OFFLINE")
    remote = Client(server.url)
    # Without --from the offline store of RUNYARD_OFFLINE_DIR is pushed (with the spools).
    result = sync("--to", server.url, "--experiment-name", "sweep-a")
    assert result.exit_code == 0, result.output
    assert keep in result.output
    assert other not in result.output
    assert remote.get_run(keep).info.status == "FINISHED"
    assert remote.get_experiment_by_name("sweep-b") is None
    result = sync("--to", server.url, "--run-id", other)
    assert result.exit_code == 0
    assert f"run {other} (b1)" in result.output
    assert remote.get_run(other).info.run_name == "b1"
    missing = sync("--to", server.url, "--run-id", "f" * 32)
    assert missing.exit_code == 1
    assert f"Error: The offline store has no run {'f' * 32}." in missing.output
