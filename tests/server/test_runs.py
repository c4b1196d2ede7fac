"""Run endpoints over HTTP: shapes, semantics and limits."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

API = "/api/2.0/mlflow"


def _get_run(api: TestClient, run_id: str) -> dict:
    return api.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]


def test_create_run_shape(api: TestClient, run_id: str) -> None:
    run = _get_run(api, run_id)
    info = run["info"]
    assert info["run_id"] == info["run_uuid"] == run_id
    assert info["status"] == "RUNNING"
    assert info["start_time"] == 1000
    assert "end_time" not in info
    assert info["artifact_uri"] == f"mlflow-artifacts:/1/{run_id}/artifacts"
    assert run["data"] == {"tags": [{"key": "mlflow.runName", "value": "r"}]}
    assert run["inputs"] == {}


def test_log_batch_and_history(api: TestClient, run_id: str) -> None:
    body = {
        "run_id": run_id,
        "metrics": [
            {"key": "loss", "value": 1.0 / (i + 1), "timestamp": i, "step": i} for i in range(10)
        ],
        "params": [{"key": "lr", "value": "0.1"}],
        "tags": [{"key": "team", "value": "x"}],
    }
    assert api.post(f"{API}/runs/log-batch", json=body).json() == {}
    history = api.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"})
    points = history.json()["metrics"]
    assert [p["step"] for p in points] == list(range(10))
    assert "next_page_token" not in history.json()
    page = api.get(
        f"{API}/metrics/get-history",
        params={"run_id": run_id, "metric_key": "loss", "max_results": 4},
    ).json()
    assert len(page["metrics"]) == 4
    assert page["next_page_token"]
    run = _get_run(api, run_id)
    assert run["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    assert {"key": "loss", "value": 0.1, "timestamp": 9, "step": 9} in run["data"]["metrics"]


def test_param_change_refused_and_nothing_half_written(api: TestClient, run_id: str) -> None:
    api.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "p", "value": "1"})
    body = {
        "run_id": run_id,
        "params": [{"key": "p", "value": "2"}],
        "metrics": [{"key": "m", "value": 1, "timestamp": 1}],
    }
    response = api.post(f"{API}/runs/log-batch", json=body)
    assert response.status_code == 400
    assert "Changing param values is not allowed" in response.json()["message"]
    assert "metrics" not in _get_run(api, run_id)["data"]


def test_batch_limits_and_item_paths(api: TestClient, run_id: str) -> None:
    too_many = {
        "run_id": run_id,
        "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": i} for i in range(1001)],
    }
    response = api.post(f"{API}/runs/log-batch", json=too_many)
    assert response.status_code == 400
    assert "at most 1000 metrics" in response.json()["message"]
    missing = {"run_id": run_id, "metrics": [{"key": "m", "value": 1}]}
    response = api.post(f"{API}/runs/log-batch", json=missing)
    assert "metrics[0].timestamp" in response.json()["message"]
    huge = {"run_id": run_id, "tags": [{"key": "t", "value": "x" * 1_000_001}]}
    assert api.post(f"{API}/runs/log-batch", json=huge).status_code == 400


def test_unknown_and_deleted_runs(api: TestClient, run_id: str) -> None:
    missing = api.get(f"{API}/runs/get", params={"run_id": "0" * 32})
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    api.post(f"{API}/runs/delete", json={"run_id": run_id})
    assert _get_run(api, run_id)["info"]["lifecycle_stage"] == "deleted"
    write = api.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "k", "value": "v"})
    assert write.status_code == 400
    assert "must be in the 'active' state" in write.json()["message"]


def test_search_paging_and_empty_result(api: TestClient, run_id: str) -> None:
    for i in range(4):
        api.post(f"{API}/runs/create", json={"experiment_id": "1", "start_time": i})
    first = api.post(f"{API}/runs/search", json={"experiment_ids": ["1"], "max_results": 3}).json()
    assert len(first["runs"]) == 3
    rest = api.post(
        f"{API}/runs/search",
        json={"experiment_ids": ["1"], "max_results": 3, "page_token": first["next_page_token"]},
    ).json()
    assert len(rest["runs"]) == 2
    assert "next_page_token" not in rest
    none = api.post(f"{API}/runs/search", json={"experiment_ids": ["1"], "filter": "metrics.x > 1"})
    assert none.json() == {}
    bad = api.post(f"{API}/runs/search", json={"experiment_ids": ["1"], "filter": "a OR b"})
    assert bad.status_code == 400


def test_experiment_errors(api: TestClient) -> None:
    api.post(f"{API}/experiments/create", json={"name": "dup"})
    dup = api.post(f"{API}/experiments/create", json={"name": "dup"})
    assert (dup.status_code, dup.json()["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")
    unknown = api.get(f"{API}/experiments/get-by-name", params={"experiment_name": "nope"})
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    search = api.post(f"{API}/experiments/search", json={})
    assert search.status_code == 400


def test_list_run_artifacts(api: TestClient, run_id: str) -> None:
    api.put(f"/api/2.0/mlflow-artifacts/artifacts/1/{run_id}/artifacts/d/a.txt", content=b"abc")
    listing = api.get(f"{API}/artifacts/list", params={"run_id": run_id}).json()
    assert listing["root_uri"] == f"mlflow-artifacts:/1/{run_id}/artifacts"
    assert listing["files"] == [{"path": "d", "is_dir": True}]
    sub = api.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": "d"}).json()
    assert sub["files"] == [{"path": "d/a.txt", "is_dir": False, "file_size": 3}]
    bad = api.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": "../../x"})
    assert bad.status_code == 400


def test_host_addressed_artifact_locations_refused(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for location in ("ftp://evil.example/x", "http://10.0.0.1:8080/a", "sftp://h/p"):
        response = api.post(
            f"{API}/experiments/create", json={"name": location, "artifact_location": location}
        )
        assert response.status_code == 400, location
        assert "not allowed" in response.json()["message"]
    for location in ("s3://bucket/prefix", "mlflow-artifacts:/x", "/tmp/local"):
        response = api.post(
            f"{API}/experiments/create", json={"name": location, "artifact_location": location}
        )
        assert response.status_code == 200, location
    monkeypatch.setenv("MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES", "ftp")
    allowed = {"name": "ftp-ok", "artifact_location": "ftp://files.example/x"}
    assert api.post(f"{API}/experiments/create", json=allowed).status_code == 200


def test_history_in_timestamp_order_and_param_message(api: TestClient, run_id: str) -> None:
    points = [(5, 1, 10), (0, 2, 20), (7, 3, 5)]  # (step, value, timestamp)
    body = {
        "run_id": run_id,
        "metrics": [{"key": "m", "value": v, "timestamp": ts, "step": st} for st, v, ts in points],
    }
    api.post(f"{API}/runs/log-batch", json=body)
    history = api.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "m"})
    assert [p["timestamp"] for p in history.json()["metrics"]] == [5, 10, 20]
    api.post(f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "1"})
    changed = api.post(
        f"{API}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "2"}
    )
    assert changed.json()["message"] == (
        "Changing param values is not allowed. Param with key='lr' was already logged with "
        f"value='1' for run ID='{run_id}'. Attempted logging new value '2'."
    )


def test_history_bulk_interval_samples_over_steps(api: TestClient, run_id: str) -> None:
    points = [{"key": "m", "value": float(i), "timestamp": i, "step": i} for i in range(100)]
    api.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": points})
    # At most 10 points: whole, then spread over the steps.
    params = {"run_ids": [run_id], "metric_key": "m", "max_results": 5, "start_step": 0}
    got = api.get(
        f"{API}/metrics/get-history-bulk-interval", params={**params, "end_step": 9}
    ).json()["metrics"]
    assert [m["step"] for m in got] == [0, 2, 4, 7, 9]
    # A short series (up to 25,000 points) is sampled evenly over its steps, as MLflow does.
    params = {"run_ids": [run_id], "metric_key": "m", "max_results": 5}
    got = api.get(f"{API}/metrics/get-history-bulk-interval", params=params).json()["metrics"]
    assert [m["step"] for m in got] == [0, 25, 50, 74, 99]
    assert {m["run_id"] for m in got} == {run_id}
    unknown = {**params, "run_ids": ["0" * 32]}
    assert api.get(f"{API}/metrics/get-history-bulk-interval", params=unknown).json() == {}
    window = {**params, "start_step": 10, "end_step": 12}
    got = api.get(f"{API}/metrics/get-history-bulk-interval", params=window).json()["metrics"]
    assert [m["step"] for m in got] == [10, 11, 12]
    bad = api.get(f"{API}/metrics/get-history-bulk-interval", params={**params, "start_step": 3})
    assert bad.status_code == 400


def test_history_bulk_interval_of_a_long_series_keeps_its_ends_and_range(
    api: TestClient, run_id: str
) -> None:
    for start in range(0, 30_000, 1000):  # long enough for metric tiles and the reduction
        points = [
            {"key": "m", "value": float(i % 97), "timestamp": i, "step": i}
            for i in range(start, start + 1000)
        ]
        api.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": points})
    params = {"run_ids": [run_id], "metric_key": "m", "max_results": 100}
    got = api.get(f"{API}/metrics/get-history-bulk-interval", params=params).json()["metrics"]
    steps = [m["step"] for m in got]
    assert 50 <= len(steps) <= 100
    assert steps == sorted(steps)
    assert (steps[0], steps[-1]) == (0, 29_999)
    assert all(m["value"] == float(m["step"] % 97) for m in got)  # real points
    window = {**params, "start_step": 3_000, "end_step": 29_000}
    got = api.get(f"{API}/metrics/get-history-bulk-interval", params=window).json()["metrics"]
    assert 50 <= len(got) <= 100
    assert (got[0]["step"], got[-1]["step"]) == (3_000, 29_000)


def test_legacy_log_model_and_presigned_urls(api: TestClient, run_id: str) -> None:
    import json

    model = {"artifact_path": "model", "flavors": {}, "utc_time_created": "x", "run_id": run_id}
    body = {"run_id": run_id, "model_json": json.dumps(model)}
    assert api.post(f"{API}/runs/log-model", json=body).json() == {}
    run = api.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert json.loads(tags["mlflow.log-model.history"]) == [model]
    bad = api.post(f"{API}/runs/log-model", json={"run_id": run_id, "model_json": "{}"})
    assert "lacks required fields" in bad.json()["message"]
    url = api.post(f"{API}/artifacts/presigned-upload-url", json={"run_id": run_id, "path": "x"})
    assert (url.status_code, url.json()["error_code"]) == (501, "NOT_IMPLEMENTED")


# Found by the API fuzz run (tests/server/test_api_fuzz.py): each of these answered 500.
def test_log_model_refuses_non_objects_and_survives_a_bad_history_tag(
    api: TestClient, run_id: str
) -> None:
    import json

    for text in ("0", "[]", '"x"', "null"):
        bad = api.post(f"{API}/runs/log-model", json={"run_id": run_id, "model_json": text})
        assert bad.status_code == 400, bad.text
    numeric = api.post(f"{API}/runs/log-model", json={"run_id": run_id, "model_json": 0})
    assert numeric.status_code == 400
    # Any client may set the history tag to anything; the next log-model starts it afresh.
    tag = {"run_id": run_id, "key": "mlflow.log-model.history", "value": "{not json"}
    assert api.post(f"{API}/runs/set-tag", json=tag).status_code == 200
    model = {"artifact_path": "m", "flavors": {}, "utc_time_created": "x", "run_id": run_id}
    body = {"run_id": run_id, "model_json": json.dumps(model)}
    assert api.post(f"{API}/runs/log-model", json=body).status_code == 200
    tags = {t["key"]: t["value"] for t in _get_run(api, run_id)["data"]["tags"]}
    assert json.loads(tags["mlflow.log-model.history"]) == [model]


@pytest.mark.parametrize(
    "metric",
    [
        {"key": "m", "value": 1.0, "timestamp": 2**63},
        {"key": "m", "value": 1.0, "timestamp": 1, "step": 2**64 - 1},
        {"key": "m", "value": 1.0, "timestamp": 1e300},
        {"key": "m", "value": 1.0, "timestamp": 1, "step": -1e19},
    ],
)
def test_integers_beyond_int64_are_refused(api: TestClient, run_id: str, metric: dict) -> None:
    batch = api.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [metric]})
    assert batch.status_code == 400, batch.text
    assert "64-bit" in batch.json()["message"]
    single = api.post(f"{API}/runs/log-metric", json={"run_id": run_id, **metric})
    assert single.status_code == 400, single.text
    created = api.post(f"{API}/runs/create", json={"experiment_id": "0", "start_time": 2**63})
    assert created.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    "dataset",
    [
        {"dataset": 1},
        {"dataset": {"name": 1, "digest": []}},
        {"dataset": {"name": "d", "digest": "x"}, "tags": 1},
        {"dataset": {"name": "d", "digest": "x"}, "tags": [1]},
        {"dataset": {"name": "d", "digest": "x"}, "tags": [{"key": {}}]},
    ],
)
def test_malformed_dataset_inputs_are_refused(api: TestClient, run_id: str, dataset: dict) -> None:
    reply = api.post(f"{API}/runs/log-inputs", json={"run_id": run_id, "datasets": [dataset]})
    assert reply.status_code == 400, reply.text
    assert "datasets[0]" in reply.json()["message"]
    assert _get_run(api, run_id)["inputs"] == {}
