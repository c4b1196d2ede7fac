"""``runyard.projects.run``: real projects run as real child processes against a real store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import runyard
import runyard.projects
from runyard.errors import InvalidParameterValue, RunyardError
from runyard.projects import ExecutionException, InvalidProjectParameter, SubmittedRun
from runyard.tracking.client import Client
from tests.projects.project_files import demo_project, git_repo, read_report, write_files

pytestmark = pytest.mark.slow


def _wait_for_file(path: Path, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written within {timeout}s")


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _all_runs() -> list[runyard.entities.Run]:
    runs: list[runyard.entities.Run] = runyard.search_runs(
        search_all_experiments=True, output_format="list"
    )
    return runs


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return demo_project(tmp_path / "demo")


def test_run_logs_params_tags_and_hands_the_run_over(
    demo: Path, report: Path, tracking_env: str
) -> None:
    submitted = runyard.projects.run(
        str(demo), parameters={"epochs": 4, "label": "it's", "seed": 7}, run_name="first"
    )
    assert isinstance(submitted, SubmittedRun)
    assert submitted.get_status() == "FINISHED"
    seen = read_report(report)
    assert seen["argv"] == [
        "--alpha", "0.5", "--epochs", "4", "--label", "it's",
        "--data", str(demo / "data.csv"), "--source", "s3://bucket/key", "--seed", "7",
    ]  # fmt: skip
    assert seen["cwd"] == str(demo)
    assert seen["active_run_id"] == submitted.run_id
    env = seen["env"]
    assert env["MLFLOW_RUN_ID"] == env["RUNYARD_RUN_ID"] == submitted.run_id
    assert env["MLFLOW_TRACKING_URI"] == env["RUNYARD_TRACKING_URI"] == tracking_env
    assert env["MLFLOW_EXPERIMENT_ID"] == env["RUNYARD_EXPERIMENT_ID"] == "0"

    run = Client().get_run(submitted.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "first"
    assert run.data.params == {
        "alpha": "0.5",
        "epochs": "4",
        "label": "it's",
        "data": "data.csv",
        "source": "s3://bucket/key",
        "seed": "7",
    }
    assert run.data.metrics == {"seen": 1.0}
    tags = run.data.tags
    assert tags["mlflow.source.name"] == str(demo)
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.env"] == "local"
    assert tags["mlflow.project.backend"] == "local"
    assert "mlflow.source.git.commit" not in tags
    assert [r.info.run_id for r in _all_runs()] == [submitted.run_id]


def test_bad_parameters_are_refused_before_anything_starts(
    demo: Path, report: Path, tracking_env: str
) -> None:
    with pytest.raises(InvalidProjectParameter) as info:
        runyard.projects.run(str(demo), parameters={"epochs": 1, "alpha": "notanumber"})
    assert "parameter 'alpha'" in info.value.message
    assert isinstance(info.value, InvalidParameterValue)
    with pytest.raises(ExecutionException, match="No value given for missing parameters: 'epochs'"):
        runyard.projects.run(str(demo))
    assert _all_runs() == []
    assert not report.exists()


def test_failing_command_fails_the_run(demo: Path, report: Path) -> None:
    with pytest.raises(ExecutionException) as info:
        runyard.projects.run(str(demo), "fail", parameters={"code": 5})
    message = info.value.message
    assert message.endswith("failed: the command exited with status 5")
    (run,) = _all_runs()
    assert message == f"Run (ID '{run.info.run_id}') failed: the command exited with status 5"
    assert run.info.status == "FAILED"
    assert run.info.end_time is not None
    assert run.data.params == {"code": "5"}
    assert run.data.tags["mlflow.project.entryPoint"] == "fail"


def test_command_failing_after_ending_its_run_still_fails_it(tmp_path: Path, report: Path) -> None:
    project = write_files(
        tmp_path / "p",
        {"crash.py": "import runyard\nwith runyard.start_run():\n    pass\nraise SystemExit(2)\n"},
    )
    with pytest.raises(ExecutionException, match="exited with status 2"):
        runyard.projects.run(str(project), "crash.py")
    (run,) = _all_runs()
    assert run.info.status == "FAILED"


def test_scripts_run_without_an_mlproject(tmp_path: Path, report: Path) -> None:
    project = write_files(
        tmp_path / "scripts",
        {
            "hello.sh": 'echo "$MLFLOW_RUN_ID $1" > "$PROJECT_REPORT"\n',
            "hello.py": "import os\nopen(os.environ['PROJECT_REPORT'], 'w').write('py')\n",
        },
    )
    submitted = runyard.projects.run(str(project), "hello.sh", parameters={"x": "1"})
    # Undeclared parameters follow the script: $SHELL hello.sh --x 1
    assert report.read_text().split() == [submitted.run_id, "--x"]
    tags = Client().get_run(submitted.run_id).data.tags
    assert tags["mlflow.project.entryPoint"] == "hello.sh"
    runyard.projects.run(str(project), "hello.py")
    assert report.read_text() == "py"
    with pytest.raises(ExecutionException, match="Could not find nope.txt among entry points"):
        runyard.projects.run(str(project), "nope.txt")


def test_experiment_by_name_or_id(demo: Path, report: Path) -> None:
    submitted = runyard.projects.run(
        str(demo), parameters={"epochs": 1}, experiment_name="projects"
    )
    experiment = Client().get_experiment_by_name("projects")
    assert experiment is not None
    run = Client().get_run(submitted.run_id)
    assert run.info.experiment_id == experiment.experiment_id
    assert read_report(report)["env"]["MLFLOW_EXPERIMENT_ID"] == experiment.experiment_id
    again = runyard.projects.run(
        str(demo), parameters={"epochs": 1}, experiment_id=experiment.experiment_id
    )
    assert Client().get_run(again.run_id).info.experiment_id == experiment.experiment_id
    with pytest.raises(InvalidParameterValue, match="Specify only one of 'experiment_name' or"):
        runyard.projects.run(
            str(demo), parameters={"epochs": 1}, experiment_name="a", experiment_id="1"
        )


def test_run_inside_an_active_run_is_its_child(demo: Path, report: Path) -> None:
    with runyard.start_run() as parent:
        submitted = runyard.projects.run(str(demo), parameters={"epochs": 1})
    tags = Client().get_run(submitted.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.info.run_id


def test_existing_run_id_is_used(demo: Path, report: Path) -> None:
    client = Client()
    existing = client.create_run("0", run_name="made-before")
    submitted = runyard.projects.run(
        str(demo), parameters={"epochs": 1}, run_id=existing.info.run_id
    )
    assert submitted.run_id == existing.info.run_id
    assert read_report(report)["active_run_id"] == existing.info.run_id
    run = client.get_run(existing.info.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.project.env"] == "local"
    assert len(_all_runs()) == 1


def test_git_project_records_commit_repo_and_branch(tmp_path: Path, report: Path) -> None:
    root = tmp_path / "repo"
    commits = git_repo(root)
    uri = f"file://{root}#models/demo"
    submitted = runyard.projects.run(uri, version="feature", parameters={"epochs": 2})
    run = Client().get_run(submitted.run_id)
    assert run.data.params["alpha"] == "0.7"  # the default on the feature branch
    assert run.data.tags["mlflow.source.name"] == uri
    assert run.data.tags["mlflow.source.git.commit"] == commits["feature"]
    assert run.data.tags["mlflow.source.git.repoURL"] == f"file://{root}"
    assert run.data.tags["mlflow.source.git.branch"] == "feature"
    assert read_report(report)["cwd"].endswith("/models/demo")
    by_commit = runyard.projects.run(uri, version=commits["first"], parameters={"epochs": 2})
    run = Client().get_run(by_commit.run_id)
    assert run.data.params["alpha"] == "0.5"
    assert run.data.tags["mlflow.source.git.commit"] == commits["first"]
    assert "mlflow.source.git.branch" not in run.data.tags


def test_remote_path_parameter_is_downloaded_to_the_storage_dir(
    tmp_path: Path, report: Path
) -> None:
    client = Client()
    source = client.create_run("0")
    (tmp_path / "input.txt").write_text("remote data")
    client.log_artifact(source.info.run_id, str(tmp_path / "input.txt"), "inputs")
    client.set_terminated(source.info.run_id)
    project = write_files(
        tmp_path / "p",
        {
            "MLproject": "entry_points:\n  main:\n    parameters: {data: path}\n"
            "    command: 'cp {data} \"$PROJECT_REPORT\"'\n",
        },
    )
    uri = f"runs:/{source.info.run_id}/inputs/input.txt"
    storage = tmp_path / "storage"
    submitted = runyard.projects.run(
        str(project), parameters={"data": uri}, storage_dir=str(storage)
    )
    assert report.read_text() == "remote data"
    (downloaded,) = storage.glob("*/param_0/inputs/input.txt")
    assert downloaded.read_text() == "remote data"
    assert client.get_run(submitted.run_id).data.params == {"data": uri}


def test_asynchronous_run_returns_at_once_and_waits(demo: Path, report: Path) -> None:
    submitted = runyard.projects.run(str(demo), parameters={"epochs": 3}, synchronous=False)
    assert submitted.get_status() in ("RUNNING", "FINISHED")
    run = Client().get_run(submitted.run_id)
    assert run.data.params["epochs"] == "3"  # logged before returning
    assert submitted.wait() is True
    assert submitted.get_status() == "FINISHED"
    assert Client().get_run(submitted.run_id).info.status == "FINISHED"
    assert read_report(report)["active_run_id"] == submitted.run_id
    assert len(_all_runs()) == 1


def test_asynchronous_failure_is_reported_by_wait(demo: Path, report: Path) -> None:
    submitted = runyard.projects.run(str(demo), "fail", synchronous=False)
    assert submitted.wait() is False
    assert submitted.get_status() == "FAILED"
    assert Client().get_run(submitted.run_id).info.status == "FAILED"


def test_cancel_kills_the_command_and_marks_the_run_killed(
    demo: Path, report: Path, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    pidfile.touch()  # the path parameter must exist; the command writes its pid into it
    submitted = runyard.projects.run(
        str(demo), "sleep", parameters={"pidfile": str(pidfile)}, synchronous=False
    )
    pid = int(_wait_for_file(pidfile))
    assert submitted.get_status() == "RUNNING"
    submitted.cancel()
    assert _gone(pid)
    assert submitted.get_status() == "KILLED"
    assert Client().get_run(submitted.run_id).info.status == "KILLED"


def test_unsupported_backend_and_env_manager_are_refused(demo: Path, report: Path) -> None:
    with pytest.raises(ExecutionException, match="unsupported execution mode databricks"):
        runyard.projects.run(str(demo), backend="databricks")
    with pytest.raises(InvalidParameterValue, match="Invalid value for `env_manager`: 'pipenv'"):
        runyard.projects.run(str(demo), parameters={"epochs": 1}, env_manager="pipenv")
    with pytest.raises(InvalidParameterValue, match="Invalid backend config JSON"):
        runyard.projects.run(str(demo), parameters={"epochs": 1}, backend_config="{nope")
    assert _all_runs() == []


def test_python_env_project_cannot_use_conda(tmp_path: Path, report: Path) -> None:
    project = write_files(
        tmp_path / "p", {"python_env.yaml": "python: '3.11'\n", "a.py": "print(1)\n"}
    )
    with pytest.raises(InvalidParameterValue, match="python_env project cannot be executed using"):
        runyard.projects.run(str(project), "a.py", env_manager="conda")


def test_conda_missing_is_one_line_and_starts_nothing(
    tmp_path: Path, report: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_files(
        tmp_path / "p",
        {"conda.yaml": "dependencies: [python=3.11, {pip: [six]}]\n", "a.py": "print(1)\n"},
    )
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CONDA_EXE", raising=False)
    with pytest.raises(RunyardError) as info:
        runyard.projects.run(str(project), "a.py", env_manager="conda")
    assert info.value.message.startswith("--env-manager conda needs conda")
    assert "\n" not in info.value.message
    assert _all_runs() == []


def test_docker_env_without_an_engine_is_one_line(
    tmp_path: Path, report: Path, no_docker_engine: None
) -> None:
    project = write_files(
        tmp_path / "p",
        {"MLproject": "name: boxed\ndocker_env: {image: 'python:3.11-slim'}\n", "a.py": ""},
    )
    with pytest.raises(ExecutionException) as info:
        runyard.projects.run(str(project), "a.py")
    message = info.value.message
    assert message.startswith(
        "Cannot run project 'boxed' in its docker_env: no Docker engine is running"
    )
    assert "\n" not in message
    assert _all_runs() == []


def test_sigterm_while_waiting_kills_the_command_and_the_run(
    demo: Path, report: Path, tmp_path: Path
) -> None:
    # A child interpreter runs the project synchronously and gets SIGTERM while it waits.
    pidfile = tmp_path / "pid"
    pidfile.touch()
    code = (
        "import runyard.projects\n"
        f"runyard.projects.run({str(demo)!r}, 'sleep', parameters={{'pidfile': {str(pidfile)!r}}})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    pid = int(_wait_for_file(pidfile))
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    # Killed by the re-delivered SIGTERM, or exiting with 128 + SIGTERM after it.
    assert proc.returncode in (-signal.SIGTERM, 128 + signal.SIGTERM), stderr
    assert _gone(pid)
    (run,) = _all_runs()
    assert run.info.status == "KILLED"
