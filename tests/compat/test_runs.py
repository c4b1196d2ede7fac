"""Runs through the official client: lifecycle, names, nesting, params, metrics, tags, batches,
inputs, updates, deletion and the NaN/inf rules."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ErrorCheck = Callable[..., None]
MAX_DOUBLE = 1.7976931348623157e308

SCRIPT = """
import re
import time

import pandas as pd

P = PARAMS["prefix"]
exp_id = mlflow.set_experiment(f"{P}-runs").experiment_id


def info_of(run_id):
    info = client.get_run(run_id).info
    return {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": info.user_id,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "artifact_uri": info.artifact_uri,
        "lifecycle_stage": info.lifecycle_stage,
    }


def history(run_id, key):
    return [[m.value, m.step, m.timestamp] for m in client.get_metric_history(run_id, key)]


with section("lifecycle") as out:
    out["exp_id"] = exp_id
    before = int(time.time() * 1000)
    with mlflow.start_run(run_name=f"{P}-ok") as run:
        out["active_id"] = mlflow.active_run().info.run_id
        out["inside"] = info_of(run.info.run_id)
    out["after"] = info_of(run.info.run_id)
    out["before_ms"] = before
    out["active_after"] = repr(mlflow.active_run())
    out["tags"] = client.get_run(run.info.run_id).data.tags
    try:
        with mlflow.start_run(run_name=f"{P}-boom") as failed:
            raise ValueError("boom")
    except ValueError:
        pass
    out["failed"] = info_of(failed.info.run_id)
    mlflow.start_run(run_name=f"{P}-killed")
    killed_id = mlflow.active_run().info.run_id
    mlflow.end_run(status="KILLED")
    out["killed"] = info_of(killed_id)

with section("names") as out:
    with mlflow.start_run() as run:
        pass
    out["generated"] = info_of(run.info.run_id)["run_name"]
    out["generated_tag"] = client.get_run(run.info.run_id).data.tags.get("mlflow.runName")
    with mlflow.start_run(tags={"mlflow.runName": f"{P}-from-tag"}) as run:
        pass
    out["from_tag"] = info_of(run.info.run_id)["run_name"]
    with mlflow.start_run(run_name=f"{P}-before") as run:
        mlflow.set_tag("mlflow.runName", f"{P}-after")
    out["renamed_by_tag"] = info_of(run.info.run_id)["run_name"]
    client.update_run(run.info.run_id, name=f"{P}-updated")
    out["renamed_by_update"] = info_of(run.info.run_id)["run_name"]
    out["tag_after_update"] = client.get_run(run.info.run_id).data.tags["mlflow.runName"]

with section("nested") as out:
    with mlflow.start_run(run_name=f"{P}-parent") as parent:
        with mlflow.start_run(run_name=f"{P}-child", nested=True) as child:
            out["active_in_child"] = mlflow.active_run().info.run_id
        out["active_after_child"] = mlflow.active_run().info.run_id
    out["parent_id"] = parent.info.run_id
    out["child_id"] = child.info.run_id
    child_run = client.get_run(child.info.run_id)
    out["child_parent_tag"] = child_run.data.tags.get("mlflow.parentRunId")
    out["child_experiment"] = child_run.info.experiment_id
    parent_tags = client.get_run(parent.info.run_id).data.tags
    out["parent_has_parent_tag"] = "mlflow.parentRunId" in parent_tags
    out["child_status"] = child_run.info.status

with section("params") as out:
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_param("lr", 0.01)  # same value again: allowed
        mlflow.log_params({"layers": 3, "opt": "adam", "none": None, "empty": ""})
        out["change_single"] = error_of(mlflow.log_param, "lr", 0.02)
        out["change_batch"] = error_of(mlflow.log_params, {"opt": "sgd"})
        mlflow.log_param("long", "x" * 7000)
    params = client.get_run(run.info.run_id).data.params
    out["long_len"] = len(params.pop("long"))
    out["params"] = params
    out["run_id"] = run.info.run_id

