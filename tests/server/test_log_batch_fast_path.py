"""log-batch bodies decoded straight to store rows (the fast path) store exactly what the
per-metric path stores, and every body the fast path does not take still works or fails as
before."""

from __future__ import annotations

import math

import pytest
from starlette.testclient import TestClient

from runyard.server.handlers.runs import _checked_points

API = "/api/2.0/mlflow"


def _history(api: TestClient, run_id: str, key: str) -> list[dict]:
    params = {"run_id": run_id, "metric_key": key}
    return api.get(f"{API}/metrics/get-history", params=params).json().get("metrics", [])


def _metric(key: str, value: object, step: object = 0, timestamp: object = 5) -> dict:
    return {"key": key, "value": value, "timestamp": timestamp, "step": step}


def test_plain_body_takes_the_fast_path() -> None:
    docs = [_metric("loss", 0.5, 1), _metric("acc", 0.25, 2, 7)]
    rows = _checked_points("r1", docs)
    assert rows == [("r1", "loss", 1, 5, 0.5, False), ("r1", "acc", 2, 7, 0.25, False)]


@pytest.mark.parametrize(
    "doc",
    [
        _metric("m", 1),  # an int value
        _metric("m", "0.5"),  # a number as a string
        _metric("m", 0.5, "3"),  # a step as a string
        {"key": "m", "value": 0.5, "timestamp": 5},  # no step
        {**_metric("m", 0.5), "model_id": "m-1"},  # MLflow 3 fields
        _metric("m", 0.5, 2**63),  # beyond int64
        _metric("m", 0.5, 0, -1),  # a negative timestamp
        _metric("m", 1e308 * 10),  # infinity
        _metric("m", True),
        "not an object",
    ],
)
def test_anything_unusual_takes_the_careful_path(doc: object) -> None:
    assert _checked_points("r1", [_metric("ok", 0.5), doc]) is None


def test_fast_and_careful_paths_store_the_same(api: TestClient, run_id: str) -> None:
    fast = [_metric("a", v / 7, step, 100 + step) for step, v in enumerate(range(20))]
    careful = [{**m, "value": int(m["value"] * 7)} for m in fast]  # ints: per-metric path
    careful = [{**m, "value": m["value"] / 7} if i else m for i, m in enumerate(careful)]
    assert _checked_points(run_id, fast) is not None
    assert _checked_points(run_id, careful) is None
    assert api.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": fast}).json() == {}
    other = api.post(f"{API}/runs/create", json={"experiment_id": "1", "start_time": 1}).json()
    other_id = other["run"]["info"]["run_id"]
    body = {"run_id": other_id, "metrics": careful}
    assert api.post(f"{API}/runs/log-batch", json=body).json() == {}
    assert _history(api, run_id, "a") == _history(api, other_id, "a")
    assert len(_history(api, run_id, "a")) == 20
    run = api.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]
    summary = {m["key"]: m for m in run["data"]["metrics"]}
    assert summary["a"]["step"] == 19
    assert math.isclose(summary["a"]["value"], 19 / 7)


def test_fast_path_refuses_a_bad_key_with_mlflows_message(api: TestClient, run_id: str) -> None:
    body = {"run_id": run_id, "metrics": [_metric("ok", 0.5), _metric("../up", 0.5)]}
    response = api.post(f"{API}/runs/log-batch", json=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Invalid metric name: '../up'" in response.json()["message"]
    assert _history(api, run_id, "ok") == []  # nothing half-written


def test_fast_path_keeps_params_tags_and_limits(api: TestClient, run_id: str) -> None:
    body = {
        "run_id": run_id,
        "metrics": [_metric("m", 0.5, i) for i in range(1001)],
    }
    response = api.post(f"{API}/runs/log-batch", json=body)
    assert response.status_code == 400
    assert "at most 1000 metrics" in response.json()["message"]
    body = {
        "run_id": run_id,
        "metrics": [_metric("m", 0.5, i) for i in range(3)],
        "params": [{"key": "lr", "value": "0.1"}],
        "tags": [{"key": "team", "value": "x"}],
    }
    assert api.post(f"{API}/runs/log-batch", json=body).json() == {}
    data = api.get(f"{API}/runs/get", params={"run_id": run_id}).json()["run"]["data"]
    assert data["params"] == [{"key": "lr", "value": "0.1"}]
    assert {"key": "team", "value": "x"} in data["tags"]
    assert len(_history(api, run_id, "m")) == 3
