"""``runyard.serving.envs``: the environments a model is served from (local, virtualenv, uv,
conda), built from the model's own files, cached, locked and never left half-made."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
import yaml

import runyard.pyfunc
from runyard.errors import InvalidParameterValue, RunyardError
from runyard.serving.envs import (
    MARKER_FILE_NAME,
    PythonEnv,
    RunyardSource,
    environment_dir,
    find_python,
    model_requirements,
    prepare_environment,
    read_python_env,
    runyard_source,
)
from runyard.version import __version__

REPO = Path(__file__).resolve().parents[2]
THIS_PYTHON = platform.python_version()
THIS_MINOR = ".".join(THIS_PYTHON.split(".")[:2])

MODEL_CODE = textwrap.dedent(
    '''
    """A tiny custom model whose predict needs its own requirement (six)."""

    import runyard.pyfunc


    class Doubler(runyard.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            import six

            return [int(x) * 2 + int(six.PY2) for x in model_input["x"]]
    '''
)


def _installed(package: str) -> str:
    return f"{package}=={importlib.metadata.version(package)}"


def save_doubler(path: Path, code_dir: Path, **kwargs: object) -> Path:
    """Save the Doubler model (its class shipped in code/) to ``path``."""
    module = code_dir / "envtest_doubler.py"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(MODEL_CODE)
    sys.path.insert(0, str(code_dir))
    try:
        import envtest_doubler

        runyard.pyfunc.save_model(
            str(path), python_model=envtest_doubler.Doubler(), code_paths=[str(module)], **kwargs
        )
    finally:
        sys.path.remove(str(code_dir))
        sys.modules.pop("envtest_doubler", None)
    return path


@pytest.fixture(scope="module")
def doubler(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Doubler with requirements runyard (added first by save_model), cloudpickle, six."""
    root = tmp_path_factory.mktemp("doubler")
    return save_doubler(
        root / "model",
        root / "src",
        pip_requirements=[_installed("cloudpickle"), _installed("six")],
    )


@pytest.fixture
def stripped_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holding only an empty directory: no python3.X, uv, conda or docker on it."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CONDA_EXE", raising=False)
    return empty


# -- reading the model's environment files -------------------------------------------------------
def test_local_is_this_interpreter(doubler: Path, tmp_path: Path) -> None:
    assert prepare_environment(str(doubler), "local", env_root=tmp_path) == sys.executable
    assert list(tmp_path.iterdir()) == []


def test_unknown_env_manager_is_refused(doubler: Path) -> None:
    with pytest.raises(InvalidParameterValue, match="Invalid env manager 'pipenv'"):
        prepare_environment(str(doubler), "pipenv")


def test_python_env_is_read_from_the_model(doubler: Path) -> None:
    env = read_python_env(doubler)
    assert env.python == THIS_PYTHON
    assert env.minor_version == THIS_MINOR
    assert env.dependencies == ("-r requirements.txt",)
    assert any(dep.startswith("pip") for dep in env.build_dependencies)


def test_runyard_lines_are_replaced_by_the_running_runyard(doubler: Path) -> None:
    assert (doubler / "requirements.txt").read_text().splitlines()[0] == f"runyard=={__version__}"
    requirements, constraints = model_requirements(doubler)
    assert requirements == [_installed("cloudpickle"), _installed("six")]
    assert constraints == []
    kept, _ = model_requirements(doubler, install_runyard=False)
    assert kept[0] == f"runyard=={__version__}"


def test_mlflow_requirements_nested_files_and_constraints(tmp_path: Path) -> None:
    model = save_doubler(tmp_path / "m", tmp_path / "src", pip_requirements=["six"])
    (model / "extra.txt").write_text("cloudpickle>=2  # nested\n")
    (model / "pins.txt").write_text("six==1.17.0\n")
    (model / "requirements.txt").write_text(
        "mlflow==3.17.2\nmlflow-skinny[extras]==3.17.2\n-r extra.txt\n-c pins.txt\nsix\n"
    )
    requirements, constraints = model_requirements(model)
    assert requirements == ["cloudpickle>=2", "six"]
    assert constraints == ["six==1.17.0"]


