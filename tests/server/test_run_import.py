"""``POST /api/2.0/runyard/runs/import``: a run keeps its id, times, steps and timestamps; a second
import (or a run sent in chunks) merges without duplicates; a run of another experiment is
refused; with auth on, the caller needs EDIT on the target experiment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from runyard.server.app import create_app
from runyard.server.settings import ServerSettings
from tests.server.auth.conftest import ADMIN, ADMIN_PASSWORD, create_user

IMPORT = "/api/2.0/runyard/runs/import"
RUN_ID = "0123456789abcdef0123456789abcdef"


def body(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "experiment_name": "imported",
        "run_id": RUN_ID,
        "run_name": "offline-run",
        "user_id": "alice",
        "status": "FINISHED",
        "start_time": 1_700_000_000_000,
        "end_time": 1_700_000_360_000,
        "params": [{"key": "lr", "value": "0.1"}],
        "tags": [{"key": "mlflow.source.name", "value": "train.py"}],
        "metrics": [
            {"key": "loss", "value": 1.0 / (s + 1), "timestamp": 1_700_000_000_000 + s, "step": s}
            for s in range(100)
        ],
    }
    doc.update(overrides)
    return doc


def history(api: TestClient, key: str, run_id: str = RUN_ID) -> list[dict[str, Any]]:
    doc = api.get(
        "/api/2.0/mlflow/metrics/get-history", params={"run_id": run_id, "metric_key": key}
    ).json()
    return list(doc.get("metrics", []))


def test_import_keeps_ids_times_and_history(api: TestClient) -> None:
    points = body()["metrics"] + [{"key": "nan", "value": "NaN", "timestamp": 5, "step": 3}]
    response = api.post(IMPORT, json=body(metrics=points))
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["created"] is True
    info = doc["run_info"]
    assert info["run_id"] == RUN_ID
    assert info["artifact_uri"].endswith(f"/{doc['experiment_id']}/{RUN_ID}/artifacts")
    run = api.get("/api/2.0/mlflow/runs/get", params={"run_id": RUN_ID}).json()["run"]
    assert {k: run["info"][k] for k in ("status", "start_time", "end_time", "user_id")} == {
        "status": "FINISHED",
        "start_time": 1_700_000_000_000,
        "end_time": 1_700_000_360_000,
        "user_id": "alice",
    }
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.runName"] == "offline-run" == run["info"]["run_name"]
    assert tags["mlflow.source.name"] == "train.py"
    assert run["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    exp = api.get(
        "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "imported"}
    ).json()["experiment"]
    assert exp["experiment_id"] == doc["experiment_id"] == run["info"]["experiment_id"]
    loss = history(api, "loss")
    assert [(m["step"], m["timestamp"]) for m in loss] == [
        (s, 1_700_000_000_000 + s) for s in range(100)
    ]
    assert history(api, "nan") == [{"key": "nan", "value": "NaN", "timestamp": 5, "step": 3}]


def test_a_second_import_and_chunks_merge_without_duplicates(api: TestClient) -> None:
    first = body(status="RUNNING", end_time=None)
    first["metrics"] = first["metrics"][:60]
    assert api.post(IMPORT, json=first).json()["created"] is True
    # The rest in a second chunk that overlaps the first; then the whole run again.
    second = body()
    second["metrics"] = second["metrics"][40:]
    for doc in (second, body()):
        response = api.post(IMPORT, json=doc)
        assert response.status_code == 200, response.text
        assert response.json()["created"] is False
    assert [m["step"] for m in history(api, "loss")] == list(range(100))
    run = api.get("/api/2.0/mlflow/runs/get", params={"run_id": RUN_ID}).json()["run"]
    assert run["info"]["status"] == "FINISHED"
    assert run["data"]["metrics"] == [
        {"key": "loss", "value": 0.01, "timestamp": 1_700_000_000_099, "step": 99}
    ]
    search = api.post(
        "/api/2.0/mlflow/runs/search", json={"experiment_ids": [run["info"]["experiment_id"]]}
    ).json()
    assert len(search["runs"]) == 1


def test_into_an_experiment_by_id(api: TestClient) -> None:
    exp_id = api.post("/api/2.0/mlflow/experiments/create", json={"name": "x"}).json()[
        "experiment_id"
    ]
    doc = body(experiment_id=exp_id)
    del doc["experiment_name"]
    response = api.post(IMPORT, json=doc)
    assert response.status_code == 200, response.text
    assert response.json()["run_info"]["experiment_id"] == exp_id


def test_a_run_of_another_experiment_is_refused(api: TestClient) -> None:
    assert api.post(IMPORT, json=body()).status_code == 200
    response = api.post(IMPORT, json=body(experiment_name="elsewhere"))
    assert response.status_code == 400
    assert response.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert "already exists in experiment" in response.json()["message"]


def test_a_changed_param_is_refused_and_nothing_is_written(api: TestClient) -> None:
    assert api.post(IMPORT, json=body()).status_code == 200
    extra = [{"key": "new", "value": 1.0, "timestamp": 1, "step": 1}]
    response = api.post(IMPORT, json=body(params=[{"key": "lr", "value": "0.5"}], metrics=extra))
    assert response.status_code == 400
    assert "Changing param values is not allowed" in response.json()["message"]
    assert history(api, "new") == []


def test_deleted_runs_and_datasets(api: TestClient) -> None:
    dataset = {
        "tags": [{"key": "mlflow.data.context", "value": "train"}],
        "dataset": {"name": "d", "digest": "abc123", "source_type": "local", "source": "{}"},
    }
    doc = body(lifecycle_stage="deleted", datasets=[dataset])
    assert api.post(IMPORT, json=doc).status_code == 200
    run = api.get("/api/2.0/mlflow/runs/get", params={"run_id": RUN_ID}).json()["run"]
    assert run["info"]["lifecycle_stage"] == "deleted"
    assert run["inputs"]["dataset_inputs"][0]["dataset"]["digest"] == "abc123"
    assert api.post(IMPORT, json=doc).status_code == 200  # deleted stays deleted, no error


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"run_id": None}, "Missing value for required parameter 'run_id'"),
        ({"run_id": "../etc"}, "Invalid run ID"),
        ({"experiment_name": None}, "'experiment_id' (or 'experiment_name')"),
        ({"metrics": [{"key": "m", "value": "x", "timestamp": 1}]}, "value must be a number"),
        ({"metrics": [{"key": "m", "value": 1}]}, "'metrics[0].timestamp'"),
        ({"params": [{"value": "1"}]}, "'params[0].key'"),
        ({"tags": [{"key": "../x", "value": "1"}]}, "Invalid tag name"),
        ({"status": "DONE"}, "Invalid value 'DONE' for parameter 'status'"),
        ({"lifecycle_stage": "gone"}, "Invalid lifecycle stage"),
        (
            {
                "metrics": [
                    {"key": "m", "value": 1, "timestamp": 1, "step": s} for s in range(50001)
                ]
            },
            "at most 50000 metric points",
        ),
    ],
)
def test_bad_requests_are_refused(api: TestClient, overrides: dict[str, Any], message: str) -> None:
    response = api.post(IMPORT, json=body(**overrides))
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in response.json()["message"]
    assert api.get("/api/2.0/mlflow/runs/get", params={"run_id": RUN_ID}).status_code == 404


def test_an_unknown_experiment_id(api: TestClient) -> None:
    doc = body(experiment_id="999")
    del doc["experiment_name"]
    response = api.post(IMPORT, json=doc)
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_the_endpoint_is_described(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert "post" in paths[IMPORT]


# -- with auth on ---------------------------------------------------------------------------------
@pytest.fixture
def auth_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """An auth-enabled app in this process (real SQLite)."""
    for name in [k for k in os.environ if k.startswith(("RUNYARD_AUTH_", "MLFLOW_AUTH_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RUNYARD_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
    settings = ServerSettings(
        backend_store_uri=f"sqlite:///{tmp_path / 'auth.db'}",
        artifacts_destination=str(tmp_path / "artifacts"),
        app_name="basic-auth",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_auth_needs_edit_on_the_experiment(auth_app: TestClient) -> None:
    alice, bob = create_user(auth_app), create_user(auth_app)
    run_id = "a" * 32
    # Creating an experiment by importing into it makes the caller its manager.
    doc = body(run_id=run_id, experiment_name=f"own-{alice[0]}")
    response = auth_app.post(IMPORT, json=doc, auth=alice)
    assert response.status_code == 200, response.text
    exp_id = response.json()["experiment_id"]
    assert auth_app.post(IMPORT, json=doc, auth=alice).status_code == 200
    # Others read by default, so they may not import into it, by name or by id.
    assert auth_app.post(IMPORT, json=doc, auth=bob).status_code == 403
    by_id = body(run_id="b" * 32, experiment_id=exp_id)
    del by_id["experiment_name"]
    assert auth_app.post(IMPORT, json=by_id, auth=bob).status_code == 403
    assert auth_app.post(IMPORT, json=by_id, auth=alice).status_code == 200
    grant = {"experiment_id": exp_id, "username": bob[0], "permission": "EDIT"}
    response = auth_app.post(
        "/api/2.0/mlflow/experiments/permissions/create", json=grant, auth=alice
    )
    assert response.status_code == 200, response.text
    assert auth_app.post(IMPORT, json=by_id, auth=bob).status_code == 200
    assert auth_app.post(IMPORT, json=body(run_id="c" * 32), auth=ADMIN).status_code == 200
