"""``runyard.projects.docker``: the image name and the ``docker run`` line of a docker_env project
(building needs an engine; without one the run is refused, see test_run.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runyard.projects import ExecutionException, load_project
from runyard.projects.docker import WORKDIR, docker_run_argv, image_tag
from tests.projects.project_files import write_files

MLPROJECT = """
name: boxed
docker_env:
  image: python:3.11-slim
  volumes: ["/srv/data:/data"]
  environment: [["MODE", "test"], "RUNYARD_TEST_COPIED"]
entry_points:
  main:
    command: "python train.py"
"""


@pytest.fixture
def boxed(tmp_path: Path) -> Path:
    return write_files(tmp_path / "boxed", {"MLproject": MLPROJECT, "train.py": ""})


def test_image_is_named_after_the_project(boxed: Path) -> None:
    assert image_tag(load_project(boxed)) == "boxed:latest"  # not in git


def test_docker_run_line(boxed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNYARD_TEST_COPIED", "from-host")
    run_env = {"MLFLOW_RUN_ID": "abc", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/db/t.db"}
    argv = docker_run_argv(
        load_project(boxed),
        "boxed:latest",
        "python train.py --alpha 1",
        run_env,
        f"{tmp_path}/artifacts/0/abc/artifacts",
        {"gpus": "all", "t": True, "privileged": False},
    )
    assert argv[1:6] == ["run", "--rm", "--gpus", "all", "-t"]
    assert "--privileged" not in argv
    mounts = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-v"]
    assert mounts == [
        f"{tmp_path}/artifacts/0/abc/artifacts:{tmp_path}/artifacts/0/abc/artifacts",
        f"{tmp_path}/db:{tmp_path}/db",
        "/srv/data:/data",
    ]
    env = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-e"]
    assert env == [
        "MLFLOW_RUN_ID=abc",
        f"MLFLOW_TRACKING_URI=sqlite:///{tmp_path}/db/t.db",
        "MODE=test",
        "RUNYARD_TEST_COPIED=from-host",
    ]
    assert argv[-4:] == ["boxed:latest", "bash", "-c", "python train.py --alpha 1"]
    assert WORKDIR == "/mlflow/projects/code/"


def test_host_variable_the_project_expects_must_be_set(
    boxed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNYARD_TEST_COPIED", raising=False)
    with pytest.raises(ExecutionException, match="but RUNYARD_TEST_COPIED was not set"):
        docker_run_argv(load_project(boxed), "boxed:latest", "true", {}, "s3://b/a")


def test_docker_project_needs_a_name(tmp_path: Path) -> None:
    from runyard.projects.docker import check_docker

    project = write_files(tmp_path / "p", {"MLproject": "docker_env: {image: x}\n"})
    with pytest.raises(ExecutionException, match="Project name in MLProject must be specified"):
        check_docker(load_project(project))