def test_model_without_python_env_file_uses_mlmodel_and_requirements(tmp_path: Path) -> None:
    model = save_doubler(tmp_path / "m", tmp_path / "src", pip_requirements=["six"])
    (model / "python_env.yaml").unlink()
    env = read_python_env(model)
    assert env.python == THIS_PYTHON  # the flavor's python_version
    assert env.dependencies == ("-r requirements.txt",)
    (model / "requirements.txt").unlink()
    assert read_python_env(model).dependencies == (f"runyard=={__version__}", "six")  # conda.yaml


def test_not_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(RunyardError, match="not a model directory"):
        read_python_env(tmp_path)


def test_runyard_installs_from_this_checkout() -> None:
    source = runyard_source()
    assert source.path == REPO
    assert source.editable
    assert source.pip_args() == ["-e", str(REPO)]


def test_a_change_of_runyards_dependencies_changes_the_environment(tmp_path: Path) -> None:
    tree = tmp_path / "checkout"
    (tree / "runyard").mkdir(parents=True)
    (tree / "runyard" / "__init__.py").write_text("")
    (tree / "pyproject.toml").write_text('[project]\nname = "runyard"\ndependencies = []\n')
    before = RunyardSource(tree, editable=True).fingerprint()
    (tree / "pyproject.toml").write_text('[project]\nname = "runyard"\ndependencies = ["six"]\n')
    assert RunyardSource(tree, editable=True).fingerprint() != before
    assert RunyardSource(None).fingerprint() == ""
    assert RunyardSource(None).pip_args() == [f"runyard=={__version__}"]
    assert RunyardSource(tree).pip_args() == [str(tree)]


# -- interpreters ---------------------------------------------------------------------------------
def test_find_python_for_this_version_is_this_interpreter() -> None:
    assert find_python(f"{THIS_MINOR}.1") == sys.executable


def test_find_python_checks_what_a_candidate_really_is(stripped_path: Path) -> None:
    # A python3.4 on PATH that is really this interpreter is not taken for Python 3.4.
    (stripped_path / "python3.4").symlink_to(sys.executable)
    with pytest.raises(RunyardError) as info:
        find_python("3.4.10")
    message = info.value.message
    assert "needs Python 3.4" in message
    assert "no python3.4 was found on PATH" in message
    assert "\n" not in message


def test_bad_python_version_is_refused() -> None:
    with pytest.raises(InvalidParameterValue, match="Invalid Python version 'three'"):
        PythonEnv("three").minor_version  # noqa: B018


def test_python_version_mismatch_fails_before_building(tmp_path: Path, stripped_path: Path) -> None:
    model = save_doubler(tmp_path / "m", tmp_path / "src", pip_requirements=["six"])
    doc = yaml.safe_load((model / "python_env.yaml").read_text())
    doc["python"] = "3.4.10"
    (model / "python_env.yaml").write_text(yaml.safe_dump(doc))
    root = tmp_path / "envs"
    with pytest.raises(RunyardError, match=r"needs Python 3\.4 .*python3\.4"):
        prepare_environment(str(model), "virtualenv", env_root=root, progress=None)
    assert not root.exists() or list(root.iterdir()) == []


def test_conda_missing_is_one_clear_line(
    doubler: Path, tmp_path: Path, stripped_path: Path
) -> None:
    with pytest.raises(RunyardError) as info:
        prepare_environment(str(doubler), "conda", env_root=tmp_path, progress=None)
    assert info.value.message.startswith("--env-manager conda needs conda")
    assert "\n" not in info.value.message


def test_environment_dir_is_keyed_by_content(doubler: Path, tmp_path: Path) -> None:
    venv = environment_dir(doubler, "virtualenv", env_root=tmp_path)
    assert venv.parent == tmp_path
    assert venv.name.startswith("runyard-venv-")
    assert environment_dir(doubler, "virtualenv", env_root=tmp_path) == venv
    assert environment_dir(doubler, "uv", env_root=tmp_path).name.startswith("runyard-uv-")
    assert environment_dir(doubler, "virtualenv", False, env_root=tmp_path) != venv
    other = save_doubler(tmp_path / "m2", tmp_path / "src", pip_requirements=["six"])
    assert environment_dir(other, "virtualenv", env_root=tmp_path) != venv


