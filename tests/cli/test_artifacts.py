"""``runyard artifacts list|download|log-artifact|log-artifacts``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from runyard.tracking.client import Client

Invoke = Callable[..., Result]
ErrorCheck = Callable[[Result, str], None]


@pytest.fixture
def run_id(client: Client) -> str:
    """A run of a fresh experiment."""
    return client.create_run(client.create_experiment("exp1")).info.run_id


@pytest.fixture
def logged(client: Client, run_id: str, tmp_path: Path) -> str:
    """``run_id`` holding ``notes.txt`` (5 bytes) and ``model/weights.bin`` (2048 bytes)."""
    source = tmp_path / "source"
    (source / "model").mkdir(parents=True)
    (source / "notes.txt").write_text("hello", encoding="utf-8")
    (source / "model" / "weights.bin").write_bytes(b"\0" * 2048)
    client.log_artifacts(run_id, str(source))
    return run_id


# -- log-artifact / log-artifacts -----------------------------------------------------------------
def test_log_artifact(cli: Invoke, client: Client, run_id: str, tmp_path: Path) -> None:
    local = tmp_path / "plot.png"
    local.write_bytes(b"png")
    result = cli("artifacts", "log-artifact", "-l", str(local), "-r", run_id, "-a", "plots")
    assert result.exit_code == 0, result.output
    assert run_id in result.stdout
    assert [(f.path, f.file_size) for f in client.list_artifacts(run_id, "plots")] == [
        ("plots/plot.png", 3)
    ]


def test_log_artifact_missing_file_is_one_line_error(
    cli: Invoke, run_id: str, user_error: ErrorCheck
) -> None:
    result = cli("artifacts", "log-artifact", "--local-file", "nope.txt", "--run-id", run_id)
    user_error(result, "No such file or directory: 'nope.txt'")


def test_log_artifact_unknown_run_is_one_line_error(
    cli: Invoke, tmp_path: Path, user_error: ErrorCheck
) -> None:
    local = tmp_path / "a.txt"
    local.write_text("a", encoding="utf-8")
    user_error(cli("artifacts", "log-artifact", "-l", str(local), "-r", "a" * 32), "a" * 32)


def test_log_artifact_outside_run_root_is_one_line_error(
    cli: Invoke, run_id: str, tmp_path: Path, user_error: ErrorCheck
) -> None:
    local = tmp_path / "a.txt"
    local.write_text("a", encoding="utf-8")
    result = cli("artifacts", "log-artifact", "-l", str(local), "-r", run_id, "-a", "../../x")
    user_error(result, "Invalid artifact path")


def test_log_artifacts(cli: Invoke, client: Client, run_id: str, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    (outputs / "nested").mkdir(parents=True)
    (outputs / "a.txt").write_text("a", encoding="utf-8")
    (outputs / "nested" / "b.txt").write_text("bb", encoding="utf-8")
    result = cli("artifacts", "log-artifacts", "-l", str(outputs), "-r", run_id, "-a", "out")
    assert result.exit_code == 0, result.output
    assert [f.path for f in client.list_artifacts(run_id, "out")] == ["out/a.txt", "out/nested"]
    assert [f.path for f in client.list_artifacts(run_id, "out/nested")] == ["out/nested/b.txt"]


def test_log_artifacts_not_a_directory_is_one_line_error(
    cli: Invoke, run_id: str, tmp_path: Path, user_error: ErrorCheck
) -> None:
    local = tmp_path / "file.txt"
    local.write_text("x", encoding="utf-8")
    user_error(
        cli("artifacts", "log-artifacts", "--local-dir", str(local), "--run-id", run_id),
        "Not a directory",
    )


# -- list -----------------------------------------------------------------------------------------
def test_list_table(cli: Invoke, logged: str) -> None:
    result = cli("artifacts", "list", "-r", logged)
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["Path", "Type", "Size"]
    assert lines[2:] == [["model", "dir"], ["notes.txt", "file", "5", "B"]]
    result = cli("artifacts", "list", "-r", logged, "-a", "model")
    assert [line.split() for line in result.stdout.splitlines()][2:] == [
        ["model/weights.bin", "file", "2.0", "KiB"]
    ]


def test_list_json_matches_store(cli: Invoke, client: Client, logged: str) -> None:
    for path in (None, "model"):
        args = ["-a", path] if path else []
        result = cli("artifacts", "list", "--run-id", logged, "--output", "json", *args)
        assert result.exit_code == 0, result.output
        expected = [
            {"path": f.path, "is_dir": f.is_dir, "file_size": f.file_size}
            for f in client.list_artifacts(logged, path)
        ]
        assert json.loads(result.stdout) == expected
    assert json.loads(cli("artifacts", "list", "-r", logged, "--output", "json").stdout) == [
        {"path": "model", "is_dir": True, "file_size": None},
        {"path": "notes.txt", "is_dir": False, "file_size": 5},
    ]


def test_list_unknown_run_is_one_line_error(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("artifacts", "list", "-r", "b" * 32), "b" * 32)


def test_list_outside_run_root_is_one_line_error(
    cli: Invoke, logged: str, user_error: ErrorCheck
) -> None:
    user_error(cli("artifacts", "list", "-r", logged, "-a", "../.."), "Invalid artifact path")


# -- download -------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["-p", "-a", "--artifact-path"])
def test_download_file_to_directory(cli: Invoke, logged: str, tmp_path: Path, flag: str) -> None:
    dst = tmp_path / "dl"
    result = cli("artifacts", "download", "-r", logged, flag, "notes.txt", "-d", str(dst))
    assert result.exit_code == 0, result.output
    local = Path(result.stdout.strip())
    assert local == (dst / "notes.txt").resolve()
    assert local.read_text(encoding="utf-8") == "hello"


def test_download_whole_run_to_temporary_directory(cli: Invoke, logged: str) -> None:
    result = cli("artifacts", "download", "--run-id", logged)
    assert result.exit_code == 0, result.output
    local = Path(result.stdout.strip())
    assert sorted(p.name for p in local.iterdir()) == ["model", "notes.txt"]
    assert (local / "model" / "weights.bin").stat().st_size == 2048


def test_download_by_runs_uri(cli: Invoke, logged: str, tmp_path: Path) -> None:
    uri = f"runs:/{logged}/model"
    result = cli("artifacts", "download", "-u", uri, "--dst-path", str(tmp_path / "dl"))
    assert result.exit_code == 0, result.output
    local = Path(result.stdout.strip())
    assert local.name == "model"
    assert (local / "weights.bin").stat().st_size == 2048


def test_download_by_local_uri(cli: Invoke, client: Client, logged: str, tmp_path: Path) -> None:
    root = client.get_run(logged).info.artifact_uri
    uri = f"{root}/notes.txt"
    result = cli("artifacts", "download", "--artifact-uri", uri, "-d", str(tmp_path / "dl"))
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()).read_text(encoding="utf-8") == "hello"


def test_download_missing_path_is_one_line_error(
    cli: Invoke, logged: str, user_error: ErrorCheck
) -> None:
    user_error(cli("artifacts", "download", "-r", logged, "-p", "nope"), "No such file")


def test_download_unknown_run_is_one_line_error(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("artifacts", "download", "-r", "c" * 32, "-p", "model"), "c" * 32)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["-r", "c" * 32, "-u", "runs:/x/y"],
        ["-u", "runs:/x/y", "-a", "model"],
    ],
)
def test_download_needs_run_or_uri(cli: Invoke, usage_error: ErrorCheck, args: list[str]) -> None:
    usage_error(cli("artifacts", "download", *args), "--artifact-")
