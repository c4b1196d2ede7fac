"""``runyard.Client``: every method against a real SQLite store, with async logging on and off."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runyard import Client, MlflowClient
from runyard.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    LifecycleStage,
    Metric,
    Param,
    RunTag,
    ViewType,
)
from runyard.exceptions import (
    InvalidParameterValue,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from runyard.utils.validation import MAX_DOUBLE
from tests.tracking.helpers import (
    INVALID,
    MISSING,
    UNKNOWN_RUN,
    expect_error,
    logged_then_flushed,
)


# -- experiments ------------------------------------------------------------------------------
def test_mlflow_client_is_client() -> None:
    assert MlflowClient is Client


def test_tracking_uri(
    client: Client, tracking_env: str, other_uri: Callable[[str], str], tmp_path: Path
) -> None:
    assert client.tracking_uri == tracking_env
    uri = other_uri("other.db")
    # a bare path to a .db file means that SQLite database
    other = Client(str(tmp_path / "other.db"))
    assert other.tracking_uri == uri
    rid = other.create_run("0").info.run_id
    other.log_metric(rid, "m", 1.0)
    assert other.get_run(rid).data.metrics == {"m": 1.0}
    expect_error(MISSING, client.get_run, rid)  # a different store
    assert (tmp_path / "other.db").is_file()
    assert MlflowClient(tracking_uri=uri).get_run(rid).info.run_id == rid
    expect_error(INVALID, Client, "ftp://nowhere/x")


def test_default_experiment_exists(client: Client, tmp_path: Path) -> None:
    exp = client.get_experiment("0")
    assert exp.name == "Default"
    assert exp.lifecycle_stage == LifecycleStage.ACTIVE
    assert client.get_experiment_by_name("Default") == exp
    assert exp.artifact_location == f"{tmp_path}/runyard-artifacts/0"


def test_create_and_get_experiment(client: Client, tmp_path: Path) -> None:
    first = client.create_experiment("alpha", tags={"team": "fraud", "n": 3})
    second = client.create_experiment("beta", artifact_location=str(tmp_path / "elsewhere"))
    assert (first, second) == ("1", "2")
    exp = client.get_experiment(first)
    assert exp.experiment_id == "1"
    assert exp.name == "alpha"
    assert exp.tags == {"team": "fraud", "n": "3"}
    assert exp.lifecycle_stage == "active"
    assert exp.artifact_location == f"{tmp_path}/runyard-artifacts/1"
    assert exp.creation_time is not None
    assert exp.last_update_time is not None
    assert exp.creation_time <= exp.last_update_time
    assert client.get_experiment(second).artifact_location == str(tmp_path / "elsewhere")
    assert client.get_experiment_by_name("beta").experiment_id == "2"
    assert client.get_experiment_by_name("nope") is None
    # ids may be given as ints, as MLflow scripts sometimes do
    assert client.get_experiment(1).name == "alpha"  # type: ignore[arg-type]


def test_relative_artifact_location_is_made_absolute(client: Client, tmp_path: Path) -> None:
    exp_id = client.create_experiment("rel", artifact_location="rel-artifacts")
    assert client.get_experiment(exp_id).artifact_location == str(tmp_path / "rel-artifacts")
    rid = client.create_run(exp_id).info.run_id
    client.log_text(rid, "x", "x.txt")
    assert (tmp_path / "rel-artifacts" / rid / "artifacts" / "x.txt").read_text() == "x"


@pytest.mark.parametrize(
    "env_name", ["MLFLOW_DEFAULT_ARTIFACT_ROOT", "RUNYARD_DEFAULT_ARTIFACT_ROOT"]
)
def test_default_artifact_root_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env_name: str
) -> None:
    monkeypatch.setenv(env_name, str(tmp_path / "shared-root"))
    client = Client()  # the store is opened now, with the root from the environment
    exp_id = client.create_experiment("rooted")
    assert client.get_experiment(exp_id).artifact_location == f"{tmp_path}/shared-root/{exp_id}"


def test_duplicate_experiment_name_refused(client: Client) -> None:
    client.create_experiment("dup")
    err = expect_error("RESOURCE_ALREADY_EXISTS", client.create_experiment, "dup")
    assert isinstance(err, ResourceAlreadyExists)
    assert "dup" in err.message


@pytest.mark.parametrize("name", ["", "   ", "x" * 501, None, 5])
def test_invalid_experiment_name(client: Client, name: Any) -> None:
    expect_error(INVALID, client.create_experiment, name)


def test_experiment_name_of_500_chars_is_fine(client: Client) -> None:
    exp_id = client.create_experiment("n" * 500)
    assert client.get_experiment(exp_id).name == "n" * 500


def test_get_unknown_experiment(client: Client) -> None:
    err = expect_error(MISSING, client.get_experiment, "12345")
    assert isinstance(err, ResourceDoesNotExist)
    expect_error(INVALID, client.get_experiment, "not-a-number")


def test_rename_experiment(client: Client) -> None:
    exp_id = client.create_experiment("old")
    client.create_experiment("taken")
    client.rename_experiment(exp_id, "new")
    assert client.get_experiment(exp_id).name == "new"
    assert client.get_experiment_by_name("old") is None
    expect_error("RESOURCE_ALREADY_EXISTS", client.rename_experiment, exp_id, "taken")
    expect_error(INVALID, client.rename_experiment, exp_id, "")
    expect_error(MISSING, client.rename_experiment, "999", "whatever")
    client.delete_experiment(exp_id)
    expect_error(INVALID, client.rename_experiment, exp_id, "newer")


def test_experiment_tags(client: Client) -> None:
    exp_id = client.create_experiment("tagged")
    client.set_experiment_tag(exp_id, "k", "v1")
    client.set_experiment_tag(exp_id, "k", "v2")
    client.set_experiment_tag(exp_id, "num", 7)
    assert client.get_experiment(exp_id).tags == {"k": "v2", "num": "7"}
    client.delete_experiment_tag(exp_id, "k")
    assert client.get_experiment(exp_id).tags == {"num": "7"}
    expect_error(MISSING, client.delete_experiment_tag, exp_id, "k")
    expect_error(INVALID, client.set_experiment_tag, exp_id, "bad!key", "v")
    expect_error(INVALID, client.set_experiment_tag, exp_id, "big", "x" * 20001)
    expect_error(MISSING, client.set_experiment_tag, "999", "k", "v")


def test_delete_experiment_soft_deletes_runs_and_reserves_name(client: Client) -> None:
    exp_id = client.create_experiment("doomed")
    run = client.create_run(exp_id)
    client.delete_experiment(exp_id)

    exp = client.get_experiment(exp_id)  # still readable
    assert exp.lifecycle_stage == LifecycleStage.DELETED
    assert client.get_experiment_by_name("doomed") == exp
    assert client.get_run(run.info.run_id).info.lifecycle_stage == LifecycleStage.DELETED
    # the name stays reserved while deleted
    expect_error("RESOURCE_ALREADY_EXISTS", client.create_experiment, "doomed")
    # no new runs in a deleted experiment, no tags on it, no second delete
    expect_error(INVALID, client.create_run, exp_id)
    expect_error(INVALID, client.set_experiment_tag, exp_id, "k", "v")
    expect_error(INVALID, client.delete_experiment, exp_id)
    expect_error(MISSING, client.delete_experiment, "999")

    active = {e.name for e in client.search_experiments()}
    deleted = {e.name for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)}
    every = {e.name for e in client.search_experiments(view_type=ViewType.ALL)}
    assert active == {"Default"}
    assert deleted == {"doomed"}
    assert every == {"Default", "doomed"}


def test_restore_experiment_brings_back_its_runs(client: Client) -> None:
    exp_id = client.create_experiment("phoenix")
    kept = client.create_run(exp_id).info.run_id
    deleted_before = client.create_run(exp_id).info.run_id
    client.delete_run(deleted_before)
    client.delete_experiment(exp_id)
    client.restore_experiment(exp_id)

    assert client.get_experiment(exp_id).lifecycle_stage == LifecycleStage.ACTIVE
    assert client.get_run(kept).info.lifecycle_stage == LifecycleStage.ACTIVE
    # a run the user deleted on its own stays deleted
    assert client.get_run(deleted_before).info.lifecycle_stage == LifecycleStage.DELETED
    assert [r.info.run_id for r in client.search_runs([exp_id])] == [kept]
    client.create_run(exp_id)  # usable again
    expect_error(INVALID, client.restore_experiment, exp_id)  # already active


def test_search_experiments_filter_order_and_pages(client: Client) -> None:
    for name in ["exp-a", "exp-b", "exp-c", "other"]:
        client.create_experiment(name)
    found = client.search_experiments(filter_string="name LIKE 'exp-%'", order_by=["name DESC"])
    assert [e.name for e in found] == ["exp-c", "exp-b", "exp-a"]
    assert found.token is None

    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = client.search_experiments(max_results=2, page_token=token, order_by=["name ASC"])
        seen.extend(e.name for e in page)
        pages += 1
        token = page.token
        if token is None:
            break
    assert seen == ["Default", "exp-a", "exp-b", "exp-c", "other"]
    assert pages == 3
    expect_error(INVALID, client.search_experiments, max_results=0)
    expect_error(INVALID, client.search_experiments, page_token="not base64!")


# -- runs -------------------------------------------------------------------------------------
def test_create_run_fields(client: Client, tmp_path: Path) -> None:
    exp_id = client.create_experiment("e")
    run = client.create_run(exp_id, start_time=1234, tags={"team": "fraud", "n": 1})
    info = run.info
    assert re.fullmatch(r"[0-9a-f]{32}", info.run_id)
    assert info.run_uuid == info.run_id
    assert info.experiment_id == exp_id
    assert info.status == "RUNNING"
    assert info.start_time == 1234
    assert info.end_time is None
    assert info.lifecycle_stage == LifecycleStage.ACTIVE
    assert info.artifact_uri == f"{tmp_path}/runyard-artifacts/{exp_id}/{info.run_id}/artifacts"
    assert info.user_id
    # a random name is generated and mirrored in the mlflow.runName tag
    assert info.run_name
    tags = client.get_run(info.run_id).data.tags
    assert tags["mlflow.runName"] == info.run_name
    assert tags["mlflow.user"] == info.user_id
    assert tags["team"] == "fraud"
    assert tags["n"] == "1"
    assert client.get_run(info.run_id).info == info


def test_create_run_in_unknown_experiment(client: Client) -> None:
    expect_error(MISSING, client.create_run, "4242")


def test_run_name_and_tag_in_sync_both_ways(client: Client) -> None:
    by_arg = client.create_run("0", run_name="named")
    assert by_arg.info.run_name == "named"
    assert client.get_run(by_arg.info.run_id).data.tags["mlflow.runName"] == "named"

    by_tag = client.create_run("0", tags={"mlflow.runName": "from-tag"})
    assert client.get_run(by_tag.info.run_id).info.run_name == "from-tag"

    expect_error(INVALID, client.create_run, "0", tags={"mlflow.runName": "a"}, run_name="b")

    rid = by_arg.info.run_id
    client.update_run(rid, name="renamed")
    run = client.get_run(rid)
    assert (run.info.run_name, run.data.tags["mlflow.runName"]) == ("renamed", "renamed")

    client.set_tag(rid, "mlflow.runName", "tag-renamed")
    run = client.get_run(rid)
    assert (run.info.run_name, run.data.tags["mlflow.runName"]) == ("tag-renamed", "tag-renamed")


def test_update_run_status(client: Client, run_id: str) -> None:
    client.update_run(run_id, status="SCHEDULED")
    assert client.get_run(run_id).info.status == "SCHEDULED"
    client.update_run(run_id, status="running")
    assert client.get_run(run_id).info.status == "RUNNING"
    expect_error(INVALID, client.update_run, run_id, status="DONE")


@pytest.mark.parametrize("status", [None, "FINISHED", "FAILED", "KILLED"])
def test_set_terminated(client: Client, run_id: str, status: str | None) -> None:
    client.set_terminated(run_id, status, end_time=5000)
    info = client.get_run(run_id).info
    assert info.status == (status or "FINISHED")
    assert info.end_time == 5000


def test_set_terminated_default_end_time_and_non_terminal_status(
    client: Client, run_id: str
) -> None:
    start = client.get_run(run_id).info.start_time
    client.set_terminated(run_id)
    info = client.get_run(run_id).info
    assert info.status == "FINISHED"
    assert info.end_time is not None
    assert info.end_time >= start
    expect_error(INVALID, client.set_terminated, run_id, "RUNNING")


def test_unknown_run(client: Client) -> None:
    expect_error(MISSING, client.get_run, UNKNOWN_RUN)
    expect_error(MISSING, client.update_run, UNKNOWN_RUN, status="FAILED")
    expect_error(MISSING, client.set_terminated, UNKNOWN_RUN)
    expect_error(MISSING, client.delete_run, UNKNOWN_RUN)
    expect_error(MISSING, client.restore_run, UNKNOWN_RUN)
    expect_error(MISSING, client.delete_tag, UNKNOWN_RUN, "k")
    expect_error(MISSING, logged_then_flushed, client, client.log_param, UNKNOWN_RUN, "k", 1)
    expect_error(MISSING, logged_then_flushed, client, client.log_metric, UNKNOWN_RUN, "m", 1.0)
    expect_error(MISSING, logged_then_flushed, client, client.set_tag, UNKNOWN_RUN, "k", "v")
    expect_error(MISSING, client.list_artifacts, UNKNOWN_RUN)
    expect_error(INVALID, client.get_run, "not a run id!")


def test_deleted_run_is_readable_but_refuses_writes(client: Client, run_id: str) -> None:
    client.log_param(run_id, "p", 1)
    client.delete_run(run_id)
    run = client.get_run(run_id)
    assert run.info.lifecycle_stage == LifecycleStage.DELETED
    assert run.data.params == {"p": "1"}

    expect_error(INVALID, logged_then_flushed, client, client.log_param, run_id, "q", 2)
    expect_error(INVALID, logged_then_flushed, client, client.log_metric, run_id, "m", 1.0)
    expect_error(INVALID, logged_then_flushed, client, client.set_tag, run_id, "t", "v")
    expect_error(INVALID, client.delete_tag, run_id, "mlflow.user")
    expect_error(INVALID, client.update_run, run_id, status="FAILED")
    expect_error(INVALID, client.set_terminated, run_id)
    ds = DatasetInput(Dataset("d", "abc", "local", '{"uri": "x"}'))
    expect_error(INVALID, client.log_inputs, run_id, [ds])
    # nothing refused was stored
    data = client.get_run(run_id).data
    assert data.params == {"p": "1"}
    assert data.metrics == {}
    assert "t" not in data.tags

    assert client.search_runs(["0"]) == []
    assert [r.info.run_id for r in client.search_runs(["0"], run_view_type=ViewType.DELETED_ONLY)]
    assert len(client.search_runs(["0"], run_view_type=ViewType.ALL)) == 1

    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == LifecycleStage.ACTIVE
    client.log_param(run_id, "q", 2)
    assert client.get_run(run_id).data.params == {"p": "1", "q": "2"}


def test_get_parent_run(client: Client) -> None:
    parent = client.create_run("0").info.run_id
    child = client.create_run("0", tags={"mlflow.parentRunId": parent}).info.run_id
    found = client.get_parent_run(child)
    assert found is not None
    assert found.info.run_id == parent
    assert client.get_parent_run(parent) is None


# -- params, tags, metrics --------------------------------------------------------------------
def test_params_are_strings_and_immutable(client: Client, run_id: str) -> None:
    assert client.log_param(run_id, "lr", 0.1) == 0.1
    client.log_param(run_id, "layers", 3)
    client.log_param(run_id, "name", "resnet")
    client.log_param(run_id, "opt", None)
    client.log_param(run_id, "lr", 0.1)  # the same value again is fine
    assert client.get_run(run_id).data.params == {
        "lr": "0.1",
        "layers": "3",
        "name": "resnet",
        "opt": "None",
    }
    err = expect_error(INVALID, logged_then_flushed, client, client.log_param, run_id, "lr", 0.2)
    assert isinstance(err, InvalidParameterValue)
    assert "lr" in err.message
    assert client.get_run(run_id).data.params["lr"] == "0.1"


def test_changed_param_refused_at_once_when_synchronous(client: Client, run_id: str) -> None:
    client.log_param(run_id, "seed", 1, synchronous=True)
    err = expect_error(INVALID, client.log_param, run_id, "seed", 2, synchronous=True)
    assert "seed" in err.message


def test_long_param_and_tag_values_are_truncated(client: Client, run_id: str) -> None:
    client.log_param(run_id, "long", "p" * 7000)
    client.set_tag(run_id, "long", "t" * 9000)
    data = client.get_run(run_id).data
    assert data.params["long"] == "p" * 6000
    assert data.tags["long"] == "t" * 8000


def test_long_values_refused_when_truncation_is_off(
    monkeypatch: pytest.MonkeyPatch, logging_mode: str
) -> None:
    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "false")
    client = Client()
    rid = client.create_run("0").info.run_id
    expect_error(INVALID, client.log_param, rid, "long", "p" * 6001)
    expect_error(INVALID, client.set_tag, rid, "long", "t" * 8001)
    client.log_param(rid, "ok", "p" * 6000)
    assert client.get_run(rid).data.params == {"ok": "p" * 6000}


def test_tags_upsert_and_delete(client: Client, run_id: str) -> None:
    client.set_tag(run_id, "stage", "a")
    client.set_tag(run_id, "stage", "b")
    client.set_tag(run_id, "num", 3)
    tags = client.get_run(run_id).data.tags
    assert tags["stage"] == "b"
    assert tags["num"] == "3"
    client.delete_tag(run_id, "stage")
    assert "stage" not in client.get_run(run_id).data.tags
    expect_error(MISSING, client.delete_tag, run_id, "stage")


def test_metric_history_is_append_only_with_step_and_timestamp(client: Client, run_id: str) -> None:
    client.log_metric(run_id, "loss", 3.0, timestamp=1000, step=2)
    client.log_metric(run_id, "loss", 1.0, timestamp=1001)  # step defaults to 0
    client.log_metric(run_id, "loss", 2.0, timestamp=1002, step=1)
    client.log_metric(run_id, "loss", 2.0, timestamp=1002, step=1)  # exact duplicate collapses
    client.log_metric(run_id, "loss", 4.0, timestamp=999, step=2)
    history = client.get_metric_history(run_id, "loss")
    # MLflow's order: (timestamp, step, value).
    assert [(m.key, m.value, m.timestamp, m.step) for m in history] == [
        ("loss", 4.0, 999, 2),
        ("loss", 3.0, 1000, 2),
        ("loss", 1.0, 1001, 0),
        ("loss", 2.0, 1002, 1),
    ]
    assert client.get_metric_history(run_id, "absent") == []


def test_metric_timestamp_defaults_to_now(client: Client, run_id: str) -> None:
    before = client.get_run(run_id).info.start_time
    client.log_metric(run_id, "m", 1)
    (point,) = client.get_metric_history(run_id, "m")
    assert point.timestamp >= before
    assert point.step == 0
    assert point.value == 1.0
    assert isinstance(point.value, float)


def test_nan_and_infinities(client: Client, run_id: str) -> None:
    client.log_metric(run_id, "nan", float("nan"), timestamp=1)
    client.log_metric(run_id, "pinf", float("inf"), timestamp=1)
    client.log_metric(run_id, "ninf", float("-inf"), timestamp=1)
    client.log_metric(run_id, "npnan", np.float32("nan"), timestamp=1)
    metrics = client.get_run(run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert math.isnan(metrics["npnan"])
    assert metrics["pinf"] == MAX_DOUBLE
    assert metrics["ninf"] == -MAX_DOUBLE
    assert math.isnan(client.get_metric_history(run_id, "nan")[0].value)
    assert client.get_metric_history(run_id, "pinf")[0].value == MAX_DOUBLE
    assert client.get_metric_history(run_id, "ninf")[0].value == -MAX_DOUBLE


def test_mixed_infinities_and_huge_values_in_one_batch(client: Client, run_id: str) -> None:
    client.log_batch(
        run_id,
        metrics=[
            Metric("x", float("inf"), 1, 0),
            Metric("x", float("-inf"), 2, 0),
            Metric("x", float("nan"), 3, 0),
            Metric("big", 1e308, 1, 0),
            Metric("big", 1e308, 2, 0),
        ],
    )
    values = [m.value for m in client.get_metric_history(run_id, "x")]
    assert values[:2] == [MAX_DOUBLE, -MAX_DOUBLE]
    assert math.isnan(values[2])
    assert [m.value for m in client.get_metric_history(run_id, "big")] == [1e308, 1e308]
    assert math.isnan(client.get_run(run_id).data.metrics["x"])  # step 0, greatest timestamp


@pytest.mark.parametrize("one_batch", [True, False])
def test_latest_metric_is_greatest_step_timestamp_value(
    client: Client, run_id: str, one_batch: bool
) -> None:
    points = {
        "by_step": [(5.0, 100, 3), (9.0, 900, 1), (7.0, 50, 3)],  # step 3, ts 100 wins
        "by_ts": [(1.0, 10, 0), (2.0, 30, 0), (3.0, 20, 0)],  # same step, ts 30 wins
        "by_value": [(1.0, 10, 0), (8.0, 10, 0), (4.0, 10, 0)],  # all equal but value: 8 wins
        "nan_is_zero": [(-1.0, 10, 0), (float("nan"), 10, 0)],  # NaN compares as 0 > -1
    }
    for key, series in points.items():
        ms = [Metric(key, v, ts, step) for v, ts, step in series]
        if one_batch:
            client.log_batch(run_id, metrics=ms)
        else:
            for m in ms:
                client.log_metric(run_id, m.key, m.value, timestamp=m.timestamp, step=m.step)
    run = client.get_run(run_id)
    metrics = run.data.metrics
    assert metrics["by_step"] == 5.0
    assert metrics["by_ts"] == 2.0
    assert metrics["by_value"] == 8.0
    assert math.isnan(metrics["nan_is_zero"])
    latest = {m.key: (m.timestamp, m.step) for m in run.data.metric_objs}
    assert latest["by_step"] == (100, 3)
    assert latest["by_ts"] == (30, 0)
    found = client.search_runs(["0"], "metrics.by_step = 5")
    assert [r.info.run_id for r in found] == [run_id]


BAD_KEYS = [
    "with!bang",
    "semi;colon",
    "back\\slash",
    "../up",
    "/abs",
    "a//b",
    "./a",
    "a/../b",
    ".",
    "",
    "k" * 251,
    "tab\tkey",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_refused_at_call_site(client: Client, run_id: str, key: str) -> None:
    expect_error(INVALID, client.log_metric, run_id, key, 1.0)
    expect_error(INVALID, client.log_param, run_id, key, "v")
    expect_error(INVALID, client.set_tag, run_id, key, "v")
    expect_error(INVALID, client.log_batch, run_id, metrics=[Metric(key, 1.0, 1, 0)])
    expect_error(INVALID, client.log_batch, run_id, params=[Param(key, "v")])
    expect_error(INVALID, client.log_batch, run_id, tags=[RunTag(key, "v")])
    data = client.get_run(run_id).data
    assert data.metrics == {}
    assert data.params == {}


@pytest.mark.parametrize(
    "key", ["loss", "val/acc", "a.b-c_d", "with space", "ns:key", "k" * 250, "Ünïcode_ok"]
)
def test_valid_keys(client: Client, run_id: str, key: str) -> None:
    client.log_metric(run_id, key, 1.0)
    client.log_param(run_id, key, "v")
    client.set_tag(run_id, key, "v")
    data = client.get_run(run_id).data
    assert data.metrics == {key: 1.0}
    assert data.params == {key: "v"}
    assert data.tags[key] == "v"


@pytest.mark.parametrize(
    ("value", "timestamp", "step"),
    [
        (True, 1, 0),
        (False, 1, 0),
        ("abc", 1, 0),
        (None, 1, 0),
        ([1.0], 1, 0),
        (1.0, -1, 0),
        (1.0, 1.5, 0),
        (1.0, "1", 0),
        (1.0, True, 0),
        (1.0, 1, 1.5),
        (1.0, 1, "2"),
    ],
)
def test_invalid_metric_values(
    client: Client, run_id: str, value: Any, timestamp: Any, step: Any
) -> None:
    expect_error(INVALID, client.log_metric, run_id, "m", value, timestamp=timestamp, step=step)
    batch = [Metric("m", value, timestamp, step)]
    expect_error(INVALID, client.log_batch, run_id, metrics=batch)
    assert client.get_metric_history(run_id, "m") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (np.float32(0.5), 0.5), (np.int64(7), 7.0), (np.float64(2.25), 2.25)],
)
def test_numeric_metric_types(client: Client, run_id: str, value: Any, expected: float) -> None:
    client.log_metric(run_id, "m", value, step=3)
    (point,) = client.get_metric_history(run_id, "m")
    assert (point.value, point.step) == (expected, 3)
    assert type(point.value) is float


@pytest.mark.parametrize("via_batch", [False, True])
def test_numpy_step_and_timestamp_are_stored_as_integers(
    client: Client, run_id: str, via_batch: bool
) -> None:
    # ``for step in np.arange(n)`` is common in training loops.
    step, ts = np.int64(3), np.int64(1_700_000_000_000)
    if via_batch:
        client.log_batch(run_id, metrics=[Metric("m", 0.5, ts, step)])  # type: ignore[arg-type]
    else:
        client.log_metric(run_id, "m", 0.5, timestamp=ts, step=step)  # type: ignore[arg-type]
    (point,) = client.get_metric_history(run_id, "m")
    assert (point.step, point.timestamp) == (3, 1_700_000_000_000)
    assert type(point.step) is int
    assert type(point.timestamp) is int
    run = client.get_run(run_id)
    assert [(m.step, m.timestamp) for m in run.data.metric_objs] == [(3, 1_700_000_000_000)]
    assert [r.info.run_id for r in client.search_runs(["0"], "metrics.m = 0.5")] == [run_id]


def test_metric_step_may_be_negative_and_int64(client: Client, run_id: str) -> None:
    client.log_metric(run_id, "m", 1.0, timestamp=0, step=-5)
    client.log_metric(run_id, "m", 2.0, timestamp=2**62, step=2**62)
    assert [(m.step, m.timestamp) for m in client.get_metric_history(run_id, "m")] == [
        (-5, 0),
        (2**62, 2**62),
    ]


@pytest.mark.parametrize(
    ("metrics", "params", "tags"),
    [(1001, 0, 0), (0, 101, 0), (0, 0, 101), (950, 51, 0), (900, 50, 51)],
)
def test_batch_limits(client: Client, run_id: str, metrics: int, params: int, tags: int) -> None:
    err = expect_error(
        INVALID,
        client.log_batch,
        run_id,
        metrics=[Metric(f"m{i}", 1.0, 1, 0) for i in range(metrics)],
        params=[Param(f"p{i}", "v") for i in range(params)],
        tags=[RunTag(f"t{i}", "v") for i in range(tags)],
    )
    assert "batch" in err.message.lower()
    assert client.get_run(run_id).data.metrics == {}


def test_batch_at_the_limits_is_fine(client: Client, run_id: str) -> None:
    client.log_batch(run_id, metrics=[Metric("m", float(i), 1, i) for i in range(1000)])
    client.log_batch(
        run_id,
        params=[Param(f"p{i}", str(i)) for i in range(100)],
        tags=[RunTag(f"t{i}", "v") for i in range(100)],
    )
    run = client.get_run(run_id)
    assert run.data.metrics == {"m": 999.0}
    assert len(run.data.params) == 100
    assert len(client.get_metric_history(run_id, "m")) == 1000


def test_batch_with_conflicting_duplicate_params_refused(client: Client, run_id: str) -> None:
    expect_error(INVALID, client.log_batch, run_id, params=[Param("a", "1"), Param("a", "2")])
    client.log_batch(run_id, params=[Param("a", "1"), Param("a", "1")])
    assert client.get_run(run_id).data.params == {"a": "1"}


def test_log_batch_everything_at_once(client: Client, run_id: str) -> None:
    client.log_batch(
        run_id,
        metrics=[Metric("acc", 0.5, 10, 0), Metric("acc", 0.7, 20, 1)],
        params=[Param("lr", "0.1")],
        tags=[RunTag("team", "fraud")],
    )
    run = client.get_run(run_id)
    assert run.data.metrics == {"acc": 0.7}
    assert run.data.params == {"lr": "0.1"}
    assert run.data.tags["team"] == "fraud"


def test_read_your_writes(client: Client, run_id: str) -> None:
    for step in range(50):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
    client.log_param(run_id, "lr", 0.01)
    client.set_tag(run_id, "phase", "train")
    run = client.get_run(run_id)  # no explicit flush
    assert run.data.metrics == {"loss": 1.0 / 50}
    assert run.data.params == {"lr": "0.01"}
    assert run.data.tags["phase"] == "train"
    assert len(client.get_metric_history(run_id, "loss")) == 50
    client.log_metric(run_id, "acc", 0.95)
    assert [r.info.run_id for r in client.search_runs(["0"], "metrics.acc > 0.9")] == [run_id]
    client.set_tag(run_id, "phase", "eval")
    client.delete_tag(run_id, "phase")  # the queued set_tag lands first
    assert "phase" not in client.get_run(run_id).data.tags


# -- inputs -----------------------------------------------------------------------------------
def _dataset(name: str = "train", digest: str = "abcd1234") -> Dataset:
    return Dataset(
        name=name,
        digest=digest,
        source_type="local",
        source=json.dumps({"uri": "/data/train.csv"}),
        schema=json.dumps({"mlflow_colspec": [{"type": "double", "name": "x"}]}),
        profile=json.dumps({"num_rows": 3}),
    )


def test_log_inputs(client: Client, run_id: str) -> None:
    train = DatasetInput(_dataset(), [InputTag("mlflow.data.context", "training")])
    evaluation = DatasetInput(
        _dataset("eval", "ffff0000"), [InputTag("mlflow.data.context", "eval")]
    )
    client.log_inputs(run_id, [train, evaluation])
    client.log_inputs(run_id, [train])  # the same input again is recorded once
    inputs = client.get_run(run_id).inputs.dataset_inputs
    assert len(inputs) == 2
    by_name = {i.dataset.name: i for i in inputs}
    assert by_name["train"].dataset == _dataset()
    assert by_name["train"].tags == [InputTag("mlflow.data.context", "training")]
    assert by_name["eval"].tags == [InputTag("mlflow.data.context", "eval")]
    found = client.search_runs(["0"], "datasets.context = 'eval'")
    assert [r.info.run_id for r in found] == [run_id]
    assert client.search_runs(["0"])[0].inputs.dataset_inputs == inputs
    client.log_inputs(run_id, None)  # nothing to log is fine


@pytest.mark.parametrize(
    "dataset",
    [
        Dataset("", "d", "local", "{}"),
        Dataset("n", "", "local", "{}"),
        Dataset("n", "d", "local", ""),
        Dataset("n" * 501, "d", "local", "{}"),
        Dataset("n", "d" * 37, "local", "{}"),
    ],
)
def test_log_inputs_invalid_dataset(client: Client, run_id: str, dataset: Dataset) -> None:
    expect_error(INVALID, client.log_inputs, run_id, [DatasetInput(dataset)])
    assert client.get_run(run_id).inputs.dataset_inputs == []