with section("metrics") as out:
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.5, step=1, timestamp=1_700_000_000_000)
        mlflow.log_metric("acc", 0.7, step=2, timestamp=1_700_000_001_000)
        mlflow.log_metric("acc", 0.6, step=3, timestamp=1_700_000_002_000)
        mlflow.log_metric("plain", 3)
        mlflow.log_metrics({"m1": 1.5, "m2": -2.0}, step=7)
        mlflow.log_metrics({"m1": 2.5}, step=8, timestamp=1_700_000_003_000)
        # latest = max (step, timestamp, value), not last logged
        mlflow.log_metric("late", 1.0, step=5, timestamp=1000)
        mlflow.log_metric("late", 2.0, step=3, timestamp=2000)
        mlflow.log_metric("late", 0.5, step=5, timestamp=500)
        mlflow.log_metric("tie", 1.0, step=1, timestamp=100)
        mlflow.log_metric("tie", 3.0, step=1, timestamp=100)
        mlflow.log_metric("tie", 2.0, step=1, timestamp=100)
    got = client.get_run(run.info.run_id)
    out["latest"] = got.data.metrics
    out["latest_objs"] = {
        m.key: [m.value, m.step, m.timestamp] for m in got.data._metric_objs
    }
    out["acc"] = history(run.info.run_id, "acc")
    out["m1"] = history(run.info.run_id, "m1")
    out["plain"] = history(run.info.run_id, "plain")
    out["late"] = history(run.info.run_id, "late")
    out["unknown_key"] = history(run.info.run_id, "never-logged")
    out["now_ms"] = int(time.time() * 1000)

with section("special_values") as out:
    with mlflow.start_run() as run:
        mlflow.log_metric("nan", float("nan"))
        mlflow.log_metric("inf", float("inf"))
        mlflow.log_metric("ninf", float("-inf"))
        mlflow.log_metric("big", 1e300)
        mlflow.log_metric("tiny", -5e-324)
    metrics = client.get_run(run.info.run_id).data.metrics
    out["latest"] = {k: repr(v) for k, v in metrics.items()}
    out["history"] = {
        k: [repr(m.value) for m in client.get_metric_history(run.info.run_id, k)]
        for k in ("nan", "inf", "ninf")
    }

with section("tags") as out:
    with mlflow.start_run() as run:
        mlflow.set_tag("a", "1")
        mlflow.set_tag("a", "2")
        mlflow.set_tags({"b": "x", "c": 3, "d": ""})
        mlflow.delete_tag("b")
        out["delete_missing"] = error_of(mlflow.delete_tag, "b")
        mlflow.set_tag("long", "y" * 9000)
    client.set_tag(run.info.run_id, "after_end", "ok")
    tags = client.get_run(run.info.run_id).data.tags
    out["long_len"] = len(tags.pop("long"))
    out["user_tags"] = {k: v for k, v in tags.items() if not k.startswith("mlflow.")}

with section("log_batch") as out:
    from mlflow.entities import Metric, Param, RunTag

    run = client.create_run(exp_id)
    rid = run.info.run_id
    ts = 1_700_000_000_000
    client.log_batch(rid, metrics=[Metric(f"k{i:04d}", i, ts, 0) for i in range(1000)])
    data = client.get_run(rid).data
    out["exact_1000_keys"] = len(data.metrics)
    out["exact_1000_sample"] = [data.metrics["k0000"], data.metrics["k0999"]]
    client.log_batch(
        rid,
        metrics=[Metric("h", float(i), ts + i, i) for i in range(2500)],
        params=[Param(f"p{i:03d}", str(i)) for i in range(150)],
        tags=[RunTag(f"t{i:03d}", str(i)) for i in range(150)],
    )
    data = client.get_run(rid).data
    hist = client.get_metric_history(rid, "h")
    out["big_history_len"] = len(hist)
    out["big_history_steps_ok"] = [m.step for m in hist] == list(range(2500))
    out["big_latest"] = data.metrics["h"]
    out["big_params"] = len(data.params)
    out["big_param_sample"] = data.params["p149"]
    out["big_tags"] = len([k for k in data.tags if k.startswith("t")])
    client.set_terminated(rid)

with section("log_input") as out:
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    dataset = mlflow.data.from_pandas(df, name=f"{P}-ds", targets="a")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training", tags={"fold": "1"})
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    out["count"] = len(inputs)
    d = inputs[0].dataset
    out["dataset"] = {
        "name": d.name,
        "digest": d.digest,
        "source_type": d.source_type,
        "schema": json.loads(d.schema),
        "profile": json.loads(d.profile),
        "source": json.loads(d.source),
    }
    out["expected_digest"] = dataset.digest
    out["expected_source"] = json.loads(dataset.source.to_json())
    out["tags"] = {t.key: t.value for t in inputs[0].tags}

with section("update_terminate") as out:
    run = client.create_run(exp_id, run_name=f"{P}-to-update")
    rid = run.info.run_id
    out["created"] = info_of(rid)
    client.update_run(rid, status="FINISHED")
    out["updated"] = info_of(rid)
    client.update_run(rid, status="RUNNING")
    client.set_terminated(rid, status="KILLED", end_time=1_800_000_000_000)
    out["terminated"] = info_of(rid)
    run2 = client.create_run(exp_id, start_time=1_700_000_000_000, tags={"k": "v"})
    out["explicit_start"] = info_of(run2.info.run_id)["start_time"]
    out["explicit_tags"] = client.get_run(run2.info.run_id).data.tags.get("k")

