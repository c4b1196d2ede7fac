"""Deployment plugins: discovery through a real ``runyard.deployments`` entry point (a dist-info
directory on sys.path, as pip installs it), the interface, and the CLI driving a plugin."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import Result

from runyard.deployments import (
    BaseDeploymentClient,
    PredictionsResponse,
    get_deploy_client,
    installed_targets,
    run_local,
    target_help,
)
from runyard.deployments.local import LocalDeploymentClient
from runyard.deployments.plugins import parse_target_uri
from runyard.errors import (
    InvalidParameterValue,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    RunyardError,
)

Invoke = Callable[..., Result]
ErrorCheck = Callable[[Result, str], None]

JSONFILE_PLUGIN = '''
"""A deployment target that keeps its deployments in a JSON file (the target URI's suffix)."""
import json
from pathlib import Path

from runyard.deployments import BaseDeploymentClient, PredictionsResponse
from runyard.errors import ResourceAlreadyExists, ResourceDoesNotExist


class JsonFileDeploymentClient(BaseDeploymentClient):
    def __init__(self, target_uri):
        super().__init__(target_uri)
        self.path = Path(target_uri.partition(":")[2])

    def _load(self):
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def _save(self, deployments):
        self.path.write_text(json.dumps(deployments))

    def create_deployment(self, name, model_uri, flavor=None, config=None, endpoint=None):
        deployments = self._load()
        if name in deployments:
            raise ResourceAlreadyExists(f"Deployment {name} exists")
        deployments[name] = {
            "name": name,
            "model_uri": model_uri,
            "flavor": flavor or "python_function",
            "config": config or {},
            "endpoint": endpoint,
        }
        self._save(deployments)
        return deployments[name]

    def update_deployment(self, name, model_uri=None, flavor=None, config=None, endpoint=None):
        deployments = self._load()
        current = self.get_deployment(name)
        current.update(model_uri=model_uri or current["model_uri"], config=config or {})
        deployments[name] = current
        self._save(deployments)
        return current

    def delete_deployment(self, name, config=None, endpoint=None):
        deployments = self._load()
        deployments.pop(name, None)
        self._save(deployments)

    def list_deployments(self, endpoint=None):
        return list(self._load().values())

    def get_deployment(self, name, endpoint=None):
        try:
            return self._load()[name]
        except KeyError:
            raise ResourceDoesNotExist(f"No deployment {name}") from None

    def predict(self, deployment_name=None, inputs=None, endpoint=None):
        self.get_deployment(deployment_name)
        if hasattr(inputs, "sum"):  # a DataFrame: the sum of each row
            return PredictionsResponse({"predictions": inputs.sum(axis=1).tolist()})
        return PredictionsResponse({"predictions": inputs})

    def explain(self, deployment_name=None, df=None, endpoint=None):
        return {"columns": list(df.columns)}


def run_local(name, model_uri, flavor=None, config=None):
    Path(config["marker"]).write_text(json.dumps([name, model_uri, flavor]))


def target_help():
    return "Target jsonfile: deployments in a JSON file. URI: jsonfile:<path>."
'''

LEGACY_PLUGIN = '''
"""A plugin written against the MLflow 1.x interface: no ``endpoint`` or ``config`` arguments."""
from runyard.deployments import BaseDeploymentClient

CALLS = []


class LegacyClient(BaseDeploymentClient):
    def create_deployment(self, name, model_uri, flavor=None, config=None):
        CALLS.append(("create", name, model_uri, config))
        return {"name": name, "flavor": "python_function"}

    def update_deployment(self, name, model_uri=None, flavor=None, config=None):
        return {"name": name, "flavor": "python_function"}

    def delete_deployment(self, name):
        CALLS.append(("delete", name))

    def list_deployments(self):
        return [{"name": "a", "replicas": 3}]

    def get_deployment(self, name):
        return {"name": name}

    def predict(self, deployment_name, df):
        return {"predictions": []}


def run_local(name, model_uri, flavor=None, config=None):
    pass


def target_help():
    return "legacy"
'''

INCOMPLETE_PLUGIN = """
from runyard.deployments import BaseDeploymentClient


class Half(BaseDeploymentClient):
    create_deployment = update_deployment = delete_deployment = None
    list_deployments = get_deployment = predict = None


def run_local(name, model_uri, flavor=None, config=None):
    pass
"""

ENTRY_POINTS = """
[runyard.deployments]
jsonfile = ry_test_jsonfile
legacy = ry_test_legacy
incomplete = ry_test_incomplete
broken = ry_test_not_installed
local = ry_test_jsonfile

[mlflow.deployments]
mlflowonly = mlflow_only_plugin.deploy
"""

PLUGIN_MODULES = ("ry_test_jsonfile", "ry_test_legacy", "ry_test_incomplete")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path holding an installed distribution (dist-info with its
    entry_points.txt) and the plugin modules it names, as pip would lay them out."""
    root = tmp_path / "site-packages"
    dist_info = root / "ry_test_plugins-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ry-test-plugins\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    (root / "ry_test_jsonfile.py").write_text(JSONFILE_PLUGIN)
    (root / "ry_test_legacy.py").write_text(LEGACY_PLUGIN)
    (root / "ry_test_incomplete.py").write_text(INCOMPLETE_PLUGIN)
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in PLUGIN_MODULES:
        sys.modules.pop(name, None)


# -- discovery ----------------------------------------------------------------------------------
def test_plugin_is_discovered_through_its_entry_point(site: Path, tmp_path: Path) -> None:
    assert installed_targets() == ["local", "broken", "incomplete", "jsonfile", "legacy"]
    client = get_deploy_client(f"jsonfile:{tmp_path / 'd.json'}")
    assert type(client).__name__ == "JsonFileDeploymentClient"
    assert isinstance(client, BaseDeploymentClient)
    assert client.target_uri == f"jsonfile:{tmp_path / 'd.json'}"
    assert type(client).__module__ == "ry_test_jsonfile"


def test_without_the_distribution_only_local_is_installed() -> None:
    assert installed_targets() == ["local"]
    with pytest.raises(ResourceDoesNotExist, match='"jsonfile"'):
        get_deploy_client("jsonfile")


def test_a_plugin_cannot_shadow_the_builtin_local_target(site: Path) -> None:
    assert isinstance(get_deploy_client("local"), LocalDeploymentClient)
    assert installed_targets().count("local") == 1


def test_unknown_target_lists_the_installed_ones(site: Path) -> None:
    with pytest.raises(ResourceDoesNotExist) as info:
        get_deploy_client("sagemaker:/eu-west-1")
    message = info.value.message
    assert 'No plugin found for managing model deployments to "sagemaker"' in message
    assert "Installed targets: local, broken, incomplete, jsonfile, legacy." in message
    assert "'runyard.deployments'" in message


def test_mlflow_only_plugin_is_reported_as_such(site: Path) -> None:
    with pytest.raises(ResourceDoesNotExist) as info:
        get_deploy_client("mlflowonly")
    assert "installed as an MLflow plugin only" in info.value.message
    assert "mlflow_only_plugin.deploy" in info.value.message


def test_plugin_that_fails_to_import(site: Path) -> None:
    with pytest.raises(RunyardError, match='Failed to load the plugin "broken"'):
        get_deploy_client("broken")


def test_plugin_missing_part_of_the_interface(site: Path) -> None:
    with pytest.raises(RunyardError, match="Missing interfaces: target_help"):
        get_deploy_client("incomplete")


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("local", "local"),
        ("local:/srv/d", "local"),
        ("sagemaker:/eu", "sagemaker"),
        ("a_b:", "a_b"),
    ],
)
def test_parse_target_uri(uri: str, name: str) -> None:
    assert parse_target_uri(uri) == name


@pytest.mark.parametrize("uri", ["", ":/x", "/abs/path"])
def test_parse_target_uri_rejects_non_targets(uri: str) -> None:
    with pytest.raises(InvalidParameterValue, match="Not a proper deployment URI"):
        parse_target_uri(uri)


# -- the interface through a plugin ---------------------------------------------------------------
def test_plugin_client_round_trip(site: Path, tmp_path: Path) -> None:
    client = get_deploy_client(f"jsonfile:{tmp_path / 'd.json'}")
    created = client.create_deployment("a", "models:/m/1", config={"replicas": "2"})
    assert created["name"] == "a"
    with pytest.raises(ResourceAlreadyExists):
        client.create_deployment("a", "models:/m/1")
    client.update_deployment("a", model_uri="models:/m/2")
    assert client.get_deployment("a")["model_uri"] == "models:/m/2"
    assert [d["name"] for d in client.list_deployments()] == ["a"]
    response = client.predict("a", pd.DataFrame({"x": [1, 2], "y": [10, 20]}))
    assert response["predictions"] == [11, 22]
    assert response.get_predictions().iloc[:, 0].tolist() == [11, 22]
    client.delete_deployment("a")
    client.delete_deployment("a")  # idempotent
    assert client.list_deployments() == []
    with pytest.raises(RunyardError, match="unimplemented in base client") as info:
        client.list_endpoints()
    assert info.value.error_code == "NOT_IMPLEMENTED"


def test_run_local_and_target_help_go_to_the_plugin_module(site: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran.json"
    run_local("jsonfile", "dev", "runs:/abc/model", None, {"marker": str(marker)})
    assert json.loads(marker.read_text()) == ["dev", "runs:/abc/model", None]
    assert target_help("jsonfile").startswith("Target jsonfile")
    assert "RUNYARD_DEPLOYMENTS_DIR" in target_help("local")


def test_base_client_defaults() -> None:
    class Minimal(BaseDeploymentClient):
        def create_deployment(self, name, model_uri, flavor=None, config=None, endpoint=None):  # type: ignore[no-untyped-def]
            return {"name": name}

        update_deployment = delete_deployment = list_deployments = create_deployment  # type: ignore[assignment]
        get_deployment = predict = create_deployment  # type: ignore[assignment]

    client = Minimal("minimal")
    with pytest.raises(RunyardError, match="explanations is not yet supported"):
        client.explain("a", pd.DataFrame())
    for call in (
        lambda: client.create_endpoint("e"),
        lambda: client.update_endpoint("e"),
        lambda: client.delete_endpoint("e"),
        lambda: client.get_endpoint("e"),
        lambda: client.predict_stream("a", {}),
    ):
        with pytest.raises(RunyardError) as info:
            call()
        assert info.value.error_code == "NOT_IMPLEMENTED"


def test_predictions_response_formats(tmp_path: Path) -> None:
    response = PredictionsResponse.from_json('{"predictions": [1, 2, 3]}')
    assert response.get_predictions("ndarray", dtype="float64").tolist() == [1.0, 2.0, 3.0]
    assert response.get_predictions().shape == (3, 1)
    assert PredictionsResponse({"predictions": "hi"}).get_predictions().iloc[0, 0] == "hi"
    records = PredictionsResponse({"predictions": {"a": 1, "b": 2}}).get_predictions()
    assert records.to_dict(orient="records") == [{"a": 1, "b": 2}]
    assert json.loads(response.to_json() or "") == {"predictions": [1, 2, 3]}
    out = tmp_path / "p.json"
    assert response.to_json(str(out)) is None
    assert json.loads(out.read_text()) == {"predictions": [1, 2, 3]}
    with pytest.raises(InvalidParameterValue, match="Unrecognized predictions format"):
        response.get_predictions("arrow")
    with pytest.raises(RunyardError, match="not valid JSON"):
        PredictionsResponse.from_json("{")
    with pytest.raises(RunyardError, match="must be a dictionary containing a 'predictions'"):
        PredictionsResponse.from_json("[1]")


# -- the CLI with a plugin target -----------------------------------------------------------------
def test_cli_drives_a_plugin(site: Path, tmp_path: Path, cli: Invoke) -> None:
    target = f"jsonfile:{tmp_path / 'd.json'}"
    result = cli(
        "deployments", "create", "-t", target, "--name", "a", "-m", "models:/m/1",
        "-C", "replicas=2", "-C", "expr=x=1", "--endpoint", "ep",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "python_function deployment a is created"
    stored = json.loads((tmp_path / "d.json").read_text())["a"]
    assert stored["config"] == {"replicas": "2", "expr": "x=1"}
    assert stored["endpoint"] == "ep"

    result = cli("deployments", "get", "-t", target, "--name", "a")
    assert "model_uri: models:/m/1" in result.stdout.splitlines()
    result = cli("deployments", "update", "-t", target, "--name", "a", "-m", "models:/m/2")
    assert result.stdout.strip() == "Deployment a is updated (with flavor python_function)"
    listed = json.loads(cli("deployments", "list", "-t", target, "--output", "json").stdout)
    assert [(d["name"], d["model_uri"]) for d in listed] == [("a", "models:/m/2")]
    table = cli("deployments", "list", "-t", target).stdout.splitlines()
    assert table[0].split() == ["NAME", "FLAVOR", "MODEL_URI"]
    assert table[-1].split() == ["a", "python_function", "models:/m/2"]

    records = tmp_path / "in.json"
    records.write_text(json.dumps([{"x": 1, "y": 2}, {"x": 3, "y": 4}]))
    out = tmp_path / "out.json"
    result = cli("deployments", "predict", "-t", target, "--name", "a", "-I", str(records))
    assert json.loads(result.stdout) == {"predictions": [3, 7]}
    cli("deployments", "predict", "-t", target, "--name", "a", "-I", str(records), "-O", str(out))
    assert json.loads(out.read_text()) == {"predictions": [3, 7]}
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"inputs": [[1, 2]], "params": {"k": 1}}))
    result = cli("deployments", "predict", "-t", target, "--name", "a", "-I", str(payload))
    assert json.loads(result.stdout) == {"predictions": {"inputs": [[1, 2]], "params": {"k": 1}}}
    result = cli("deployments", "explain", "-t", target, "--name", "a", "-I", str(records))
    assert json.loads(result.stdout) == {"columns": ["x", "y"]}

    result = cli("deployments", "help", "-t", target)
    assert result.stdout.startswith("Target jsonfile")
    marker = tmp_path / "ran.json"
    cli(
        "deployments",
        "run-local",
        "-t",
        target,
        "--name",
        "dev",
        "-m",
        "m",
        "-C",
        f"marker={marker}",
    )
    assert json.loads(marker.read_text()) == ["dev", "m", None]
    result = cli("deployments", "delete", "-t", target, "--name", "a")
    assert result.stdout.strip() == "Deployment a is deleted"
    assert cli("deployments", "list", "-t", target).stdout.strip() == "No deployments."


def test_cli_leaves_out_arguments_an_old_plugin_does_not_take(site: Path, cli: Invoke) -> None:
    import ry_test_legacy  # type: ignore[import-not-found]

    result = cli("deployments", "create", "-t", "legacy", "--name", "a", "-m", "m", "-C", "k=v")
    assert result.exit_code == 0, result.output
    assert cli("deployments", "delete", "-t", "legacy", "--name", "a").exit_code == 0
    assert ry_test_legacy.CALLS == [("create", "a", "m", {"k": "v"}), ("delete", "a")]
    table = cli("deployments", "list", "-t", "legacy").stdout.splitlines()
    assert table[0].split() == ["NAME", "REPLICAS"]
    assert table[-1].split() == ["a", "3"]


def test_cli_errors_are_one_line(site: Path, cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("deployments", "list", "-t", "nope"), "Installed targets: local, broken")
    user_error(cli("deployments", "help", "-t", "incomplete"), "Missing interfaces")
    user_error(cli("deployments", "list-endpoints", "-t", "jsonfile:/x"), "unimplemented")


def test_cli_usage_errors(site: Path, tmp_path: Path, cli: Invoke) -> None:
    target = f"jsonfile:{tmp_path / 'd.json'}"
    result = cli("deployments", "create", "-t", target, "--name", "a", "-m", "m", "-C", "novalue")
    assert result.exit_code == 2
    assert "name=value" in result.stderr
    result = cli(
        "deployments", "create", "-t", target, "--name", "a", "-m", "m", "-C", "k=1", "-C", "k=2"
    )
    assert result.exit_code == 1
    assert "Repeated parameter: 'k'" in result.stderr
    data = tmp_path / "in.json"
    data.write_text("[]")
    result = cli("deployments", "predict", "-t", target, "-I", str(data))
    assert result.exit_code == 2
    assert "exactly one of --name or --endpoint" in result.stderr
