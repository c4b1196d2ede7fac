"""Projects in their own environments: a real virtualenv built from a tiny ``python_env.yaml``,
with runyard installed into it, cached under a tmp ``RUNYARD_ENV_ROOT``."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import pytest

import runyard.projects
from runyard.errors import InvalidParameterValue, RunyardError
from runyard.projects import load_project
from runyard.projects.execute import (
    CommandEnvironment,
    choose_env_manager,
    handover_env,
    portable_tracking_uri,
)
from runyard.serving.envs import (
    MARKER_FILE_NAME,
    PythonEnv,
    python_env_from_conda_yaml,
    read_python_env_file,
)
from runyard.tracking.client import Client
from tests.projects.project_files import REPORT_PY, read_report, write_files

MLPROJECT = """
name: envs
python_env: python_env.yaml
entry_points:
  main:
    parameters: {epochs: {type: int, default: 1}}
    command: "python report.py --epochs {epochs}"
"""


@pytest.fixture(scope="module")
def env_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One environment cache for the module, so the environment is built once."""
    return tmp_path_factory.mktemp("project-envs")


@pytest.fixture
def env_project(
    tmp_path: Path, report: Path, env_root: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("RUNYARD_ENV_ROOT", str(env_root))
    python_env = (
        f"python: '{platform.python_version()}'\nbuild_dependencies: []\ndependencies: []\n"
    )
    return write_files(
        tmp_path / "envs",
        {"MLproject": MLPROJECT, "python_env.yaml": python_env, "report.py": REPORT_PY},
    )


def _env_dirs(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if (p / MARKER_FILE_NAME).is_file()]


@pytest.mark.slow
def test_virtualenv_is_built_once_and_the_command_runs_in_it(
    env_project: Path, report: Path, env_root: Path
) -> None:
    submitted = runyard.projects.run(str(env_project), parameters={"epochs": 2})
    (env_dir,) = _env_dirs(env_root)
    assert env_dir.name.startswith("runyard-venv-")
    seen = read_report(report)
    assert seen["prefix"] == str(env_dir)  # "python" is the environment's interpreter
    assert seen["env"]["VIRTUAL_ENV"] == str(env_dir)
    assert seen["argv"] == ["--epochs", "2"]
    assert seen["active_run_id"] == submitted.run_id  # runyard runs inside the environment
    run = Client().get_run(submitted.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.project.env"] == "virtualenv"
    assert run.data.metrics == {"seen": 1.0}

    marker = (env_dir / MARKER_FILE_NAME).stat().st_mtime_ns
    again = runyard.projects.run(str(env_project), parameters={"epochs": 3})
    assert _env_dirs(env_root) == [env_dir]
    assert (env_dir / MARKER_FILE_NAME).stat().st_mtime_ns == marker  # reused, not rebuilt
    assert read_report(report)["active_run_id"] == again.run_id


@pytest.mark.slow
def test_local_env_manager_overrides_the_python_env(env_project: Path, report: Path) -> None:
    submitted = runyard.projects.run(str(env_project), env_manager="local")
    assert read_report(report)["prefix"] == sys.prefix
    assert Client().get_run(submitted.run_id).data.tags["mlflow.project.env"] == "local"


@pytest.mark.slow
def test_python_version_that_is_not_here_is_refused_before_the_run(
    env_project: Path, report: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (env_project / "python_env.yaml").write_text("python: '3.4.10'\n")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(RunyardError) as info:
        runyard.projects.run(str(env_project))
    assert info.value.message.startswith("The project needs Python 3.4 ")
    assert info.value.message.endswith("or run with --env-manager local to use this interpreter.")
    assert runyard.search_runs(search_all_experiments=True, output_format="list") == []


def test_command_environment_goes_first_on_path() -> None:
    env = CommandEnvironment("virtualenv", Path("/envs/x/bin"), (("VIRTUAL_ENV", "/envs/x"),))
    applied = env.apply({"PATH": "/usr/bin", "PYTHONHOME": "/elsewhere", "KEEP": "1"})
    assert applied == {
        "PATH": f"/envs/x/bin{os.pathsep}/usr/bin",
        "VIRTUAL_ENV": "/envs/x",
        "KEEP": "1",
    }
    assert CommandEnvironment("local").apply({"PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}


def test_handover_variables_come_in_both_spellings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNYARD_DEFAULT_ARTIFACT_ROOT", raising=False)
    monkeypatch.delenv("MLFLOW_DEFAULT_ARTIFACT_ROOT", raising=False)
    env = handover_env("sqlite:///runyard.db", "abc", "7")
    assert env["MLFLOW_TRACKING_URI"] == env["RUNYARD_TRACKING_URI"]
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path}/runyard.db"
    assert env["MLFLOW_RUN_ID"] == env["RUNYARD_RUN_ID"] == "abc"
    assert env["MLFLOW_EXPERIMENT_ID"] == env["RUNYARD_EXPERIMENT_ID"] == "7"
    assert env["RUNYARD_DEFAULT_ARTIFACT_ROOT"] == str(tmp_path / "runyard-artifacts")
    assert "RUNYARD_REGISTRY_URI" not in env
    remote = handover_env("http://127.0.0.1:5000", registry_uri="sqlite:///reg.db")
    assert remote["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    assert remote["RUNYARD_REGISTRY_URI"] == f"sqlite:///{tmp_path}/reg.db"
    assert "MLFLOW_RUN_ID" not in remote
    assert "RUNYARD_DEFAULT_ARTIFACT_ROOT" not in remote


def test_portable_tracking_uri() -> None:
    assert portable_tracking_uri("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert portable_tracking_uri("sqlite:///:memory:") == "sqlite:///:memory:"
    assert portable_tracking_uri("postgresql://u@h/db") == "postgresql://u@h/db"
    rel = portable_tracking_uri("sqlite:///x.db?timeout=5")
    assert rel.startswith("sqlite:////")
    assert rel.endswith("/x.db?timeout=5")


def test_python_env_files_of_a_project(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "python_env.yaml": "build_dependencies: [pip]\ndependencies: [six, -r extra.txt]\n",
            "conda.yaml": "dependencies: [python=3.10.4, pip, {pip: [numpy==2.0, six]}]\n",
        },
    )
    env = read_python_env_file(tmp_path / "python_env.yaml")
    assert env == PythonEnv(platform.python_version(), ("pip",), ("six", "-r extra.txt"))
    assert python_env_from_conda_yaml(tmp_path / "conda.yaml") == PythonEnv(
        "3.10.4", (), ("numpy==2.0", "six")
    )
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(InvalidParameterValue, match="Invalid bad.yaml"):
        read_python_env_file(tmp_path / "bad.yaml")


def test_env_manager_choice(tmp_path: Path) -> None:
    plain = load_project(write_files(tmp_path / "plain", {"a.py": ""}))
    assert choose_env_manager(plain, None) == "local"
    assert choose_env_manager(plain, "uv") == "uv"
    py = load_project(write_files(tmp_path / "py", {"python_env.yaml": "python: '3.11'\n"}))
    assert choose_env_manager(py, None) == "virtualenv"
    assert choose_env_manager(py, "local") == "local"
    conda = load_project(write_files(tmp_path / "conda", {"conda.yaml": "dependencies: []\n"}))
    assert choose_env_manager(conda, "virtualenv") == "virtualenv"
    boxed = load_project(write_files(tmp_path / "box", {"MLproject": "docker_env: {image: x}\n"}))
    assert choose_env_manager(boxed, "virtualenv") == "docker"


def test_conda_project_uses_conda_when_installed_else_a_virtualenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conda = load_project(write_files(tmp_path / "conda", {"conda.yaml": "dependencies: []\n"}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("CONDA_EXE", raising=False)
    assert choose_env_manager(conda, None) == "virtualenv"
    assert "conda is not installed" in capsys.readouterr().err
    executable = bin_dir / "conda"
    executable.write_text("#!/bin/sh\nexit 0\n")
    executable.chmod(0o755)
    assert choose_env_manager(conda, None) == "conda"
