"""``runyard runs list|describe|delete|restore``."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import Result

from runyard.cli.output import run_to_dict
from runyard.entities import Dataset, DatasetInput, InputTag
from runyard.tracking.client import Client

Invoke = Callable[..., Result]
ErrorCheck = Callable[[Result, str], None]


@pytest.fixture
def experiment(client: Client) -> tuple[str, dict[str, str]]:
    """An experiment with three finished runs named a, b, c (rmse 0.9, 0.5, 0.7)."""
    experiment_id = client.create_experiment("exp1")
    run_ids = {}
    for offset, (name, rmse) in enumerate([("a", 0.9), ("b", 0.5), ("c", 0.7)]):
        run = client.create_run(experiment_id, run_name=name, start_time=1_700_000_000_000 + offset)
        client.log_metric(run.info.run_id, "rmse", rmse)
        client.log_param(run.info.run_id, "model", "xgb" if name != "c" else "lgbm")
        client.set_terminated(run.info.run_id, end_time=1_700_000_065_000 + offset)
        run_ids[name] = run.info.run_id
    return experiment_id, run_ids


def _listed_names(cli: Invoke, experiment_id: str, *args: str) -> list[str]:
    result = cli("runs", "list", "-e", experiment_id, "--output", "json", *args)
    assert result.exit_code == 0, result.output
    return [run["info"]["run_name"] for run in json.loads(result.stdout)]


# -- list -----------------------------------------------------------------------------------------
def test_list_table(cli: Invoke, experiment: tuple[str, dict[str, str]]) -> None:
    experiment_id, run_ids = experiment
    result = cli("runs", "list", "-e", experiment_id)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Run", "ID", "Name", "Status", "Started", "Duration", "rmse"]
    rows = [line.split() for line in lines[2:]]
    # newest first; the columns: id, name, status, date, time, duration, rmse
    assert [row[0] for row in rows] == [run_ids["c"], run_ids["b"], run_ids["a"]]
    assert rows[0][1:3] == ["c", "FINISHED"]
    assert rows[0][5:] == ["1m", "05s", "0.7"]


def test_list_json_matches_store(
    cli: Invoke, client: Client, experiment: tuple[str, dict[str, str]]
) -> None:
    experiment_id, run_ids = experiment
    result = cli("runs", "list", "--experiment-id", experiment_id, "--output", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed == [run_to_dict(client.get_run(run_ids[name])) for name in ("c", "b", "a")]
    assert listed[2]["data"]["metrics"] == {"rmse": 0.9}
    assert listed[2]["data"]["params"] == {"model": "xgb"}
    assert listed[2]["info"]["status"] == "FINISHED"


def test_list_filter_order_and_max_results(
    cli: Invoke, experiment: tuple[str, dict[str, str]]
) -> None:
    experiment_id, _ = experiment
    assert _listed_names(cli, experiment_id, "--filter", "params.model = 'xgb'") == ["b", "a"]
    assert _listed_names(cli, experiment_id, "--order-by", "metrics.rmse ASC") == ["b", "c", "a"]
    assert _listed_names(
        cli, experiment_id, "--order-by", "metrics.rmse", "--max-results", "1"
    ) == ["b"]


def test_list_says_when_more_runs_exist(
    cli: Invoke, experiment: tuple[str, dict[str, str]]
) -> None:
    experiment_id, _ = experiment
    result = cli("runs", "list", "-e", experiment_id, "--max-results", "2")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 4  # header, rule, two runs
    assert "--max-results" in result.stderr


def test_list_views(cli: Invoke, client: Client, experiment: tuple[str, dict[str, str]]) -> None:
    experiment_id, run_ids = experiment
    client.delete_run(run_ids["a"])
    assert _listed_names(cli, experiment_id) == ["c", "b"]
    assert _listed_names(cli, experiment_id, "--view", "deleted_only") == ["a"]
    assert _listed_names(cli, experiment_id, "-v", "all") == ["c", "b", "a"]
    table = cli("runs", "list", "-e", experiment_id, "--view", "all").stdout
    assert "Stage" in table.splitlines()[0]
    assert "deleted" in table


def test_list_experiment_id_from_environment(
    cli: Invoke, experiment: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment_id, _ = experiment
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    result = cli("runs", "list", "--output", "json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3


def test_list_without_experiment_is_usage_error(cli: Invoke, usage_error: ErrorCheck) -> None:
    usage_error(cli("runs", "list"), "--experiment-id")


def test_list_unknown_experiment_is_one_line_error(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("runs", "list", "-e", "31"), "31")


def test_list_bad_filter_is_one_line_error(
    cli: Invoke, experiment: tuple[str, dict[str, str]], user_error: ErrorCheck
) -> None:
    experiment_id, _ = experiment
    user_error(cli("runs", "list", "-e", experiment_id, "--filter", "metrics.rmse >> 1"), "Invalid")


def test_list_bad_order_by_is_one_line_error(
    cli: Invoke, experiment: tuple[str, dict[str, str]], user_error: ErrorCheck
) -> None:
    experiment_id, _ = experiment
    result = cli("runs", "list", "-e", experiment_id, "--order-by", "metrics.rmse SIDEWAYS")
    user_error(result, "SIDEWAYS")


def test_list_empty_experiment(cli: Invoke, client: Client) -> None:
    experiment_id = client.create_experiment("empty")
    assert _listed_names(cli, experiment_id) == []
    result = cli("runs", "list", "-e", experiment_id)
    assert result.exit_code == 0, result.output
    header, rule = result.stdout.splitlines()
    assert header.split() == ["Run", "ID", "Name", "Status", "Started", "Duration"]
    assert set(rule) == {"─"}


# -- describe -------------------------------------------------------------------------------------
def test_describe_matches_store(cli: Invoke, client: Client) -> None:
    experiment_id = client.create_experiment("exp1")
    run = client.create_run(experiment_id, run_name="described", tags={"team": "risk"})
    run_id = run.info.run_id
    client.log_metric(run_id, "loss", 0.25)
    client.log_metric(run_id, "diverged", float("nan"))
    client.log_param(run_id, "lr", 0.01)
    dataset = Dataset("train", "abc123", "local", '{"uri": "train.csv"}', schema="{}")
    client.log_inputs(run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "train")])])
    result = cli("runs", "describe", "--run-id", run_id)
    assert result.exit_code == 0, result.output
    described = json.loads(result.stdout)
    stored = client.get_run(run_id)
    assert described["info"] == {
        "artifact_uri": stored.info.artifact_uri,
        "end_time": None,
        "experiment_id": experiment_id,
        "lifecycle_stage": "active",
        "run_id": run_id,
        "run_name": "described",
        "run_uuid": run_id,
        "start_time": stored.info.start_time,
        "status": "RUNNING",
        "user_id": stored.info.user_id,
    }
    assert described["data"]["metrics"] == {"loss": 0.25, "diverged": "NaN"}
    assert described["data"]["params"] == {"lr": "0.01"}
    assert described["data"]["tags"]["team"] == "risk"
    assert described["data"]["tags"] == stored.data.tags
    (dataset_input,) = described["inputs"]["dataset_inputs"]
    assert dataset_input["dataset"]["name"] == "train"
    assert dataset_input["dataset"]["digest"] == "abc123"
    assert dataset_input["tags"] == [{"key": "mlflow.data.context", "value": "train"}]


# LIBRARY BUG (runyard/store/sql/runs.py, _validate_dataset_input): a Dataset without a
# schema is refused ("Dataset schema must be provided."), yet schema is optional in MLflow's
# Dataset message (spec §3: only name, digest, source_type and source are required) and in our
# own entity (``schema: str | None = None``), so e.g. a dataset logged by MLflow's client with no
# schema cannot be stored. Fix: check "schema" (and "profile") only for length when not None.
def test_describe_run_with_schemaless_dataset(cli: Invoke, client: Client) -> None:
    run_id = client.create_run(client.create_experiment("exp1")).info.run_id
    dataset = Dataset("train", "abc123", "local", '{"uri": "train.csv"}')
    client.log_inputs(run_id, [DatasetInput(dataset, [])])
    result = cli("runs", "describe", "--run-id", run_id)
    assert result.exit_code == 0, result.output
    (dataset_input,) = json.loads(result.stdout)["inputs"]["dataset_inputs"]
    assert dataset_input["dataset"]["schema"] is None


def test_describe_unknown_run_is_one_line_error(cli: Invoke, user_error: ErrorCheck) -> None:
    user_error(cli("runs", "describe", "--run-id", "0" * 32), "0" * 32)


# -- delete / restore -----------------------------------------------------------------------------
def test_delete_and_restore(
    cli: Invoke, client: Client, experiment: tuple[str, dict[str, str]]
) -> None:
    _, run_ids = experiment
    run_id = run_ids["a"]
    result = cli("runs", "delete", "--run-id", run_id)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Run with ID {run_id} has been deleted.\n"
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    result = cli("runs", "restore", "-r", run_id)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Run with id {run_id} has been restored.\n"
    assert client.get_run(run_id).info.lifecycle_stage == "active"


@pytest.mark.parametrize("verb", ["delete", "restore"])
def test_delete_restore_unknown_run_is_one_line_error(
    cli: Invoke, user_error: ErrorCheck, verb: str
) -> None:
    user_error(cli("runs", verb, "--run-id", "f" * 32), "f" * 32)


def test_delete_without_run_id_is_usage_error(cli: Invoke, usage_error: ErrorCheck) -> None:
    usage_error(cli("runs", "delete"), "--run-id")
