"""``runyard sync``: spools replayed to the URI recorded in them (or ``--to``), progress and
summary lines, dry runs, spools still in use, resumable failures, one-line errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from runyard.entities import Metric, Param
from runyard.tracking.client import Client
from runyard.tracking.spool import SpoolRecord, SpoolWriter, list_spools
from tests.cli.conftest import Invoke


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "spool"
    monkeypatch.setenv("RUNYARD_SPOOL_DIR", str(directory))
    monkeypatch.setenv("RUNYARD_OFFLINE_DIR", str(tmp_path / "no-offline-store"))
    return directory


def spool_run(directory: Path, uri: str, run_id: str, steps: int = 10) -> Path:
    """A spool as a process leaves it when end_run could not reach the store."""
    spool = SpoolWriter(directory, uri, 10**9)
    points = tuple(Metric("loss", float(s), 1000 + s, s) for s in range(steps))
    assert spool.append(
        [
            SpoolRecord(run_id, points, (Param("lr", "0.1"),)),
            SpoolRecord(run_id, status="FINISHED", end_time=5000),
        ]
    )
    spool.close()
    return spool.path


def test_nothing_to_sync(cli: Invoke, spool_dir: Path) -> None:
    result = cli("sync")
    assert result.exit_code == 0
    assert (
        result.output == f"Nothing to sync: no spool files in {spool_dir} and no offline store.\n"
    )


def test_a_spool_is_replayed_to_its_store_and_removed(
    cli: Invoke, client: Client, tracking_uri_env: str, spool_dir: Path
) -> None:
    run_id = client.create_run("0").info.run_id
    path = spool_run(spool_dir, tracking_uri_env, run_id)
    result = cli("sync")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"spool {path.name} -> {tracking_uri_env}: 1 run, 11 values, 1 run end: sent",
        f"  run {run_id}: 10 points, 1 param, 0 tags, ended FINISHED",
        "Sent 1 spool file (11 values) and 0 offline runs (0 points, 0 files); "
        "0 already up to date, 0 in use, 0 failed.",
    ]
    run = client.get_run(run_id)
    assert (run.info.status, run.info.end_time, run.data.params) == (
        "FINISHED",
        5000,
        {"lr": "0.1"},
    )
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == list(range(10))
    assert list_spools(spool_dir) == []
    assert "Nothing to sync" in cli("sync").output


def test_dry_run_sends_nothing(
    cli: Invoke, client: Client, tracking_uri_env: str, spool_dir: Path
) -> None:
    run_id = client.create_run("0").info.run_id
    path = spool_run(spool_dir, tracking_uri_env, run_id)
    result = cli("sync", "--dry-run")
    assert result.exit_code == 0
    assert ": would send" in result.output
    assert "Would send 1 spool file" in result.output
    assert client.get_run(run_id).info.status == "RUNNING"
    assert list_spools(spool_dir) == [path]


def test_to_overrides_the_recorded_uri(
    cli: Invoke, client: Client, tracking_uri_env: str, spool_dir: Path, tmp_path: Path
) -> None:
    run_id = client.create_run("0").info.run_id
    spool_run(spool_dir, "http://old-host.invalid:5000", run_id)
    result = cli("sync", "--to", tracking_uri_env, "--spool-dir", str(spool_dir))
    assert result.exit_code == 0, result.output
    assert client.get_run(run_id).info.status == "FINISHED"


def test_a_spool_in_use_is_left_to_its_process(
    cli: Invoke, client: Client, tracking_uri_env: str, spool_dir: Path
) -> None:
    live = SpoolWriter(spool_dir, tracking_uri_env, 10**9)  # its process is still running
    result = cli("sync")
    assert result.exit_code == 0
    assert f"spool {live.path.name}: in use by a running process" in result.output
    assert "1 in use" in result.output
    assert list_spools(spool_dir) == [live.path]
    live.close()


def test_an_unreachable_server_fails_in_one_line_and_keeps_the_spool(
    cli: Invoke,
    client: Client,
    spool_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNYARD_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = spool_run(spool_dir, f"http://127.0.0.1:{port}", client.create_run("0").info.run_id)
    result = cli("sync")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith(f"spool {path.name} -> http://127.0.0.1:{port}: 0 runs, 0 values")
    assert "failed (HTTP request failed (ConnectError" in lines[0]
    assert (
        lines[-1] == "Error: 1 could not be synced (see above); run 'runyard sync' again to retry."
    )
    assert list_spools(spool_dir) == [path]


def test_an_interrupted_sync_resumes(
    cli: Invoke, client: Client, tracking_uri_env: str, spool_dir: Path
) -> None:
    run_id = client.create_run("0").info.run_id
    path = spool_run(spool_dir, tracking_uri_env, run_id)
    # A sync stopped after the first record; the next one sends only the rest.
    first_end = len(path.read_bytes().splitlines(keepends=True)[0]) + len(
        path.read_bytes().splitlines(keepends=True)[1]
    )
    Path(f"{path}.pos").write_text(str(first_end))
    result = cli("sync")
    assert result.exit_code == 0
    assert f"  run {run_id}: 0 points, 0 params, 0 tags, ended FINISHED" in result.output
    assert client.get_run(run_id).info.status == "FINISHED"
    assert client.get_metric_history(run_id, "loss") == []
    assert not Path(f"{path}.pos").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "x"], "--from needs --to URL"),
        (["--run-id", "abc"], "--experiment-name and --run-id select offline runs"),
        (["--to", "ftp://host", "--from", "."], "No offline store at"),
    ],
)
def test_usage_errors(cli: Invoke, spool_dir: Path, args: list[str], message: str) -> None:
    result = cli("sync", *args)
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert len(result.output.strip().splitlines()[-1]) < 200


def test_a_bad_target_url(cli: Invoke, spool_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "runyard.db").write_bytes(b"")
    result = cli("sync", "--to", "ftp://host", "--from", str(tmp_path / "store"))
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --to needs an http(s):// server URL, got 'ftp://host'."