with section("delete_restore") as out:
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    rid = run.info.run_id
    client.delete_run(rid)
    out["deleted"] = info_of(rid)
    out["deleted_metrics"] = client.get_run(rid).data.metrics
    out["log_to_deleted"] = error_of(client.log_metric, rid, "m", 2.0)
    out["param_to_deleted"] = error_of(client.log_param, rid, "p", "1")
    client.restore_run(rid)
    out["restored"] = info_of(rid)["lifecycle_stage"]
    client.log_metric(rid, "m", 3.0, step=1)
    out["metric_after_restore"] = client.get_run(rid).data.metrics["m"]
    mlflow.delete_run(rid)
    out["fluent_deleted"] = info_of(rid)["lifecycle_stage"]
    out["unknown_run"] = error_of(client.get_run, "0" * 32)
    out["unknown_delete"] = error_of(client.delete_run, "0" * 32)
    out["unknown_log"] = error_of(client.log_metric, "0" * 32, "m", 1.0)
"""


@pytest.fixture(scope="module")
def res(run_client: Any, prefix: str) -> Any:
    return run_client(SCRIPT, {"prefix": prefix})


def test_run_info_shape(res: Any) -> None:
    out = res["lifecycle"]
    inside = out["inside"]
    assert re.fullmatch(r"[0-9a-f]{32}", inside["run_id"])
    assert out["active_id"] == inside["run_id"]
    assert inside["experiment_id"] == out["exp_id"]
    assert (
        inside["artifact_uri"] == f"mlflow-artifacts:/{out['exp_id']}/{inside['run_id']}/artifacts"
    )
    assert inside["lifecycle_stage"] == "active"
    assert inside["status"] == "RUNNING"
    assert inside["end_time"] is None
    assert inside["start_time"] >= out["before_ms"] - 5_000


def test_with_block_finishes_run(res: Any) -> None:
    out = res["lifecycle"]
    after = out["after"]
    assert after["status"] == "FINISHED"
    assert after["end_time"] >= after["start_time"]
    assert out["active_after"] == "None"


def test_exception_fails_run_and_end_run_status(res: Any, prefix: str) -> None:
    out = res["lifecycle"]
    assert out["failed"]["status"] == "FAILED"
    assert out["failed"]["run_name"] == f"{prefix}-boom"
    assert out["failed"]["end_time"] is not None
    assert out["killed"]["status"] == "KILLED"
    assert out["killed"]["end_time"] is not None


def test_client_context_tags(res: Any, prefix: str) -> None:
    out = res["lifecycle"]
    tags = out["tags"]
    assert tags["mlflow.runName"] == f"{prefix}-ok"
    assert tags["mlflow.user"] == out["after"]["user_id"] != ""
    assert tags["mlflow.source.name"].endswith("compat_script.py")
    assert tags["mlflow.source.type"] == "LOCAL"


def test_run_name_and_run_name_tag_stay_in_sync(res: Any, prefix: str) -> None:
    out = res["names"]
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d+", out["generated"]), out["generated"]
    assert out["generated_tag"] == out["generated"]
    assert out["from_tag"] == f"{prefix}-from-tag"
    assert out["renamed_by_tag"] == f"{prefix}-after"
    assert out["renamed_by_update"] == f"{prefix}-updated"
    assert out["tag_after_update"] == f"{prefix}-updated"


def test_nested_runs(res: Any) -> None:
    out = res["nested"]
    assert out["active_in_child"] == out["child_id"] != out["parent_id"]
    assert out["active_after_child"] == out["parent_id"]
    assert out["child_parent_tag"] == out["parent_id"]
    assert out["parent_has_parent_tag"] is False
    assert out["child_status"] == "FINISHED"


def test_params_and_immutability(res: Any, assert_error: ErrorCheck) -> None:
    out = res["params"]
    assert out["params"] == {
        "lr": "0.01",
        "layers": "3",
        "opt": "adam",
        "none": "None",
        "empty": "",
    }
    assert_error(
        out["change_single"],
        "INVALID_PARAMETER_VALUE",
        400,
        "Changing param values is not allowed",
        "key='lr'",
        out["run_id"],
    )
    assert_error(
        out["change_batch"], "INVALID_PARAMETER_VALUE", 400, "Changing param values is not allowed"
    )
    # Over-long values are truncated to 6000 characters, not refused.
    assert out["long_len"] == 6000


def test_metric_history_with_step_and_timestamp(res: Any) -> None:
    out = res["metrics"]
    assert out["acc"] == [
        [0.5, 1, 1_700_000_000_000],
        [0.7, 2, 1_700_000_001_000],
        [0.6, 3, 1_700_000_002_000],
    ]
    # ordered by timestamp first: the explicit 2023 timestamp precedes "now"
    [first, (value, step, timestamp)] = out["m1"]
    assert first == [2.5, 8, 1_700_000_003_000]
    assert (value, step) == (1.5, 7)
    assert out["now_ms"] - 120_000 < timestamp <= out["now_ms"]
    [(value, step, timestamp)] = out["plain"]
    assert (value, step) == (3.0, 0)
    assert out["now_ms"] - 120_000 < timestamp <= out["now_ms"]
    assert out["unknown_key"] == []


def test_latest_metric_semantics(res: Any) -> None:
    out = res["metrics"]
    assert out["latest"] == {
        "acc": 0.6,
        "plain": 3.0,
        "m1": 2.5,
        "m2": -2.0,
        "late": 1.0,
        "tie": 3.0,
    }
    assert out["latest_objs"]["late"] == [1.0, 5, 1000]
    assert out["latest_objs"]["acc"] == [0.6, 3, 1_700_000_002_000]
    # history keeps every point, ordered by (timestamp, step, value)
    assert out["late"] == [[0.5, 5, 500], [1.0, 5, 1000], [2.0, 3, 2000]]


def test_nan_and_infinity_round_trip(res: Any) -> None:
    out = res["special_values"]
    assert out["latest"] == {
        "nan": "nan",
        "inf": repr(MAX_DOUBLE),
        "ninf": repr(-MAX_DOUBLE),
        "big": "1e+300",
        "tiny": "-5e-324",
    }
    assert out["history"] == {
        "nan": ["nan"],
        "inf": [repr(MAX_DOUBLE)],
        "ninf": [repr(-MAX_DOUBLE)],
    }
    assert math.isnan(float(out["latest"]["nan"]))


def test_tags_set_update_delete(res: Any, assert_error: ErrorCheck) -> None:
    out = res["tags"]
    assert out["user_tags"] == {"a": "2", "c": "3", "d": "", "after_end": "ok"}
    assert_error(out["delete_missing"], "RESOURCE_DOES_NOT_EXIST", 404, "b")
    assert out["long_len"] == 8000


def test_log_batch_limits_and_client_chunking(res: Any) -> None:
    out = res["log_batch"]
    assert out["exact_1000_keys"] == 1000
    assert out["exact_1000_sample"] == [0.0, 999.0]
    assert out["big_history_len"] == 2500
    assert out["big_history_steps_ok"] is True
    assert out["big_latest"] == 2499.0
    assert out["big_params"] == 150
    assert out["big_param_sample"] == "149"
    assert out["big_tags"] == 150


def test_log_input_dataset(res: Any, prefix: str) -> None:
    out = res["log_input"]
    assert out["count"] == 1
    dataset = out["dataset"]
    assert dataset["name"] == f"{prefix}-ds"
    assert dataset["digest"] == out["expected_digest"]
    assert dataset["source_type"] == "code"
    assert dataset["source"] == out["expected_source"]
    assert dataset["profile"] == {"num_rows": 3, "num_elements": 6}
    assert [c["name"] for c in dataset["schema"]["mlflow_colspec"]] == ["a", "b"]
    assert out["tags"] == {"mlflow.data.context": "training", "fold": "1"}


def test_update_run_and_set_terminated(res: Any, prefix: str) -> None:
    out = res["update_terminate"]
    assert out["created"]["status"] == "RUNNING"
    assert out["created"]["run_name"] == f"{prefix}-to-update"
    assert out["updated"]["status"] == "FINISHED"
    assert out["updated"]["run_name"] == f"{prefix}-to-update"
    assert out["terminated"]["status"] == "KILLED"
    assert out["terminated"]["end_time"] == 1_800_000_000_000
    assert out["explicit_start"] == 1_700_000_000_000
    assert out["explicit_tags"] == "v"


def test_delete_restore_and_deleted_runs(res: Any, assert_error: ErrorCheck) -> None:
    out = res["delete_restore"]
    deleted = out["deleted"]
    assert deleted["lifecycle_stage"] == "deleted"
    assert deleted["status"] == "FINISHED"
    assert out["deleted_metrics"] == {"m": 1.0}
    assert_error(out["log_to_deleted"], "INVALID_PARAMETER_VALUE", 400, "active")
    assert_error(out["param_to_deleted"], "INVALID_PARAMETER_VALUE", 400, "active")
    assert out["restored"] == "active"
    assert out["metric_after_restore"] == 3.0
    assert out["fluent_deleted"] == "deleted"
    assert_error(out["unknown_run"], "RESOURCE_DOES_NOT_EXIST", 404, "0" * 32)
    assert_error(out["unknown_delete"], "RESOURCE_DOES_NOT_EXIST", 404)
    assert_error(out["unknown_log"], "RESOURCE_DOES_NOT_EXIST", 404)
