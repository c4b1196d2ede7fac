"""``runyard experiments ...``, plus what holds for the whole CLI (version, errors, start-up)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import runyard
from runyard.cli import main, output
from runyard.entities import ViewType
from runyard.tracking.client import Client

Invoke = Callable[..., Result]
ErrorCheck = Callable[[Result, str], None]


def _created_id(stdout: str) -> str:
    # "Created experiment 'NAME' with id N"
    return stdout.strip().rsplit(" ", 1)[-1]


# -- create -------------------------------------------------------------------------------------
def test_create_prints_id_and_stores_experiment(cli: Invoke, client: Client) -> None:
    result = cli("experiments", "create", "--experiment-name", "exp1")
    assert result.exit_code == 0, result.output
    experiment = client.get_experiment_by_name("exp1")
    assert experiment is not None
    assert result.stdout == f"Created experiment 'exp1' with id {experiment.experiment_id}\n"


def test_create_with_artifact_location(cli: Invoke, client: Client, tmp_path: Path) -> None:
    location = str(tmp_path / "elsewhere")
    result = cli("experiments", "create", "-n", "exp1", "-l", location)
    assert result.exit_code == 0, result.output
    assert client.get_experiment(_created_id(result.stdout)).artifact_location == location


def test_create_duplicate_name_is_one_line_error(
    cli: Invoke, client: Client, user_error: ErrorCheck
) -> None:
    client.create_experiment("exp1")
    user_error(cli("experiments", "create", "-n", "exp1"), "already exists")


def test_create_empty_name_is_error(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("experiments", "create", "-n", ""), "must not be empty")


def test_create_without_name_is_usage_error(cli: Invoke, usage_error: ErrorCheck) -> None:
    usage_error(cli("experiments", "create"), "--experiment-name")


# LIBRARY BUG (runyard/store/sql/experiments.py, create_experiment): a relative local
# artifact location is stored as typed, so each run's artifacts land relative to whatever
# directory the logging process runs in. MLflow's SqlAlchemyStore.create_experiment calls
# resolve_uri_if_local(), storing the absolute path. Fix: make scheme-less relative paths
# absolute (os.path.abspath) before inserting the experiment row.
def test_create_resolves_relative_artifact_location(
    cli: Invoke, client: Client, tmp_path: Path
) -> None:
    result = cli("experiments", "create", "-n", "exp1", "-l", "rel/artifacts")
    assert result.exit_code == 0, result.output
    experiment = client.get_experiment(_created_id(result.stdout))
    assert experiment.artifact_location == str(tmp_path / "rel" / "artifacts")


# -- search / list --------------------------------------------------------------------------------
@pytest.mark.parametrize("verb", ["search", "list"])
def test_search_table_lists_active_experiments(cli: Invoke, client: Client, verb: str) -> None:
    client.create_experiment("alpha")
    gone = client.create_experiment("gone")
    client.delete_experiment(gone)
    result = cli("experiments", verb)
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split()
    assert header[:3] == ["ID", "Name", "Artifact"]
    assert "Stage" in header
    assert "Created" in header
    names = {line.split()[1] for line in result.stdout.splitlines()[2:]}
    assert names == {"alpha", "Default"}


def test_search_json_matches_store(cli: Invoke, client: Client) -> None:
    client.create_experiment("alpha", tags={"team": "risk"})
    result = cli("experiments", "search", "--output", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    expected = client.search_experiments(ViewType.ACTIVE_ONLY)
    assert [e["experiment_id"] for e in listed] == [e.experiment_id for e in expected]
    by_name = {e["name"]: e for e in listed}
    alpha = client.get_experiment_by_name("alpha")
    assert alpha is not None
    assert by_name["alpha"] == {
        "artifact_location": alpha.artifact_location,
        "creation_time": alpha.creation_time,
        "experiment_id": alpha.experiment_id,
        "last_update_time": alpha.last_update_time,
        "lifecycle_stage": "active",
        "name": "alpha",
        "tags": {"team": "risk"},
    }


def test_search_view_filter_and_max_results(cli: Invoke, client: Client) -> None:
    for name in ("fraud-a", "fraud-b", "churn"):
        client.create_experiment(name)
    client.delete_experiment(client.create_experiment("fraud-old"))

    def names(*args: str) -> list[str]:
        result = cli("experiments", "search", "--output", "json", *args)
        assert result.exit_code == 0, result.output
        return [e["name"] for e in json.loads(result.stdout)]

    assert names("--view", "deleted_only") == ["fraud-old"]
    assert set(names("--view", "all")) == {"Default", "fraud-a", "fraud-b", "churn", "fraud-old"}
    assert set(names("--filter", "name LIKE 'fraud%'")) == {"fraud-a", "fraud-b"}
    assert names("--order-by", "name ASC") == ["Default", "churn", "fraud-a", "fraud-b"]
    assert len(names("--max-results", "2")) == 2


def test_search_pages_through_everything(
    cli: Invoke, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output, "PAGE_SIZE", 2)
    for i in range(6):
        client.create_experiment(f"exp{i}")
    result = cli("experiments", "list", "--output", "json")
    assert len(json.loads(result.stdout)) == 7
    result = cli("experiments", "list", "--output", "json", "--max-results", "5")
    assert len(json.loads(result.stdout)) == 5


def test_search_bad_filter_is_one_line_error(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("experiments", "search", "--filter", "name ="), "Invalid")


def test_search_bad_view_is_usage_error(cli: Invoke, usage_error: ErrorCheck) -> None:
    usage_error(cli("experiments", "list", "--view", "sometimes"), "--view")


# -- get ------------------------------------------------------------------------------------------
def test_get_by_id_as_table(cli: Invoke, client: Client) -> None:
    experiment_id = client.create_experiment("exp1", tags={"team": "risk"})
    result = cli("experiments", "get", "-x", experiment_id)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Experiment", "ID", experiment_id]
    assert lines[1].split() == ["Name", "exp1"]
    assert "team=risk" in result.stdout
    assert "active" in result.stdout


def test_get_by_name_as_json(cli: Invoke, client: Client) -> None:
    experiment_id = client.create_experiment("exp1")
    result = cli("experiments", "get", "--experiment-name", "exp1", "--output", "json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    stored = client.get_experiment(experiment_id)
    assert got["experiment_id"] == experiment_id
    assert got["artifact_location"] == stored.artifact_location
    assert got["creation_time"] == stored.creation_time


def test_get_unknown_id_is_one_line_error(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("experiments", "get", "-x", "999"), "999")


def test_get_malformed_id_is_one_line_error(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("experiments", "get", "-x", "abc"), "abc")


def test_get_unknown_name_is_one_line_error(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("experiments", "get", "-n", "nope"), "No experiment named 'nope'")


@pytest.mark.parametrize("args", [[], ["-x", "0", "-n", "Default"]])
def test_get_needs_exactly_one_selector(
    cli: Invoke, usage_error: ErrorCheck, args: list[str]
) -> None:
    usage_error(cli("experiments", "get", *args), "exactly one")


# -- delete / restore / rename --------------------------------------------------------------------
def test_delete_and_restore(cli: Invoke, client: Client) -> None:
    experiment_id = client.create_experiment("exp1")
    result = cli("experiments", "delete", "-x", experiment_id)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Experiment with ID {experiment_id} has been deleted.\n"
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    result = cli("experiments", "restore", "--experiment-id", experiment_id)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Experiment with id {experiment_id} has been restored.\n"
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_delete_unknown_is_one_line_error(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("experiments", "delete", "-x", "42"), "42")


def test_delete_twice_is_one_line_error(
    cli: Invoke, client: Client, user_error: ErrorCheck
) -> None:
    experiment_id = client.create_experiment("exp1")
    client.delete_experiment(experiment_id)
    user_error(cli("experiments", "delete", "-x", experiment_id), "already deleted")


def test_restore_active_is_one_line_error(
    cli: Invoke, client: Client, user_error: ErrorCheck
) -> None:
    experiment_id = client.create_experiment("exp1")
    user_error(cli("experiments", "restore", "-x", experiment_id), "already active")


def test_rename(cli: Invoke, client: Client) -> None:
    experiment_id = client.create_experiment("exp1")
    result = cli("experiments", "rename", "-x", experiment_id, "--new-name", "exp2")
    assert result.exit_code == 0, result.output
    assert "renamed to 'exp2'" in result.stdout
    assert client.get_experiment(experiment_id).name == "exp2"


def test_rename_to_taken_name_is_one_line_error(
    cli: Invoke, client: Client, user_error: ErrorCheck
) -> None:
    experiment_id = client.create_experiment("exp1")
    client.create_experiment("exp2")
    user_error(
        cli("experiments", "rename", "-x", experiment_id, "--new-name", "exp2"), "already exists"
    )


def test_rename_unknown_is_one_line_error(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("experiments", "rename", "-x", "77", "--new-name", "x"), "77")


# -- csv ------------------------------------------------------------------------------------------
def _two_runs(client: Client) -> tuple[str, list[str]]:
    experiment_id = client.create_experiment("exp1")
    run_ids = []
    for lr in ("0.1", "0.01"):
        run = client.create_run(experiment_id)
        client.log_param(run.info.run_id, "lr", lr)
        client.log_metric(run.info.run_id, "rmse", 0.5)
        run_ids.append(run.info.run_id)
    return experiment_id, run_ids


def test_csv_to_stdout(cli: Invoke, client: Client) -> None:
    experiment_id, run_ids = _two_runs(client)
    result = cli("experiments", "csv", "-x", experiment_id)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sorted(row["run_id"] for row in rows) == sorted(run_ids)
    assert {row["params.lr"] for row in rows} == {"0.1", "0.01"}
    assert {row["metrics.rmse"] for row in rows} == {"0.5"}


def test_csv_to_file(cli: Invoke, client: Client, tmp_path: Path) -> None:
    experiment_id, run_ids = _two_runs(client)
    target = tmp_path / "runs.csv"
    result = cli("experiments", "csv", "-x", experiment_id, "--filename", str(target))
    assert result.exit_code == 0, result.output
    assert str(target) in result.stdout
    with open(target, encoding="utf-8") as handle:
        assert sorted(row["run_id"] for row in csv.DictReader(handle)) == sorted(run_ids)


def test_csv_unknown_experiment_is_one_line_error(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("experiments", "csv", "-x", "5"), "5")


def test_csv_into_missing_directory_is_one_line_error(
    cli: Invoke, client: Client, user_error: ErrorCheck
) -> None:
    experiment_id, _ = _two_runs(client)
    result = cli("experiments", "csv", "-x", experiment_id, "-o", "no/such/dir/runs.csv")
    user_error(result, "directory")


# -- the whole CLI --------------------------------------------------------------------------------
def test_version(cli: Invoke) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"runyard, version {runyard.__version__}\n"


def test_unsupported_tracking_uri_is_one_line_error(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch, user_error: ErrorCheck
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "foo://bar")
    user_error(cli("experiments", "list"), "Unsupported tracking URI")


def test_malformed_setting_is_one_line_error(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch, user_error: ErrorCheck
) -> None:
    monkeypatch.setenv("RUNYARD_ASYNC_LOGGING", "maybe")
    user_error(cli("experiments", "list"), "RUNYARD_ASYNC_LOGGING")


# LIBRARY BUG (runyard/store/sql/engine.py or store.py): a tracking URI whose SQLite file
# cannot be opened (here: the path is a directory) escapes as sqlalchemy's OperationalError,
# so the user sees a traceback instead of one line. Fix: wrap failures to connect/migrate in
# the store constructor into RunyardError, e.g. "Cannot open the tracking database <uri>: ...".
def test_unopenable_sqlite_store_is_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracking_uri_env: str, user_error: ErrorCheck
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}")
    user_error(CliRunner().invoke(main, ["experiments", "list"]), "tracking")


def test_import_stays_light() -> None:
    code = "import sys, runyard.cli; print(sorted({'pandas', 'rich'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def _runyard_executable() -> str:
    beside_python = Path(sys.executable).with_name("runyard")
    found = str(beside_python) if beside_python.exists() else shutil.which("runyard")
    if found is None:
        pytest.skip("the runyard console script is not installed")
    return found


@pytest.mark.slow
def test_real_executable(tracking_uri_env: str, client: Client) -> None:
    exe = _runyard_executable()
    env = dict(os.environ)
    shown = subprocess.run([exe, "--help"], capture_output=True, text=True, env=env, check=True)
    assert "experiments" in shown.stdout
    assert "artifacts" in shown.stdout
    made = subprocess.run(
        [exe, "experiments", "create", "-n", "from-shell"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    experiment = client.get_experiment_by_name("from-shell")
    assert experiment is not None
    assert made.stdout == f"Created experiment 'from-shell' with id {experiment.experiment_id}\n"
    failed = subprocess.run(
        [exe, "experiments", "get", "-x", "12345"], capture_output=True, text=True, env=env
    )
    assert failed.returncode == 1
    assert failed.stderr.startswith("Error: ")
    assert len(failed.stderr.splitlines()) == 1
