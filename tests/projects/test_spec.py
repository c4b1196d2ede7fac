"""``runyard.projects.spec``: MLproject files, typed parameters and command templates."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from runyard.errors import InvalidParameterValue
from runyard.projects import (
    ExecutionException,
    InvalidProjectParameter,
    Parameter,
    load_project,
)
from runyard.projects.spec import CONDA_ENV, DOCKER_ENV, PYTHON_ENV, local_path_or_none
from tests.projects.project_files import demo_project, write_files


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return demo_project(tmp_path / "demo")


def _mlproject(root: Path, text: str, **files: str) -> Path:
    return write_files(root, {"MLproject": textwrap.dedent(text), **files})


# -- loading --------------------------------------------------------------------------------
def test_entry_points_and_typed_parameters_are_read(demo: Path) -> None:
    project = load_project(demo)
    assert project.name == "demo"
    assert project.directory == demo.resolve()
    assert sorted(project.entry_points) == ["fail", "main", "sleep"]
    params = project.entry_points["main"].parameters
    assert params["alpha"] == Parameter("alpha", "float", 0.5)
    assert params["epochs"] == Parameter("epochs", "int", None)  # shorthand: required
    assert params["label"] == Parameter("label", "string", "two words")
    assert params["data"].type == "path"
    assert params["source"].type == "uri"
    assert project.entry_points["main"].command.startswith("python report.py --alpha {alpha}")
    assert project.env_type is None
    assert project.env_config_path is None


def test_mlproject_file_name_is_matched_in_any_case(tmp_path: Path) -> None:
    write_files(tmp_path, {"mlProject": "name: lower\nentry_points: {main: {command: 'true'}}\n"})
    assert load_project(tmp_path).name == "lower"


def test_directory_without_mlproject_is_a_project_of_scripts(tmp_path: Path) -> None:
    write_files(tmp_path, {"train.py": "", "prep.sh": ""})
    project = load_project(tmp_path)
    assert project.name is None
    assert project.entry_points == {}
    assert project.get_entry_point("train.py").command == "python train.py"
    shell = os.environ.get("SHELL") or "bash"
    assert project.get_entry_point("prep.sh").command == f"{shell} prep.sh"
    assert project.get_entry_point("dir/my file.py").command == "python 'dir/my file.py'"


def test_unknown_entry_point_is_refused_with_mlflows_message(demo: Path) -> None:
    with pytest.raises(ExecutionException) as info:
        load_project(demo).get_entry_point("train.R2")
    assert info.value.message == (
        "Could not find train.R2 among entry points ['main', 'fail', 'sleep'] or interpret "
        "train.R2 as a runnable script. Supported script file extensions: ['.py', '.sh']"
    )


@pytest.mark.parametrize(
    ("key", "file_name", "env_type"),
    [("python_env", "env.yaml", PYTHON_ENV), ("conda_env", "env.yaml", CONDA_ENV)],
)
def test_environment_file_named_in_mlproject(
    tmp_path: Path, key: str, file_name: str, env_type: str
) -> None:
    _mlproject(tmp_path, f"{key}: {file_name}\n", **{file_name: "python: '3.11'\n"})
    project = load_project(tmp_path)
    assert project.env_type == env_type
    assert project.env_config_path == tmp_path.resolve() / file_name


def test_missing_environment_file_is_refused(tmp_path: Path) -> None:
    _mlproject(tmp_path, "python_env: nowhere.yaml\n")
    with pytest.raises(ExecutionException, match="python_env file .*nowhere.yaml, but no such"):
        load_project(tmp_path)
    _mlproject(tmp_path, "conda_env: conda-nowhere.yaml\n")
    with pytest.raises(ExecutionException, match="conda environment file .*conda-nowhere"):
        load_project(tmp_path)


def test_default_environment_files_are_found(tmp_path: Path) -> None:
    write_files(tmp_path, {"conda.yaml": "dependencies: [python=3.11]\n"})
    assert load_project(tmp_path).env_type == CONDA_ENV
    write_files(tmp_path, {"python_env.yaml": "python: '3.11'\n"})  # wins over conda.yaml
    project = load_project(tmp_path)
    assert project.env_type == PYTHON_ENV
    assert project.env_config_path == tmp_path.resolve() / "python_env.yaml"


def test_docker_env_is_read_and_checked(tmp_path: Path) -> None:
    _mlproject(
        tmp_path,
        """
        name: boxed
        docker_env:
          image: python:3.11-slim
          volumes: ["/data:/data"]
          environment: [["MODE", "test"], "HOME"]
        """,
    )
    project = load_project(tmp_path)
    assert project.env_type == DOCKER_ENV
    assert project.docker_env == {
        "image": "python:3.11-slim",
        "volumes": ["/data:/data"],
        "environment": [["MODE", "test"], "HOME"],
    }


@pytest.mark.parametrize(
    ("docker_env", "fragment"),
    [
        ("{volumes: ['/a:/a']}", "Docker environment specified but no image attribute found."),
        ("{image: x, volumes: /a}", "Docker volumes must be a list of strings"),
        ("{image: x, environment: {A: 1}}", "environment must be a list containing either"),
    ],
)
def test_invalid_docker_env_is_refused(tmp_path: Path, docker_env: str, fragment: str) -> None:
    _mlproject(tmp_path, f"docker_env: {docker_env}\n")
    with pytest.raises(ExecutionException) as info:
        load_project(tmp_path)
    assert info.value.message.startswith("Project configuration (MLproject file) was invalid: ")
    assert fragment in info.value.message


def test_more_than_one_environment_is_refused(tmp_path: Path) -> None:
    _mlproject(tmp_path, "python_env: p.yaml\nconda_env: c.yaml\n", **{"p.yaml": "", "c.yaml": ""})
    with pytest.raises(ExecutionException) as info:
        load_project(tmp_path)
    assert info.value.message.startswith("Project cannot contain multiple environment fields: ")
    assert "'conda_env'" in info.value.message
    assert "'python_env'" in info.value.message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("entry_points: [main]\n", "'entry_points' must be a mapping"),
        ("entry_points: {main: {parameters: {}}}\n", "entry point 'main' has no command"),
        ("entry_points: {main: {command: x, parameters: [a]}}\n", "must be a mapping"),
        ("entry_points: {main: {command: x, parameters: {a: [1]}}}\n", "parameter 'a' must be"),
        ("- just a list\n", "must hold a mapping"),
    ],
)
def test_malformed_mlproject_is_refused(tmp_path: Path, text: str, fragment: str) -> None:
    _mlproject(tmp_path, text)
    with pytest.raises(ExecutionException, match=fragment):
        load_project(tmp_path)


def test_unparsable_yaml_is_one_line(tmp_path: Path) -> None:
    _mlproject(tmp_path, "entry_points: {main: [\n")
    with pytest.raises(ExecutionException, match="Could not parse") as info:
        load_project(tmp_path)
    assert "\n" not in info.value.message


# -- parameters -----------------------------------------------------------------------------
def test_defaults_fill_in_and_user_values_win(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(demo.parent)
    entry = load_project(demo).entry_points["main"]
    params = entry.resolve({"epochs": 7, "alpha": "0.25"}, demo)
    assert params.declared == {
        "alpha": "0.25",
        "epochs": "7",
        "label": "two words",
        "data": str(demo / "data.csv"),  # a relative default is the project's file
        "source": "s3://bucket/key",
    }
    # Logged as given, as MLflow does; undeclared parameters are kept as extras.
    assert params.logged() == {
        "alpha": "0.25",
        "epochs": "7",
        "label": "two words",
        "data": "data.csv",
        "source": "s3://bucket/key",
    }
    assert params.extra == {}


def test_missing_required_parameter_names_it(demo: Path) -> None:
    entry = load_project(demo).entry_points["main"]
    with pytest.raises(ExecutionException) as info:
        entry.resolve({}, demo)
    assert info.value.message == "No value given for missing parameters: 'epochs'"
    assert isinstance(info.value, InvalidParameterValue)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"epochs": 1, "alpha": "notanumber"},
            "Invalid value 'notanumber' for parameter 'alpha' of entry point 'main': "
            "expected a float.",
        ),
        (
            {"epochs": "3.5"},
            "Invalid value '3.5' for parameter 'epochs' of entry point 'main': "
            "expected an integer.",
        ),
        (
            {"epochs": 1, "source": "no-scheme"},
            "Expected URI for parameter source but got no-scheme",
        ),
        (
            {"epochs": 1, "data": "missing.csv"},
            "Got value missing.csv for parameter data, but no such file or directory was found.",
        ),
    ],
)
def test_values_that_do_not_fit_their_type_are_refused(
    demo: Path, given: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidProjectParameter) as info:
        load_project(demo).entry_points["main"].resolve(given, demo)
    assert info.value.message == message


def test_numbers_accept_what_python_parses(demo: Path) -> None:
    entry = load_project(demo).entry_points["main"]
    params = entry.resolve({"epochs": " 12", "alpha": "1e-3"}, demo)
    assert params.declared["epochs"] == " 12"
    assert params.declared["alpha"] == "1e-3"
    assert entry.resolve({"epochs": 2, "alpha": 3}, demo).declared["alpha"] == "3"


def test_user_paths_are_taken_from_the_working_directory(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mine.csv").write_text("a\n")
    monkeypatch.chdir(tmp_path)
    entry = load_project(demo).entry_points["main"]
    assert entry.resolve({"epochs": 1, "data": "mine.csv"}, demo).declared["data"] == str(
        tmp_path / "mine.csv"
    )
    file_uri = f"file://{tmp_path}/mine.csv"
    assert entry.resolve({"epochs": 1, "data": file_uri}, demo).declared["data"] == str(
        tmp_path / "mine.csv"
    )
    remote = entry.resolve({"epochs": 1, "data": "s3://bucket/data.csv"}, demo)
    assert remote.declared["data"] == "s3://bucket/data.csv"  # downloaded when the run starts


def test_unknown_parameter_types_are_strings(tmp_path: Path) -> None:
    _mlproject(tmp_path, "entry_points: {main: {command: 'echo {x}', parameters: {x: widget}}}\n")
    entry = load_project(tmp_path).entry_points["main"]
    assert entry.resolve({"x": "anything"}).declared == {"x": "anything"}


def test_local_path_or_none() -> None:
    assert local_path_or_none("data/x.csv") == "data/x.csv"
    assert local_path_or_none("file:///tmp/a%20b") == "/tmp/a b"
    assert local_path_or_none("file://localhost/tmp/a") == "/tmp/a"
    assert local_path_or_none("s3://bucket/key") is None
    assert local_path_or_none("runs:/abc/model") is None


# -- commands -------------------------------------------------------------------------------
def test_command_quotes_values_and_appends_extra_parameters(demo: Path) -> None:
    entry = load_project(demo).entry_points["main"]
    params = entry.resolve({"epochs": 2, "label": "it's here", "seed": "4 2", "v": "1"}, demo)
    assert params.extra == {"seed": "4 2", "v": "1"}
    command = entry.command_for(params)
    assert command == (
        "python report.py --alpha 0.5 --epochs 2 --label 'it'\"'\"'s here' "
        f"--data {demo / 'data.csv'} --source s3://bucket/key --seed '4 2' --v 1"
    )


def test_command_with_an_undeclared_placeholder_is_refused(tmp_path: Path) -> None:
    _mlproject(tmp_path, "entry_points: {main: {command: 'run {a} {b}', parameters: {a: int}}}\n")
    entry = load_project(tmp_path).entry_points["main"]
    with pytest.raises(ExecutionException) as info:
        entry.command_for(entry.resolve({"a": 1}))
    assert info.value.message == (
        "The command of entry point 'main' refers to {b}, which is not one of its parameters (a)"
    )


def test_malformed_command_template_is_refused(tmp_path: Path) -> None:
    _mlproject(tmp_path, "entry_points: {main: {command: 'run {a'}}\n")
    entry = load_project(tmp_path).entry_points["main"]
    with pytest.raises(ExecutionException, match="the command of entry point 'main' is malformed"):
        entry.command_for(entry.resolve({}))
