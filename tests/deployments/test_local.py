"""The built-in ``local`` target: real sklearn models from a real registry, served by real
scoring-server processes that the tests create, update, query and stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from click.testing import Result
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import runyard
from runyard.deployments import _process, get_deploy_client
from runyard.deployments.local import LocalDeploymentClient, ServerConfig
from runyard.errors import (
    InvalidParameterValue,
    InvalidState,
    ResourceDoesNotExist,
    RunyardError,
)
from runyard.models.download import download_model
from runyard.tracking.client import Client

Invoke = Callable[..., Result]
ErrorCheck = Callable[[Result, str], None]


# -- fixtures -------------------------------------------------------------------------------------
class Iris:
    """Two registered versions of ``iris`` that predict differently; alias champion → v1."""

    def __init__(self) -> None:
        self.features, labels = load_iris(return_X_y=True, as_frame=True)
        self.models = {
            "1": LogisticRegression(max_iter=500).fit(self.features, labels),
            "2": DecisionTreeClassifier(max_depth=1).fit(self.features, labels),
        }

    def expected(self, version: str, rows: int) -> list[int]:
        """What version ``version`` predicts for the first ``rows`` rows."""
        return [int(x) for x in self.models[version].predict(self.features.head(rows))]

    def split_payload(self, rows: int) -> dict[str, Any]:
        """A ``dataframe_split`` scoring request for the first ``rows`` rows."""
        head = self.features.head(rows)
        return {"dataframe_split": {"columns": list(head.columns), "data": head.values.tolist()}}


@pytest.fixture
def iris(tracking_env: str, monkeypatch: pytest.MonkeyPatch) -> Iris:
    """The two versions logged with runyard.sklearn.log_model and registered."""
    monkeypatch.setenv("RUNYARD_ASYNC_LOGGING", "false")
    data = Iris()
    runyard.set_experiment("deployments")
    for version in ("1", "2"):
        with runyard.start_run():
            runyard.sklearn.log_model(
                data.models[version],
                name="clf",
                registered_model_name="iris",
                input_example=data.features.head(3),
            )
    Client().set_registered_model_alias("iris", "champion", 1)
    assert data.expected("1", 150) != data.expected("2", 150)
    return data


def _group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid`` (a server and its workers)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry.name))
    return members


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and _process.is_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _gone(pid: int) -> bool:
    return not _group_members(pid) and not _process.is_alive(pid)


@pytest.fixture
def local(deployments_dir: Path) -> Iterator[LocalDeploymentClient]:
    """A client on the isolated state directory; every server it started is stopped after."""
    client = LocalDeploymentClient("local")
    yield client
    for deployment in client.list_deployments():
        client.delete_deployment(deployment["name"], config={"grace_period": "2"})
    for pid in list(_process._CHILDREN):
        _process.stop(pid, grace_period=2)
    for pid in _processes_mentioning(str(deployments_dir)):
        os.kill(pid, signal.SIGKILL)


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def _rows(stdout: str) -> dict[str, list[str]]:
    """Table body rows by their first cell."""
    rows = [line.split() for line in stdout.splitlines()[2:] if line.strip()]
    return {row[0]: row for row in rows}


# -- the whole life of a deployment, through the CLI ----------------------------------------------
@pytest.mark.slow
def test_lifecycle_through_the_cli(
    iris: Iris,
    local: LocalDeploymentClient,
    deployments_dir: Path,
    tmp_path: Path,
    cli: Invoke,
    user_error: ErrorCheck,
) -> None:
    created = _ok(
        cli("deployments", "create", "-t", "local", "--name", "iris-svc", "-m",
            "models:/iris@champion")
    )  # fmt: skip
    assert created.startswith("python_function deployment iris-svc is created at http://127.0.0.1:")
    first = local.get_deployment("iris-svc")
    assert first["status"] == "running"
    assert (first["model_uri"], first["source_uri"]) == ("models:/iris@champion", "models:/iris/1")
    assert (first["registered_model_name"], first["model_version"]) == ("iris", "1")
    assert first["url"] == f"http://127.0.0.1:{first['port']}"
    assert Path(first["model_path"], "MLmodel").is_file()
    assert Path(first["model_path"]).is_relative_to(deployments_dir / "iris-svc")
    assert _process.is_alive(first["pid"])
    assert httpx.get(f"{first['url']}/ping").status_code == 200

    # The alias moves on; the deployment keeps serving the files it copied (version 1).
    Client().set_registered_model_alias("iris", "champion", 2)
    request = tmp_path / "input.json"
    request.write_text(json.dumps(iris.split_payload(20)))
    out = tmp_path / "out.json"
    _ok(cli("deployments", "predict", "-t", "local", "--name", "iris-svc", "-I", str(request),
            "-O", str(out)))  # fmt: skip
    assert json.loads(out.read_text()) == {"predictions": iris.expected("1", 20)}
    printed = _ok(cli("deployments", "predict", "-t", "local", "--name", "iris-svc", "-I",
                      str(request)))  # fmt: skip
    assert json.loads(printed) == {"predictions": iris.expected("1", 20)}
    assert local.predict("iris-svc", iris.features.head(5))["predictions"] == iris.expected("1", 5)

    row = _rows(_ok(cli("deployments", "list", "-t", "local")))["iris-svc"]
    assert row[1:6] == ["running", "python_function", "models:/iris@champion", "1", first["url"]]
    assert "status: running" in _ok(cli("deployments", "get", "-t", "local", "--name", "iris-svc"))
    user_error(
        cli("deployments", "create", "-t", "local", "--name", "iris-svc", "-m", "models:/iris/2"),
        "Deployment 'iris-svc' already exists",
    )
    assert local.get_deployment("iris-svc")["pid"] == first["pid"]  # untouched

    # Update: blue-green onto version 2.
    updated = _ok(cli("deployments", "update", "-t", "local", "--name", "iris-svc", "-m",
                      "models:/iris/2"))  # fmt: skip
    assert updated.strip() == "Deployment iris-svc is updated (with flavor python_function)"
    second = local.get_deployment("iris-svc")
    assert second["status"] == "running"
    assert (second["model_version"], second["revision"]) == ("2", 2)
    assert second["pid"] != first["pid"]
    assert second["port"] != first["port"]
    assert second["created_time"] == first["created_time"]
    assert _gone(first["pid"])
    assert not Path(first["model_path"]).exists()
    assert local.predict("iris-svc", iris.split_payload(7))["predictions"] == iris.expected("2", 7)

    assert _ok(cli("deployments", "delete", "-t", "local", "--name", "iris-svc")).strip() == (
        "Deployment iris-svc is deleted"
    )
    assert _gone(second["pid"])
    assert not (deployments_dir / "iris-svc").exists()
    assert _ok(cli("deployments", "list", "-t", "local")).strip() == "No deployments."
    user_error(
        cli("deployments", "get", "-t", "local", "--name", "iris-svc"),
        "No deployment named 'iris-svc'",
    )


# -- the Python API: in-place update, workers, a crashed server, local:<dir> ---------------------
@pytest.mark.slow
def test_in_place_update_with_workers_and_a_crash(
    iris: Iris, local: LocalDeploymentClient, tmp_path: Path
) -> None:
    alt = tmp_path / "alt-state"
    client = get_deploy_client(f"local:{alt}")
    assert isinstance(client, LocalDeploymentClient)
    try:
        first = client.create_deployment("svc", "models:/iris/1", config={"workers": "2"})
        assert (alt / "svc" / "deployment.json").is_file()
        assert first["config"]["workers"] == 2
        assert len(_group_members(first["pid"])) >= 3  # the server and its two workers
        assert local.list_deployments() == []  # another state directory

        second = client.update_deployment("svc", config={"port": str(first["port"])})
        assert second["port"] == first["port"]
        assert second["pid"] != first["pid"]
        assert second["config"]["workers"] == 2  # kept from the first revision
        assert second["model_version"] == "1"
        assert _gone(first["pid"])
        rows = iris.features.head(4).to_dict(orient="records")
        assert client.predict("svc", {"dataframe_records": rows})["predictions"] == (
            iris.expected("1", 4)
        )

        os.killpg(second["pid"], signal.SIGKILL)  # the server dies behind our back
        deadline = time.monotonic() + 10
        while _process.is_alive(second["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [d["status"] for d in client.list_deployments()] == ["exited"]
        with pytest.raises(InvalidState, match="'svc' is not running"):
            client.predict("svc", iris.features.head(1))
    finally:
        client.delete_deployment("svc", config={"grace_period": "2"})
    assert not (alt / "svc").exists()


# -- failures leave nothing behind ----------------------------------------------------------------
@pytest.mark.slow
def test_a_model_that_cannot_load_fails_with_the_log_tail(
    iris: Iris,
    local: LocalDeploymentClient,
    deployments_dir: Path,
    tmp_path: Path,
    cli: Invoke,
    user_error: ErrorCheck,
) -> None:
    broken = Path(download_model("models:/iris/1", dst_path=str(tmp_path / "broken")))
    for name in ("model.skops", "model.pkl"):
        if (broken / name).exists():
            (broken / name).write_bytes(b"this is not a model")
    result = cli("deployments", "create", "-t", "local", "--name", "bad", "-m", str(broken),
                 "-C", "startup_timeout=60")  # fmt: skip
    user_error(result, "The server of deployment 'bad'")
    assert "Server log (last lines):" in result.stderr
    assert "File is not a zip file" in result.stderr  # skops, the default format, failing
    assert "^^^" not in result.stderr
    assert not (deployments_dir / "bad").exists()
    assert _processes_mentioning(str(deployments_dir)) == []
    assert _process._CHILDREN == {}

    # A failed update leaves the deployment serving what it served.
    good = local.create_deployment("good", "models:/iris/1")
    with pytest.raises(RunyardError, match="exited with status 1 before it answered /ping"):
        local.update_deployment("good", str(broken))
    assert local.get_deployment("good") == good
    assert sorted(p.name for p in (deployments_dir / "good").glob("rev-*")) == ["rev-1"]
    # In place (same port): the old revision is started again after the new one fails.
    with pytest.raises(RunyardError, match="exited with status 1"):
        local.update_deployment("good", str(broken), config={"port": good["port"]})
    again = local.get_deployment("good")
    assert again["status"] == "running"
    assert (again["revision"], again["port"], again["model_version"]) == (1, good["port"], "1")
    assert again["pid"] != good["pid"]
    assert _gone(good["pid"])
    assert local.predict("good", iris.split_payload(3))["predictions"] == iris.expected("1", 3)


def test_a_port_in_use_is_refused_before_starting(
    iris: Iris, local: LocalDeploymentClient, deployments_dir: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InvalidParameterValue, match=f"Cannot serve on 127.0.0.1:{port}"):
            local.create_deployment("p", "models:/iris/1", config={"port": port})
    assert not (deployments_dir / "p").exists()
    assert _process._CHILDREN == {}


def test_a_model_uri_that_does_not_resolve(
    iris: Iris, local: LocalDeploymentClient, deployments_dir: Path
) -> None:
    with pytest.raises(InvalidParameterValue, match="alias nobody not found"):
        local.create_deployment("p", "models:/iris@nobody")
    with pytest.raises(ResourceDoesNotExist):
        local.create_deployment("p", "models:/iris/9")
    assert not (deployments_dir / "p").exists()


# -- foreground serving ---------------------------------------------------------------------------
@pytest.mark.slow
def test_run_local_serves_in_the_foreground(
    iris: Iris, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    model = download_model("models:/iris/2", dst_path=str(tmp_path / "model"))
    port = _process.free_port("127.0.0.1")
    runyard_cli = Path(sys.executable).parent / "runyard"
    proc = subprocess.Popen(
        [str(runyard_cli), "deployments", "run-local", "-t", "local", "--name", "dev",
         "-m", model, "-C", f"port={port}"],
        env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/ping").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        answer = httpx.post(f"{url}/invocations", json=iris.split_payload(3))
        assert answer.json() == {"predictions": iris.expected("2", 3)}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert proc.returncode is not None


# -- validation (no server needed) ----------------------------------------------------------------
def test_names_flavors_and_config_are_validated(
    deployments_dir: Path, cli: Invoke, user_error: ErrorCheck
) -> None:
    base = ("deployments", "create", "-t", "local", "-m", "models:/iris/1")
    user_error(cli(*base, "--name", "../etc"), "Invalid deployment name '../etc'")
    user_error(cli(*base, "--name", "a", "-f", "sklearn"), "python_function' flavor only")
    user_error(cli(*base, "--name", "a", "-C", "replicas=2"), "Unknown config key 'replicas'")
    user_error(cli(*base, "--name", "a", "-C", "port=http"), "Invalid config port='http'")
    user_error(cli(*base, "--name", "a", "-C", "port=70000"), "use 1-65535")
    user_error(cli(*base, "--name", "a", "-C", "env_manager=pip"), "use one of local,")
    user_error(cli(*base, "--name", "a", "-C", "workers=0"), "workers=0: at least 1")
    assert not deployments_dir.exists() or list(deployments_dir.iterdir()) == []


def test_unknown_deployments(deployments_dir: Path, cli: Invoke, user_error: ErrorCheck) -> None:
    assert _ok(cli("deployments", "list", "-t", "local")).strip() == "No deployments."
    assert json.loads(_ok(cli("deployments", "list", "-t", "local", "--output", "json"))) == []
    user_error(cli("deployments", "get", "-t", "local", "--name", "x"), "No deployment named 'x'")
    user_error(
        cli("deployments", "update", "-t", "local", "--name", "x", "-m", "m"),
        "No deployment named 'x'",
    )
    request = deployments_dir.parent / "in.json"
    request.write_text('{"inputs": [[1]]}')
    user_error(
        cli("deployments", "predict", "-t", "local", "--name", "x", "-I", str(request)),
        "No deployment named 'x'",
    )
    assert _ok(cli("deployments", "delete", "-t", "local", "--name", "x")).strip() == (
        "Deployment x is deleted"
    )
    assert "RUNYARD_DEPLOYMENTS_DIR" in _ok(cli("deployments", "help", "-t", "local"))


def test_an_interrupted_create_blocks_the_name_until_deleted(
    deployments_dir: Path, cli: Invoke, user_error: ErrorCheck
) -> None:
    (deployments_dir / "half").mkdir(parents=True)  # what a killed `create` leaves
    user_error(
        cli("deployments", "create", "-t", "local", "--name", "half", "-m", "m"),
        "creation was interrupted",
    )
    _ok(cli("deployments", "delete", "-t", "local", "--name", "half"))
    assert not (deployments_dir / "half").exists()


def test_server_config_parsing() -> None:
    parsed = ServerConfig.parse(
        {"host": "0.0.0.0", "port": "8081", "timeout": "5", "install_mlflow": "false"}
    )
    assert (parsed.host, parsed.port, parsed.timeout) == ("0.0.0.0", 8081, 5.0)
    assert parsed.install_runyard is False
    merged = ServerConfig.parse({"workers": 3}, base=parsed)
    assert (merged.port, merged.workers) == (8081, 3)
    with pytest.raises(InvalidParameterValue, match="install_runyard"):
        ServerConfig.parse({"install_runyard": "maybe"})
    assert _process.url_for("0.0.0.0", 80) == "http://127.0.0.1:80"
    assert _process.url_for("::", 80) == "http://[::1]:80"


def test_predict_payloads() -> None:
    from runyard.deployments.local import _payload

    frame = pd.DataFrame({"a": [1, 2]})
    assert json.loads(_payload(frame)) == {
        "dataframe_split": {"index": [0, 1], "columns": ["a"], "data": [[1], [2]]}
    }
    assert json.loads(_payload({"instances": [1]})) == {"instances": [1]}
    assert json.loads(_payload({"a": [1, 2]})) == {"inputs": {"a": [1, 2]}}
    assert json.loads(_payload(frame["a"])) == {"inputs": [1, 2]}
    assert json.loads(_payload(frame.to_numpy())) == {"inputs": [[1], [2]]}
    assert _payload('{"inputs": [1]}') == b'{"inputs": [1]}'
    with pytest.raises(InvalidParameterValue, match="inputs is None"):
        _payload(None)
