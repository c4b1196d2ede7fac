"""Logged-model endpoints over HTTP (spec §2.6), ``runs/outputs``, and metrics and inputs that
name a logged model: exact JSON shapes and error codes."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

API = "/api/2.0/mlflow"
MISSING = "See the API docs for more information about request parameters."


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def create(api: TestClient, **body: Any) -> dict[str, Any]:
    doc = ok(api.post(f"{API}/logged-models", json={"experiment_id": "1", **body}))
    return doc["model"]  # type: ignore[no-any-return]


@pytest.fixture
def model_id(api: TestClient, run_id: str) -> str:
    return str(create(api, name="clf", source_run_id=run_id)["info"]["model_id"])


def get(api: TestClient, model_id: str, **params: Any) -> Any:
    return api.get(f"{API}/logged-models/{model_id}", params=params)


def test_create_shape(api: TestClient, run_id: str) -> None:
    model = create(
        api,
        name="clf",
        model_type="sklearn",
        source_run_id=run_id,
        params=[{"key": "alpha", "value": "0.5"}],
        tags=[{"key": "team", "value": "a"}],
    )
    info = model["info"]
    mid, created = info["model_id"], info["creation_timestamp_ms"]
    assert model == {
        "info": {
            "model_id": mid,
            "experiment_id": "1",
            "name": "clf",
            "creation_timestamp_ms": created,
            "last_updated_timestamp_ms": created,
            "artifact_uri": f"mlflow-artifacts:/1/models/{mid}/artifacts",
            "status": "LOGGED_MODEL_PENDING",
            "model_type": "sklearn",
            "source_run_id": run_id,
            "tags": [{"key": "team", "value": "a"}],
        },
        "data": {"params": [{"key": "alpha", "value": "0.5"}]},
    }
    assert ok(get(api, mid)) == {"model": model}


def test_create_minimal_and_errors(api: TestClient) -> None:
    model = create(api, experiment_id="0")
    assert set(model["info"]) == {
        "model_id",
        "experiment_id",
        "name",
        "creation_timestamp_ms",
        "last_updated_timestamp_ms",
        "artifact_uri",
        "status",
    }
    assert model["data"] == {}
    missing = api.post(f"{API}/logged-models", json={"name": "x"})
    assert missing.status_code == 400
    assert missing.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"Missing value for required parameter 'experiment_id'. {MISSING}",
    }
    bad = api.post(f"{API}/logged-models", json={"experiment_id": "0", "name": "a/b"})
    assert bad.status_code == 400
    assert "Invalid model name ('a/b') provided" in bad.json()["message"]
    unknown = api.post(f"{API}/logged-models", json={"experiment_id": "404"})
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    no_key = api.post(f"{API}/logged-models", json={"experiment_id": "0", "tags": [{"value": "v"}]})
    assert (
        no_key.json()["message"] == f"Missing value for required parameter 'tags[0].key'. {MISSING}"
    )


def test_get_unknown_and_deleted(api: TestClient, model_id: str) -> None:
    unknown = get(api, "m-0000")
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "Logged model with ID 'm-0000' not found.",
    }
    assert ok(api.delete(f"{API}/logged-models/{model_id}")) == {}
    assert get(api, model_id).status_code == 404
    for flag in ("true", "True"):
        assert ok(get(api, model_id, allow_deleted=flag))["model"]["info"]["name"] == "clf"
    assert api.delete(f"{API}/logged-models/{model_id}").status_code == 404


def test_finalize(api: TestClient, model_id: str) -> None:
    url = f"{API}/logged-models/{model_id}"
    done = ok(api.patch(url, json={"model_id": model_id, "status": "LOGGED_MODEL_READY"}))
    assert done["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    assert ok(get(api, model_id))["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    failed = ok(api.patch(url, json={"model_id": model_id, "status": 3}))
    assert failed["model"]["info"]["status"] == "LOGGED_MODEL_UPLOAD_FAILED"
    # The path names the model; a body model id does not redirect the request.
    other = create(api, name="other")["info"]["model_id"]
    ok(api.patch(url, json={"model_id": other, "status": "LOGGED_MODEL_READY"}))
    assert ok(get(api, other))["model"]["info"]["status"] == "LOGGED_MODEL_PENDING"
    missing = api.patch(url, json={"model_id": model_id})
    assert missing.json()["message"] == f"Missing value for required parameter 'status'. {MISSING}"
    for status in ("SHIPPED", "LOGGED_MODEL_STATUS_UNSPECIFIED"):
        response = api.patch(url, json={"model_id": model_id, "status": status})
        assert response.status_code == 400
    gone = api.patch(f"{API}/logged-models/m-gone", json={"status": "LOGGED_MODEL_READY"})
    assert gone.status_code == 404


def test_tags(api: TestClient, model_id: str) -> None:
    url = f"{API}/logged-models/{model_id}/tags"
    versions = '[{"name": "reg", "version": "1"}]'
    body = {
        "tags": [{"key": "a", "value": "1"}, {"key": "mlflow.modelVersions", "value": versions}]
    }
    assert ok(api.patch(url, json=body)) == {}
    info = ok(get(api, model_id))["model"]["info"]
    assert {t["key"]: t["value"] for t in info["tags"]}["a"] == "1"
    assert info["registrations"] == [{"name": "reg", "version": "1"}]
    assert ok(api.delete(f"{url}/a")) == {}
    info = ok(get(api, model_id))["model"]["info"]
    assert [t["key"] for t in info["tags"]] == ["mlflow.modelVersions"]
    again = api.delete(f"{url}/a")
    assert again.status_code == 404
    assert again.json()["message"] == f"No tag with key 'a' found for model with ID '{model_id}'."


def test_params(api: TestClient, model_id: str) -> None:
    url = f"{API}/logged-models/{model_id}/params"
    body = {"model_id": model_id, "params": [{"key": "lr", "value": "0.1"}]}
    assert ok(api.post(url, json=body)) == {}
    assert ok(get(api, model_id))["model"]["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    no_id = api.post(url, json={"params": [{"key": "k", "value": "v"}]})
    assert no_id.status_code == 400
    assert no_id.json()["message"] == f"Missing value for required parameter 'model_id'. {MISSING}"
    changed = api.post(url, json={"model_id": model_id, "params": [{"key": "lr", "value": "9"}]})
    assert changed.status_code == 400
    assert "Changing param values is not allowed" in changed.json()["message"]


def test_search(api: TestClient, run_id: str) -> None:
    ids = {}
    for name, acc in (("a", 0.5), ("b", 0.9), ("c", 0.7)):
        mid = create(api, name=name, source_run_id=run_id)["info"]["model_id"]
        metric = {"key": "acc", "value": acc, "timestamp": 1, "step": 0, "model_id": mid}
        ok(api.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [metric]}))
        ids[name] = mid
    url = f"{API}/logged-models/search"

    def search(**body: Any) -> Any:
        return ok(api.post(url, json={"experiment_ids": ["1"], **body}))

    newest = search()
    assert [m["info"]["name"] for m in newest["models"]] == ["c", "b", "a"]
    assert "next_page_token" not in newest
    best = search(order_by=[{"field_name": "metrics.acc", "ascending": False}], max_results=2)
    assert [m["info"]["name"] for m in best["models"]] == ["b", "c"]
    rest = search(
        order_by=[{"field_name": "metrics.acc", "ascending": False}],
        max_results=2,
        page_token=best["next_page_token"],
    )
    assert [m["info"]["name"] for m in rest["models"]] == ["a"]
    assert "next_page_token" not in rest
    found = search(filter="name = 'b' AND metrics.acc > 0.8")["models"]
    assert [m["info"]["model_id"] for m in found] == [ids["b"]]
    (point,) = found[0]["data"]["metrics"]
    assert point == {
        "key": "acc",
        "value": 0.9,
        "timestamp": 1,
        "step": 0,
        "model_id": ids["b"],
        "run_id": run_id,
    }
    assert search(filter="name = 'zzz'") == {}
    assert ok(api.post(url, json={"experiment_ids": ["2"]})) == {}
    bad = api.post(url, json={"experiment_ids": ["1"], "filter": "name = zzz"})
    assert (bad.status_code, bad.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    no_name = api.post(url, json={"experiment_ids": ["1"], "datasets": [{"dataset_digest": "x"}]})
    assert no_name.status_code == 400


def test_metrics_with_model_id_and_dataset(api: TestClient, run_id: str, model_id: str) -> None:
    body = {
        "run_id": run_id,
        "key": "f1",
        "value": "NaN",
        "timestamp": 5,
        "step": 2,
        "model_id": model_id,
        "dataset_name": "val",
        "dataset_digest": "d1",
    }
    assert ok(api.post(f"{API}/runs/log-metric", json=body)) == {}
    batch = {"key": "f1", "value": 1, "timestamp": 6, "step": 3, "model_id": model_id}
    ok(api.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [batch]}))
    metrics = ok(get(api, model_id))["model"]["data"]["metrics"]
    common = {"key": "f1", "model_id": model_id, "run_id": run_id}
    assert metrics == [
        {
            **common,
            "value": "NaN",
            "timestamp": 5,
            "step": 2,
            "dataset_name": "val",
            "dataset_digest": "d1",
        },
        {**common, "value": 1.0, "timestamp": 6, "step": 3},
    ]
    ghost = {"key": "x", "value": 1.0, "timestamp": 1, "model_id": "m-ghost"}
    response = api.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [ghost]})
    assert response.status_code == 404


def test_run_outputs_and_model_inputs(api: TestClient, run_id: str, model_id: str) -> None:
    url = f"{API}/runs/outputs"
    body = {"run_id": run_id, "models": [{"model_id": model_id, "step": 3}]}
    assert ok(api.post(url, json=body)) == {}
    used = create(api, name="used")["info"]["model_id"]
    inputs = {"run_id": run_id, "models": [{"model_id": used}]}
    assert ok(api.post(f"{API}/runs/log-inputs", json=inputs)) == {}
    run = ok(api.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    assert run["outputs"] == {"model_outputs": [{"model_id": model_id, "step": 3}]}
    assert run["inputs"] == {"model_inputs": [{"model_id": used}]}
    searched = ok(api.post(f"{API}/runs/search", json={"experiment_ids": ["1"]}))["runs"]
    assert searched[0]["outputs"] == run["outputs"]
    empty = api.post(url, json={"run_id": run_id, "models": []})
    assert empty.json()["message"] == f"Missing value for required parameter 'models'. {MISSING}"
    no_id = api.post(url, json={"run_id": run_id, "models": [{"step": 1}]})
    assert "'models[0].model_id'" in no_id.json()["message"]
    ghost = api.post(url, json={"run_id": run_id, "models": [{"model_id": "m-ghost", "step": 0}]})
    assert ghost.status_code == 404


def test_runs_without_models_have_no_outputs(api: TestClient, run_id: str) -> None:
    run = ok(api.get(f"{API}/runs/get", params={"run_id": run_id}))["run"]
    assert "outputs" not in run
    assert run["inputs"] == {}


def test_artifacts(api: TestClient, model_id: str) -> None:
    root = f"mlflow-artifacts:/1/models/{model_id}/artifacts"
    proxy = f"/api/2.0/mlflow-artifacts/artifacts/1/models/{model_id}/artifacts"
    assert api.put(f"{proxy}/MLmodel", content=b"flavors: {}\n").status_code == 200
    assert api.put(f"{proxy}/data/model.pkl", content=b"\x00\x01").status_code == 200
    url = f"{API}/logged-models/{model_id}/artifacts/directories"
    assert ok(api.get(url)) == {
        "root_uri": root,
        "files": [
            {"path": "MLmodel", "is_dir": False, "file_size": 12},
            {"path": "data", "is_dir": True},
        ],
    }
    sub = ok(api.get(url, params={"artifact_directory_path": "data"}))
    assert sub["files"] == [{"path": "data/model.pkl", "is_dir": False, "file_size": 2}]
    assert ok(api.get(url, params={"artifact_directory_path": "nothing"})) == {"root_uri": root}
    traversal = api.get(url, params={"artifact_directory_path": "../../x"})
    assert traversal.status_code == 400

    files = f"/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"
    raw = api.get(files, params={"artifact_file_path": "data/model.pkl"})
    assert (raw.status_code, raw.content) == (200, b"\x00\x01")
    assert "attachment" in raw.headers["content-disposition"]
    assert api.get(files, params={"artifact_file_path": "missing.txt"}).status_code == 404
    assert api.get(files).status_code == 400
    assert api.get(f"{API}/logged-models/m-none/artifacts/directories").status_code == 404


def test_routing_of_model_paths(api: TestClient, model_id: str) -> None:
    for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/2.0/preview/mlflow"):
        assert ok(api.get(f"{prefix}/logged-models/{model_id}"))["model"]["info"]["name"] == "clf"
    wrong_method = api.post(f"{API}/logged-models/{model_id}", json={})
    assert wrong_method.status_code == 405
    assert api.get(f"{API}/logged-models/{model_id}/nothing").status_code == 404
    assert api.get(f"{API}/logged-models/{model_id}/tags/a/b").status_code == 404
