"""``runyard run``: projects from directories and git repositories, through the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from runyard.cli.projects import ENV_MANAGERS
from runyard.projects.execute import ENV_MANAGERS as PROJECT_ENV_MANAGERS
from runyard.tracking.client import Client
from tests.cli.conftest import ErrorCheck, Invoke
from tests.projects.project_files import demo_project, git_repo, read_report

CLI = "import sys; from runyard.cli import main; sys.exit(main())"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return demo_project(tmp_path / "demo")


@pytest.fixture
def report(tracking_uri_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = tmp_path / "report.json"
    monkeypatch.setenv("PROJECT_REPORT", str(path))
    return path


def _runs(client: Client) -> list[str]:
    return [run.info.run_id for run in client.search_runs(["0"])]


def test_env_managers_match_the_library() -> None:
    assert ENV_MANAGERS == PROJECT_ENV_MANAGERS


# -- refused before anything starts ---------------------------------------------------------
def test_bad_parameter_type_is_one_line_naming_it(
    cli: Invoke, demo: Path, report: Path, client: Client, user_error: ErrorCheck
) -> None:
    result = cli("run", str(demo), "-P", "epochs=1", "-P", "alpha=notanumber")
    user_error(
        result,
        "Invalid value 'notanumber' for parameter 'alpha' of entry point 'main': expected a float.",
    )
    assert _runs(client) == []


def test_missing_parameter_is_one_line(
    cli: Invoke, demo: Path, report: Path, user_error: ErrorCheck
) -> None:
    user_error(cli("run", str(demo)), "No value given for missing parameters: 'epochs'")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-P", "novalue"], "Invalid format for -P parameter: 'novalue'. Use -P name=value."),
        (["-P", "a=1", "-P", "a=2"], "Repeated parameter: 'a'"),
        (["-A", "=x"], "Invalid format for -A parameter: '=x'. Use -A name=value."),
        (
            ["--experiment-name", "a", "--experiment-id", "1"],
            "Specify only one of 'experiment-name' or 'experiment-id' options.",
        ),
        (["--env-manager", "pipenv"], "'pipenv' is not one of"),
    ],
)
def test_malformed_options_are_usage_errors(
    cli: Invoke, demo: Path, report: Path, usage_error: ErrorCheck, args: list[str], fragment: str
) -> None:
    usage_error(cli("run", str(demo), *args), fragment)


def test_other_backends_are_one_line(
    cli: Invoke, demo: Path, report: Path, user_error: ErrorCheck
) -> None:
    result = cli("run", str(demo), "-P", "epochs=1", "-b", "kubernetes")
    user_error(result, "Got unsupported execution mode kubernetes.")


def test_bad_backend_config_is_one_line(
    cli: Invoke, demo: Path, report: Path, user_error: ErrorCheck
) -> None:
    result = cli("run", str(demo), "-P", "epochs=1", "-c", "{not json")
    user_error(result, "Invalid backend config JSON. Parse error:")


def test_docker_env_without_an_engine_is_one_line(
    cli: Invoke,
    tmp_path: Path,
    report: Path,
    client: Client,
    user_error: ErrorCheck,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    project = tmp_path / "boxed"
    project.mkdir()
    (project / "MLproject").write_text("name: boxed\ndocker_env: {image: 'python:3.11'}\n")
    (project / "train.py").write_text("print('never')\n")
    result = cli("run", str(project), "-e", "train.py", "-A", "gpus=all")
    user_error(result, "Cannot run project 'boxed' in its docker_env: no Docker engine is running")
    assert _runs(client) == []


def test_unknown_project_directory_is_one_line(
    cli: Invoke, tmp_path: Path, report: Path, user_error: ErrorCheck
) -> None:
    user_error(cli("run", str(tmp_path / "nowhere")), "does not exist")


# -- running --------------------------------------------------------------------------------
@pytest.mark.slow
def test_run_succeeds_and_records_the_run(
    cli: Invoke, demo: Path, report: Path, client: Client
) -> None:
    result = cli(
        "run",
        str(demo),
        "-P",
        "epochs=9",
        "-P",
        "extra=x y",
        "--run-name",
        "from-cli",
        "--experiment-name",
        "cli-projects",
    )
    assert result.exit_code == 0, result.output
    experiment = client.get_experiment_by_name("cli-projects")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "from-cli"
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "9"
    assert run.data.params["extra"] == "x y"
    assert run.data.tags["mlflow.source.type"] == "PROJECT"
    assert run.data.metrics == {"seen": 1.0}
    assert read_report(report)["argv"][-2:] == ["--extra", "x y"]
    lines = result.stderr.splitlines()
    assert lines[0] == "=== Experiment 'cli-projects' does not exist: creating it ==="
    created = f"=== Created run {run.info.run_id} in experiment {experiment.experiment_id} ==="
    assert lines[1] == created
    assert lines[2].startswith("=== Running command 'python report.py --alpha 0.5 --epochs 9")
    assert lines[-1] == f"=== Run (ID '{run.info.run_id}') succeeded ==="
    assert result.stdout == ""


@pytest.mark.slow
def test_failed_command_fails_the_run_and_the_cli(
    cli: Invoke, demo: Path, report: Path, client: Client
) -> None:
    result = cli("run", str(demo), "-e", "fail", "-P", "code=4")
    assert result.exit_code == 1
    (run_id,) = _runs(client)
    assert result.stderr.splitlines()[-1] == (
        f"Error: Run (ID '{run_id}') failed: the command exited with status 4"
    )
    assert client.get_run(run_id).info.status == "FAILED"


@pytest.mark.slow
def test_git_repository_with_subdirectory_and_version(
    cli: Invoke, tmp_path: Path, report: Path, client: Client
) -> None:
    root = tmp_path / "repo"
    commits = git_repo(root)
    uri = f"file://{root}#models/demo"
    result = cli("run", uri, "-v", "feature", "-P", "epochs=1")
    assert result.exit_code == 0, result.output
    (run_id,) = _runs(client)
    run = client.get_run(run_id)
    assert run.data.params["alpha"] == "0.7"
    assert run.data.tags["mlflow.source.git.commit"] == commits["feature"]
    assert run.data.tags["mlflow.source.git.branch"] == "feature"
    assert run.data.tags["mlflow.source.git.repoURL"] == f"file://{root}"
    assert run.data.tags["mlflow.source.name"] == uri


@pytest.mark.slow
def test_existing_run_id(cli: Invoke, demo: Path, report: Path, client: Client) -> None:
    existing = client.create_run("0").info.run_id
    result = cli("run", str(demo), "-P", "epochs=1", "--run-id", existing)
    assert result.exit_code == 0, result.output
    assert _runs(client) == [existing]
    assert read_report(report)["active_run_id"] == existing


# -- interrupts -----------------------------------------------------------------------------
def _wait_for_pid(path: Path, proc: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if text:
            return int(text)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the entry point never wrote its pid")


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "returncodes"),
    [
        (signal.SIGINT, (128 + signal.SIGINT,)),
        (signal.SIGTERM, (-signal.SIGTERM, 128 + signal.SIGTERM)),
    ],
)
def test_interrupt_kills_the_command_and_marks_the_run_killed(
    demo: Path,
    report: Path,
    tmp_path: Path,
    client: Client,
    signum: int,
    returncodes: tuple[int, ...],
) -> None:
    pidfile = tmp_path / "pid"
    pidfile.touch()
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "run", str(demo), "-e", "sleep", "-P", f"pidfile={pidfile}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pid = _wait_for_pid(pidfile, proc)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in returncodes, stderr
    assert _gone(pid), "the entry point outlived runyard run"
    (run_id,) = _runs(client)
    assert client.get_run(run_id).info.status == "KILLED"
    assert f"=== Run (ID '{run_id}') interrupted: its command was stopped" in stderr
    assert "Traceback" not in stderr
