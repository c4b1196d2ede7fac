"""``runyard models generate-dockerfile`` / ``build-docker``: the build context's content, the
image's entry point served for real (without Docker), and the one-line error where no Docker
engine runs."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

import runyard
from runyard.cli import main
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist, RunyardError
from runyard.serving.docker import (
    build_docker,
    entrypoint_argv,
    generate_dockerfile,
    render_dockerfile,
)
from runyard.version import __version__
from tests.serving.test_envs import save_doubler

CLOUDPICKLE = f"cloudpickle=={importlib.metadata.version('cloudpickle')}"
SIX = f"six=={importlib.metadata.version('six')}"
NO_ENGINE = "Cannot build image: no Docker engine is running (docker info failed: "
NO_ENGINE_END = "). Start Docker, or use `runyard models generate-dockerfile` and build elsewhere."


@pytest.fixture(scope="module")
def doubler(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("doubler")
    model = save_doubler(root / "model", root / "src", pip_requirements=[CLOUDPICKLE, SIX])
    doc = yaml.safe_load((model / "python_env.yaml").read_text())
    doc["python"] = "3.10.14"  # the image follows the model's Python, not this interpreter's
    (model / "python_env.yaml").write_text(yaml.safe_dump(doc))
    return model


@pytest.fixture(scope="module")
def context(doubler: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ctx") / "image"
    dockerfile = generate_dockerfile(str(doubler), out, progress=None)
    assert dockerfile == out / "Dockerfile"
    return out


def _instructions(dockerfile: Path) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\s*\\\n\s*", " ", dockerfile.read_text())
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _image_env(dockerfile: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in _instructions(dockerfile):
        if line.startswith("ENV "):
            for pair in line[4:].split():
                key, _, value = pair.partition("=")
                env[key] = value.strip('"')
    return env


# -- the build context ----------------------------------------------------------------------------
def test_context_holds_model_requirements_and_runyard_wheel(context: Path, doubler: Path) -> None:
    names = sorted(p.name for p in context.iterdir())
    wheel = f"runyard-{__version__}-py3-none-any.whl"
    assert names == ["Dockerfile", "model_dir", "requirements.txt", wheel]
    assert sorted(p.name for p in (context / "model_dir").iterdir()) == sorted(
        p.name for p in doubler.iterdir()
    )
    # The model's own pinned requirements; its runyard line is served by the wheel.
    assert (context / "requirements.txt").read_text().splitlines() == [CLOUDPICKLE, SIX]
    with zipfile.ZipFile(context / wheel) as archive:
        files = archive.namelist()
        metadata = archive.read(f"runyard-{__version__}.dist-info/METADATA").decode()
    assert "runyard/serving/__main__.py" in files
    assert f"Version: {__version__}" in metadata


def test_dockerfile_is_slim_non_root_and_serves_on_8080(context: Path) -> None:
    steps = _instructions(context / "Dockerfile")
    assert steps[0] == "FROM python:3.10-slim"
    wheel = f"runyard-{__version__}-py3-none-any.whl"
    assert f"COPY requirements.txt {wheel} /tmp/runyard-build/" in steps
    installs = [s for s in steps if "pip install" in s]
    assert installs == [
        f"RUN pip install --no-cache-dir /tmp/runyard-build/{wheel} "
        "-r /tmp/runyard-build/requirements.txt && rm -rf /tmp/runyard-build"
    ]
    assert "RUN python -m venv /opt/venv" in steps
    assert "COPY model_dir/ /opt/ml/model/" in steps
    users = [s for s in steps if s.startswith("USER ")]
    assert users == ["USER runyard"]
    assert steps.index(users[0]) > max(steps.index(s) for s in steps if s.startswith("RUN "))
    assert "EXPOSE 8080" in steps
    entrypoint = [s for s in steps if s.startswith("ENTRYPOINT ")]
    assert json.loads(entrypoint[0][len("ENTRYPOINT ") :]) == entrypoint_argv()
    assert " ".join(entrypoint_argv()) == (
        "python -m runyard.serving --model-path /opt/ml/model --host 0.0.0.0 --port 8080"
    )
    assert _image_env(context / "Dockerfile") == {
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PATH": "/opt/venv/bin:$PATH",
        "RUNYARD_MODELS_WORKERS": "1",
        "RUNYARD_SCORING_SERVER_REQUEST_TIMEOUT": "60",
    }
    text = (context / "Dockerfile").read_text()
    for heavy in ("apt-get", "build-essential", "gcc", "conda", "nginx", "java"):
        assert heavy not in text


def test_local_env_manager_installs_into_the_image_python(doubler: Path, tmp_path: Path) -> None:
    steps = _instructions(generate_dockerfile(str(doubler), tmp_path, "local", progress=None))
    assert not any("venv" in step for step in steps)
    assert steps[0] == "FROM python:3.10-slim"
    assert any(step.startswith("RUN pip install --no-cache-dir ") for step in steps)


def test_constraints_travel_with_the_requirements(tmp_path: Path) -> None:
    model = save_doubler(tmp_path / "m", tmp_path / "src", pip_requirements=["six"])
    (model / "pins.txt").write_text(f"{SIX}\n")
    (model / "requirements.txt").write_text("mlflow==3.17.2\nsix\n-c pins.txt\n")
    out = tmp_path / "ctx"
    generate_dockerfile(str(model), out, progress=None)
    assert (out / "requirements.txt").read_text() == "six\n"
    assert (out / "constraints.txt").read_text() == f"{SIX}\n"
    assert "-c /tmp/runyard-build/constraints.txt" in (out / "Dockerfile").read_text()


def test_regenerating_replaces_the_previous_context(doubler: Path, tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    generate_dockerfile(str(doubler), out, progress=None)
    (out / "model_dir" / "stale.txt").write_text("from an older model")
    (out / "runyard-0.0.1-py3-none-any.whl").write_text("an older wheel")
    (out / "notes.md").write_text("the user's own file")
    lines: list[str] = []
    generate_dockerfile(str(doubler), out, progress=lines.append)
    assert not (out / "model_dir" / "stale.txt").exists()
    assert not (out / "runyard-0.0.1-py3-none-any.whl").exists()
    assert (out / "notes.md").read_text() == "the user's own file"
    assert lines[-1] == f"Wrote {out / 'Dockerfile'}"


def test_failed_generation_leaves_no_directory(tmp_path: Path) -> None:
    out = tmp_path / "never"
    with pytest.raises(ResourceDoesNotExist):
        generate_dockerfile(str(tmp_path / "no-such-model"), out, progress=None)
    assert not out.exists()


def test_unknown_env_manager_is_refused(doubler: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterValue, match="Invalid env manager 'conda' for a Docker"):
        generate_dockerfile(str(doubler), tmp_path / "ctx", "conda", progress=None)
    assert not (tmp_path / "ctx").exists()
    with pytest.raises(InvalidParameterValue, match="Invalid env manager 'uv'"):
        render_dockerfile("3.11.7", "uv")


@pytest.fixture
def doubler_module(tmp_path: Path) -> Iterator[None]:
    save_doubler(tmp_path / "unused", tmp_path / "src")
    sys.path.insert(0, str(tmp_path / "src"))
    yield
    sys.path.remove(str(tmp_path / "src"))
    sys.modules.pop("envtest_doubler", None)


def test_context_from_a_registered_model(
    tracking_env: str, doubler_module: None, tmp_path: Path
) -> None:
    import envtest_doubler  # written by save_doubler (doubler_module)

    with runyard.start_run():
        runyard.pyfunc.log_model(
            name="model",
            python_model=envtest_doubler.Doubler(),
            pip_requirements=[CLOUDPICKLE],
            registered_model_name="doubler",
        )
    runyard.flush()
    out = tmp_path / "ctx"
    generate_dockerfile("models:/doubler/1", out, progress=None)
    assert (out / "model_dir" / "MLmodel").is_file()
    assert (out / "requirements.txt").read_text() == f"{CLOUDPICKLE}\n"


# -- no Docker engine ---------------------------------------------------------------------------
@pytest.fixture
def no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Docker client pointed at a socket nobody listens on."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")


def test_build_without_engine_fails_with_one_line(doubler: Path, no_engine: None) -> None:
    with pytest.raises(RunyardError) as info:
        build_docker(str(doubler), "doubler-image", progress=None)
    assert info.value.message.startswith(NO_ENGINE)
    assert info.value.message.endswith(NO_ENGINE_END)
    assert "\n" not in info.value.message


def test_build_without_docker_cli(
    doubler: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RunyardError) as info:
        build_docker(str(doubler), progress=None)
    assert info.value.message == (f"{NO_ENGINE}the docker command is not on PATH{NO_ENGINE_END}")


def test_cli_build_docker_without_engine(doubler: Path, no_engine: None) -> None:
    result = CliRunner().invoke(main, ["models", "build-docker", "-m", str(doubler), "-n", "x"])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {NO_ENGINE}")
    assert lines[0].endswith(NO_ENGINE_END)


def test_cli_generate_dockerfile(doubler: Path, tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    result = CliRunner().invoke(
        main,
        ["models", "generate-dockerfile", "-m", str(doubler), "-d", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Generated {out / 'Dockerfile'}; build it with: docker build -t NAME {out}\n"
    )
    assert f"Copying the model {doubler}" in result.stderr
    assert (out / "model_dir" / "MLmodel").is_file()


def test_cli_generate_dockerfile_default_directory(
    doubler: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main,
        ["models", "generate-dockerfile", "-m", str(doubler), "--env-manager", "local"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runyard-dockerfile" / "Dockerfile").is_file()


# -- the image's entry point, served for real ------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serve_like_the_image(python: str, context: Path, cwd: Path) -> Iterator[str]:
    """Run the Dockerfile's ENTRYPOINT with ``python``, the context's model_dir in place of
    /opt/ml/model, the Dockerfile's ENV, and a loopback port in place of 0.0.0.0:8080."""
    port = _free_port()
    argv = entrypoint_argv()
    argv[0] = python
    argv[argv.index("/opt/ml/model")] = str(context / "model_dir")
    argv[argv.index("0.0.0.0")] = "127.0.0.1"
    argv[argv.index("8080")] = str(port)
    image_env = _image_env(context / "Dockerfile")
    image_env.pop("PATH", None)
    # As in the image: no PYTHONPATH leading back to this checkout.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | image_env
    log = cwd / "server.log"
    with open(log, "w") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
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
        yield url
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.slow
def test_context_installs_and_serves_without_docker(context: Path, tmp_path: Path) -> None:
    # What `docker build` + `docker run` do, minus Docker: a fresh venv, the Dockerfile's pip
    # install of the wheel and requirements, then its ENTRYPOINT.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    wheel = next(context.glob("runyard-*.whl"))
    install = [python, "-m", "pip", "install", "--quiet", "--no-cache-dir", str(wheel)]
    proc = subprocess.run(
        [*install, "-r", str(context / "requirements.txt")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    with _serve_like_the_image(python, context, tmp_path) as url:
        ping = httpx.get(f"{url}/ping")
        assert ping.status_code == 200
        response = httpx.post(
            f"{url}/invocations", json={"dataframe_split": {"columns": ["x"], "data": [[3], [4]]}}
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [6, 8]}
        version = subprocess.run(
            [python, "-c", "import runyard; print(runyard.__file__)"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
        assert version.stdout.startswith(str(venv))  # the wheel's copy, not this checkout
