"""``GET /api/2.0/runyard/runs/keys`` over HTTP (an in-process server on a real SQLite store)."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

KEYS = "/api/2.0/runyard/runs/keys"


def _experiment(api: TestClient, name: str) -> str:
    response = api.post("/api/2.0/mlflow/experiments/create", json={"name": name})
    return str(response.json()["experiment_id"])


def _run(api: TestClient, exp_id: str, **batch: Any) -> str:
    body = {"experiment_id": exp_id, "start_time": 1000}
    run_id = str(api.post("/api/2.0/mlflow/runs/create", json=body).json()["run"]["info"]["run_id"])
    response = api.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, **batch})
    assert response.status_code == 200, response.text
    return run_id


def test_keys_of_one_and_several_experiments(api: TestClient) -> None:
    first = _experiment(api, "first")
    second = _experiment(api, "second")
    _run(
        api,
        first,
        metrics=[{"key": "loss", "value": 0.5, "timestamp": 1, "step": 0}],
        params=[{"key": "lr", "value": "0.1"}],
        tags=[{"key": "stage", "value": "dev"}],
    )
    _run(api, second, params=[{"key": "depth", "value": "3"}])

    response = api.get(KEYS, params={"experiment_ids": first})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "params": ["lr"],
        "metrics": ["loss"],
        "tags": ["mlflow.runName", "stage"],
    }
    both = api.get(f"{KEYS}?experiment_ids={first}&experiment_ids={second}").json()
    assert both["params"] == ["depth", "lr"]
    # The UI calls it under /ajax-api as well.
    assert api.get(f"/ajax-api/2.0/runyard/runs/keys?experiment_ids={second}").json()["params"] == [
        "depth"
    ]


def test_deleted_runs_are_left_out(api: TestClient) -> None:
    exp = _experiment(api, "e")
    gone = _run(api, exp, params=[{"key": "old", "value": "1"}])
    _run(api, exp, params=[{"key": "new", "value": "1"}])
    api.post("/api/2.0/mlflow/runs/delete", json={"run_id": gone})
    assert api.get(KEYS, params={"experiment_ids": exp}).json()["params"] == ["new"]


def test_experiment_without_runs(api: TestClient) -> None:
    exp = _experiment(api, "empty")
    assert api.get(KEYS, params={"experiment_ids": exp}).json() == {
        "params": [],
        "metrics": [],
        "tags": [],
    }


def test_bad_requests(api: TestClient) -> None:
    missing = api.get(KEYS)
    assert missing.status_code == 400
    assert missing.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "experiment_ids" in missing.json()["message"]
    bad = api.get(KEYS, params={"experiment_ids": "abc"})
    assert bad.status_code == 400
    assert "Invalid experiment ID" in bad.json()["message"]
    assert api.post(KEYS, json={"experiment_ids": ["0"]}).status_code == 405


def test_listed_in_openapi(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert any(path.endswith("/runyard/runs/keys") for path in paths)