def test_env_root_comes_from_the_environment(
    doubler: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNYARD_ENV_ROOT", raising=False)
    monkeypatch.setenv("MLFLOW_ENV_ROOT", str(tmp_path / "mlflow-envs"))
    assert environment_dir(doubler, "virtualenv").parent == tmp_path / "mlflow-envs"
    monkeypatch.setenv("RUNYARD_ENV_ROOT", str(tmp_path / "runyard-envs"))
    assert environment_dir(doubler, "virtualenv").parent == tmp_path / "runyard-envs"


# -- building (slow: real virtual environments) ---------------------------------------------------
def _in_env(python: str, code: str) -> str:
    proc = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO.parent
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def env_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("envs")


@pytest.fixture(scope="module")
def built(doubler: Path, env_root: Path) -> tuple[str, list[str], Path]:
    """The Doubler's virtualenv, built once, over a leftover of a build that died half-way."""
    env_dir = environment_dir(doubler, "virtualenv", env_root=env_root)
    (env_dir / "bin").mkdir(parents=True)
    (env_dir / "bin" / "half-written").write_text("a build killed before its marker")
    lines: list[str] = []
    python = prepare_environment(
        str(doubler), "virtualenv", env_root=env_root, progress=lines.append
    )
    return python, lines, env_dir


@pytest.mark.slow
def test_virtualenv_is_built_from_the_model(built: tuple[str, list[str], Path]) -> None:
    python, lines, env_dir = built
    assert Path(python) == env_dir / "bin" / "python"
    assert any("Creating a virtualenv environment" in line for line in lines), lines
    assert any("(cached for next time)" in line for line in lines), lines
    assert not (env_dir / "bin" / "half-written").exists()
    record = json.loads((env_dir / MARKER_FILE_NAME).read_text())
    assert record["requirements"] == [_installed("cloudpickle"), _installed("six")]
    assert record["runyard"] == ["-e", str(REPO)]
    assert _in_env(python, "import sys; print(sys.prefix)") == str(env_dir)


@pytest.mark.slow
def test_env_runs_runyard_from_the_checkout_and_predicts(
    built: tuple[str, list[str], Path], doubler: Path
) -> None:
    python, _, _ = built
    code = (
        "import json, pandas, runyard, runyard.pyfunc, six\n"
        f"model = runyard.pyfunc.load_model({str(doubler)!r})\n"
        "print(json.dumps([runyard.__file__, six.__file__,"
        " model.predict(pandas.DataFrame({'x': [1, 2, 5]}))]))"
    )
    runyard_file, six_file, prediction = json.loads(_in_env(python, code))
    assert runyard_file == str(REPO / "runyard" / "__init__.py")
    assert six_file.startswith(str(Path(python).parents[1]))
    assert prediction == [2, 4, 10]


@pytest.mark.slow
def test_cached_environment_is_reused(
    built: tuple[str, list[str], Path], doubler: Path, env_root: Path
) -> None:
    python, _, env_dir = built
    marker = (env_dir / MARKER_FILE_NAME).stat().st_mtime_ns
    lines: list[str] = []
    again = prepare_environment(
        str(doubler), "virtualenv", env_root=env_root, progress=lines.append
    )
    assert again == python
    assert lines == [f"Using the cached virtualenv environment {env_dir}"]
    assert (env_dir / MARKER_FILE_NAME).stat().st_mtime_ns == marker


@pytest.mark.slow
def test_uv_missing_is_one_clear_line(built: tuple[str, list[str], Path], doubler: Path) -> None:
    # The built environment has runyard but no uv, neither on PATH nor beside its python.
    python, _, _ = built
    code = (
        "from runyard.errors import RunyardError\n"
        "from runyard.serving.envs import prepare_environment\n"
        "try:\n"
        f"    prepare_environment({str(doubler)!r}, 'uv', env_root='unused')\n"
        "except RunyardError as exc:\n"
        "    print(exc.message)\n"
    )
    proc = subprocess.run(
        [python, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": str(Path(python).parent)},
    )
    assert proc.stdout.strip() == (
        "--env-manager uv needs uv, and no uv was found on PATH. Install it with "
        "`pip install uv`, or use --env-manager virtualenv."
    ), proc.stderr


def _small_model(tmp_path: Path, requirements: list[str]) -> Path:
    """A model whose environment is quick to build: no build tools, runyard not installed."""
    model = save_doubler(tmp_path / "small", tmp_path / "src", pip_requirements=["six"])
    (model / "requirements.txt").write_text("\n".join(requirements) + "\n")
    doc = yaml.safe_load((model / "python_env.yaml").read_text())
    doc["build_dependencies"] = []
    (model / "python_env.yaml").write_text(yaml.safe_dump(doc))
    return model


@pytest.mark.slow
def test_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    model = _small_model(tmp_path, ["six", "this is not a requirement !!"])
    root = tmp_path / "envs"
    for _ in range(2):  # the lock is released, and the second try fails the same way
        with pytest.raises(
            RunyardError, match="Could not install the model's requirements"
        ) as info:
            prepare_environment(str(model), "virtualenv", False, env_root=root, progress=None)
        assert "Invalid requirement" in info.value.message
        assert "\n" not in info.value.message
        assert not environment_dir(model, "virtualenv", False, env_root=root).exists()
    assert [p.suffix for p in root.iterdir()] == [".lock"]


@pytest.mark.slow
def test_two_processes_build_one_environment(tmp_path: Path) -> None:
    model = _small_model(tmp_path, ["six"])
    root = tmp_path / "envs"
    code = (
        "import sys\n"
        "from runyard.serving.envs import prepare_environment\n"
        f"print(prepare_environment({str(model)!r}, 'virtualenv', False, env_root={str(root)!r}))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    pythons = {out.strip() for out, _ in outputs}
    assert len(pythons) == 1
    stderr = "".join(err for _, err in outputs)
    assert stderr.count("Creating a virtualenv environment") == 1, stderr
    assert _in_env(pythons.pop(), "import six; print(six.__name__)") == "six"


@pytest.mark.slow
def test_uv_builds_the_same_environment(tmp_path: Path) -> None:
    model = _small_model(tmp_path, ["six==1.17.0"])
    lines: list[str] = []
    root = tmp_path / "envs"
    python = prepare_environment(str(model), "uv", False, env_root=root, progress=lines.append)
    env_dir = environment_dir(model, "uv", False, env_root=root)
    assert Path(python) == env_dir / "bin" / "python"
    assert any("Creating a uv environment" in line for line in lines), lines
    assert _in_env(python, "import six, sys; print(six.__version__, sys.prefix)") == (
        f"1.17.0 {env_dir}"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _commands_running(executable: str) -> list[list[str]]:
    """argv of every process on this machine started as ``executable``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode().split("\0")
        except OSError:
            continue  # the process ended meanwhile
        if argv and argv[0] == executable:
            found.append(argv)
    return found


@pytest.mark.slow
def test_models_serve_answers_from_the_built_env(
    built: tuple[str, list[str], Path], doubler: Path, env_root: Path, tmp_path: Path
) -> None:
    python, _, env_dir = built
    port = _free_port()
    cli = Path(sys.executable).parent / "runyard"
    command = [str(cli), "models", "serve", "-m", str(doubler), "-p", str(port)]
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [*command, "--env-manager", "virtualenv"],
            env={**os.environ, "RUNYARD_ENV_ROOT": str(env_root)},
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not answer /ping"
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        response = httpx.post(
            f"{url}/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[1], [7]]}}
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [2, 14]}
        servers = [argv for argv in _commands_running(python) if str(port) in argv]
        assert servers, "no scoring server runs from the model's environment"
        assert servers[0][1:3] == ["-m", "runyard.serving"]
    finally:
        process.terminate()
        process.wait(60)
    assert f"Using the cached virtualenv environment {env_dir}" in log.read_text()
