"""Registry endpoints of the server (spec §2.8): methods, exact JSON shapes, error codes and
statuses, the cheat sheet's register-model call and runyard's history endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.server.conftest import make_client

API = "/api/2.0/mlflow"
HISTORY = "/api/2.0/runyard/registered-models/history"
PROMPT = "mlflow.prompt.is_prompt"


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


def error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code
    return str(body["message"])


def create_model(api: TestClient, name: str, **extra: Any) -> dict[str, Any]:
    return ok(api.post(f"{API}/registered-models/create", json={"name": name, **extra}))


def create_version(api: TestClient, name: str, source: str = "s3://b/m", **extra: Any) -> str:
    body = {"name": name, "source": source, **extra}
    doc = ok(api.post(f"{API}/model-versions/create", json=body))
    return str(doc["model_version"]["version"])


def delete(api: TestClient, path: str, body: dict[str, Any]) -> Any:
    return api.request("DELETE", f"{API}/{path}", json=body)


# -- registered models -----------------------------------------------------------------------
def test_create_get_shapes(api: TestClient) -> None:
    doc = create_model(api, "m1", tags=[{"key": "team", "value": "risk"}])
    model = doc["registered_model"]
    # As mlflow server 3.17 answers: no description when none was given.
    assert set(model) == {"name", "creation_timestamp", "last_updated_timestamp", "tags"}
    assert (model["name"], model["tags"]) == ("m1", [{"key": "team", "value": "risk"}])
    assert isinstance(model["creation_timestamp"], int)
    assert ok(api.get(f"{API}/registered-models/get", params={"name": "m1"})) == doc


def test_create_errors(api: TestClient) -> None:
    create_model(api, "m1")
    message = error(api.post(f"{API}/registered-models/create", json={"name": "m1"}), 400,
                    "RESOURCE_ALREADY_EXISTS")  # fmt: skip
    assert message == "Registered Model (name=m1) already exists."
    message = error(api.post(f"{API}/registered-models/create", json={}), 400,
                    "INVALID_PARAMETER_VALUE")  # fmt: skip
    assert message.startswith("Missing value for required parameter 'name'.")
    for bad in ("a/b", "a:b"):
        response = api.post(f"{API}/registered-models/create", json={"name": bad})
        error(response, 400, "INVALID_PARAMETER_VALUE")
    response = api.get(f"{API}/registered-models/get", params={"name": "nope"})
    assert error(response, 404, "RESOURCE_DOES_NOT_EXIST") == (
        "Registered Model with name=nope not found"
    )


def test_rename_update_delete_and_tags(api: TestClient) -> None:
    create_model(api, "m1")
    create_version(api, "m1")
    doc = ok(api.post(f"{API}/registered-models/rename", json={"name": "m1", "new_name": "m2"}))
    assert doc["registered_model"]["name"] == "m2"
    assert doc["registered_model"]["latest_versions"][0]["name"] == "m2"
    doc = ok(api.patch(f"{API}/registered-models/update", json={"name": "m2", "description": "d"}))
    assert doc["registered_model"]["description"] == "d"
    doc = ok(api.patch(f"{API}/registered-models/update", json={"name": "m2"}))
    assert "description" not in doc["registered_model"]  # cleared, as MLflow does
    ok(api.post(f"{API}/registered-models/set-tag", json={"name": "m2", "key": "k"}))
    got = ok(api.get(f"{API}/registered-models/get", params={"name": "m2"}))
    assert got["registered_model"]["tags"] == [{"key": "k", "value": ""}]
    tag = {"name": "m2", "key": "k", "value": "v"}
    assert ok(api.post(f"{API}/registered-models/set-tag", json=tag)) == {}
    got = ok(api.get(f"{API}/registered-models/get", params={"name": "m2"}))
    assert got["registered_model"]["tags"] == [{"key": "k", "value": "v"}]
    assert ok(delete(api, "registered-models/delete-tag", {"name": "m2", "key": "k"})) == {}
    got = ok(api.get(f"{API}/registered-models/get", params={"name": "m2"}))
    assert "tags" not in got["registered_model"]
    assert ok(delete(api, "registered-models/delete", {"name": "m2"})) == {}
    error(api.get(f"{API}/registered-models/get", params={"name": "m2"}), 404,
          "RESOURCE_DOES_NOT_EXIST")  # fmt: skip


def test_deletes_read_the_json_body_not_the_query(api: TestClient) -> None:
    create_model(api, "m1")
    response = api.request("DELETE", f"{API}/registered-models/delete?name=m1")
    assert "Missing value for required parameter 'name'" in error(
        response, 400, "INVALID_PARAMETER_VALUE"
    )


def test_methods_are_mlflows(api: TestClient) -> None:
    create_model(api, "m1")
    assert api.post(f"{API}/registered-models/search", json={}).status_code == 405
    assert api.post(f"{API}/model-versions/search", json={}).status_code == 405
    assert api.post(f"{API}/registered-models/update", json={"name": "m1"}).status_code == 405
    assert api.get(f"{API}/registered-models/delete", params={"name": "m1"}).status_code == 405
    both = [
        api.post(f"{API}/registered-models/get-latest-versions", json={"name": "m1"}),
        api.get(f"{API}/registered-models/get-latest-versions", params={"name": "m1"}),
    ]
    assert [r.status_code for r in both] == [200, 200]


# -- model versions --------------------------------------------------------------------------
def test_fresh_version_shape(api: TestClient) -> None:
    create_model(api, "m1")
    body = {"name": "m1", "source": "runs:/abc/model", "run_id": "abc"}
    version = ok(api.post(f"{API}/model-versions/create", json=body))["model_version"]
    assert set(version) == {
        "name",
        "version",
        "creation_timestamp",
        "last_updated_timestamp",
        "current_stage",
        "description",
        "source",
        "run_id",
        "status",
        "run_link",
    }
    assert version["version"] == "1"
    assert (version["current_stage"], version["status"]) == ("None", "READY")
    assert (version["description"], version["run_link"]) == ("", "")
    got = ok(api.get(f"{API}/model-versions/get", params={"name": "m1", "version": "1"}))
    assert got == {"model_version": version}
    # Without a run, MLflow's server answers an empty run_id.
    bare = ok(api.post(f"{API}/model-versions/create", json={"name": "m1", "source": "s3://b/x"}))
    assert bare["model_version"]["run_id"] == ""


def test_version_errors(api: TestClient) -> None:
    create_model(api, "m1")
    create_version(api, "m1")
    response = api.get(f"{API}/model-versions/get", params={"name": "m1", "version": "x"})
    message = error(response, 400, "INVALID_PARAMETER_VALUE")
    assert message == "Parameter 'version' must be an integer, got 'x'."
    response = api.get(f"{API}/model-versions/get", params={"name": "m1", "version": "9"})
    assert error(response, 404, "RESOURCE_DOES_NOT_EXIST") == (
        "Model Version (name=m1, version=9) not found"
    )
    response = api.post(f"{API}/model-versions/create", json={"name": "nope", "source": "s3://x"})
    error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_update_tags_uri_and_delete_of_a_version(api: TestClient) -> None:
    create_model(api, "m1")
    create_version(api, "m1", "s3://bucket/model")
    ref = {"name": "m1", "version": "1"}
    doc = ok(api.patch(f"{API}/model-versions/update", json={**ref, "description": "d"}))
    assert doc["model_version"]["description"] == "d"
    assert (
        ok(api.post(f"{API}/model-versions/set-tag", json={**ref, "key": "k", "value": "v"})) == {}
    )
    got = ok(api.get(f"{API}/model-versions/get", params=ref))["model_version"]
    assert got["tags"] == [{"key": "k", "value": "v"}]
    assert ok(delete(api, "model-versions/delete-tag", {**ref, "key": "k"})) == {}
    ok(api.post(f"{API}/model-versions/set-tag", json={**ref, "key": "empty", "value": ""}))
    got = ok(api.get(f"{API}/model-versions/get", params=ref))["model_version"]
    assert got["tags"] == [{"key": "empty", "value": ""}]
    cleared = ok(api.patch(f"{API}/model-versions/update", json=ref))["model_version"]
    assert "description" not in cleared
    uri = ok(api.get(f"{API}/model-versions/get-download-uri", params=ref))
    assert uri == {"artifact_uri": "s3://bucket/model"}
    assert ok(delete(api, "model-versions/delete", ref)) == {}
    error(api.get(f"{API}/model-versions/get", params=ref), 404, "RESOURCE_DOES_NOT_EXIST")
    assert create_version(api, "m1") == "2"


def test_transition_stage(api: TestClient) -> None:
    create_model(api, "m1")
    for _ in range(2):
        create_version(api, "m1")
    move = {"name": "m1", "stage": "production", "archive_existing_versions": False}
    doc = ok(api.post(f"{API}/model-versions/transition-stage", json={**move, "version": "1"}))
    assert doc["model_version"]["current_stage"] == "Production"
    move["archive_existing_versions"] = True
    ok(api.post(f"{API}/model-versions/transition-stage", json={**move, "version": 2}))
    got = ok(api.get(f"{API}/model-versions/get", params={"name": "m1", "version": "1"}))
    assert got["model_version"]["current_stage"] == "Archived"
    bad = {**move, "version": "1", "stage": "Bogus"}
    message = error(api.post(f"{API}/model-versions/transition-stage", json=bad), 400,
                    "INVALID_PARAMETER_VALUE")  # fmt: skip
    assert message == (
        "Invalid Model Version stage: Bogus. Value must be one of None, Staging, Production, "
        "Archived."
    )
    missing = {"name": "m1", "version": "1", "stage": "Staging"}
    response = api.post(f"{API}/model-versions/transition-stage", json=missing)
    assert "archive_existing_versions" in error(response, 400, "INVALID_PARAMETER_VALUE")


def test_get_latest_versions(api: TestClient) -> None:
    create_model(api, "m1")
    for _ in range(3):
        create_version(api, "m1")
    move = {"name": "m1", "version": "2", "stage": "Staging", "archive_existing_versions": False}
    ok(api.post(f"{API}/model-versions/transition-stage", json=move))
    url = f"{API}/registered-models/get-latest-versions"
    every = ok(api.post(url, json={"name": "m1"}))["model_versions"]
    assert sorted((v["current_stage"], v["version"]) for v in every) == [
        ("None", "3"),
        ("Staging", "2"),
    ]
    staging = ok(api.get(url, params={"name": "m1", "stages": ["Staging"]}))["model_versions"]
    assert [v["version"] for v in staging] == ["2"]
    assert ok(api.post(url, json={"name": "m1", "stages": ["Production"]})) == {}
    model = ok(api.get(f"{API}/registered-models/get", params={"name": "m1"}))
    assert len(model["registered_model"]["latest_versions"]) == 2


# -- aliases ---------------------------------------------------------------------------------
def test_aliases(api: TestClient) -> None:
    create_model(api, "m1")
    create_version(api, "m1")
    create_version(api, "m1")
    url = f"{API}/registered-models/alias"
    assert ok(api.post(url, json={"name": "m1", "alias": "champ", "version": "1"})) == {}
    assert ok(api.post(url, json={"name": "m1", "alias": "champ", "version": "2"})) == {}
    got = ok(api.get(url, params={"name": "m1", "alias": "champ"}))["model_version"]
    assert (got["version"], got["aliases"]) == ("2", ["champ"])
    latest = ok(api.get(url, params={"name": "m1", "alias": "Latest"}))["model_version"]
    assert latest["version"] == "2"
    model = ok(api.get(f"{API}/registered-models/get", params={"name": "m1"}))["registered_model"]
    assert model["aliases"] == [{"alias": "champ", "version": "2"}]
    assert ok(api.request("DELETE", url, json={"name": "m1", "alias": "champ"})) == {}
    message = error(api.get(url, params={"name": "m1", "alias": "champ"}), 400,
                    "INVALID_PARAMETER_VALUE")  # fmt: skip
    assert message == "Registered model alias champ not found."
    for alias in ("latest", "v3", "bad alias"):
        response = api.post(url, json={"name": "m1", "alias": alias, "version": "1"})
        error(response, 400, "INVALID_PARAMETER_VALUE")
    response = api.post(url, json={"name": "m1", "alias": "a", "version": "7"})
    error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    response = api.post(url, json={"name": "m1", "alias": "a"})
    assert "'version'" in error(response, 400, "INVALID_PARAMETER_VALUE")


# -- searches --------------------------------------------------------------------------------
def test_search_registered_models_as_the_client_sends_it(api: TestClient) -> None:
    for name in ("b", "a", "c"):
        create_model(api, name)
    create_model(api, "p", tags=[{"key": PROMPT, "value": "true"}])
    url = f"{API}/registered-models/search"
    params = {"filter": f"tag.`{PROMPT}` != 'true'", "max_results": "2"}
    first = ok(api.get(url, params=params))
    assert [m["name"] for m in first["registered_models"]] == ["a", "b"]
    second = ok(api.get(url, params={**params, "page_token": first["next_page_token"]}))
    assert [m["name"] for m in second["registered_models"]] == ["c"]
    assert "next_page_token" not in second
    ordered = ok(api.get(url, params={"order_by": ["name DESC"]}))
    assert [m["name"] for m in ordered["registered_models"]] == ["c", "b", "a"]
    assert ok(api.get(url, params={"filter": "name = 'zzz'"})) == {}
    assert len(ok(api.get(url))["registered_models"]) == 3
    error(api.get(url, params={"max_results": "1001"}), 400, "INVALID_PARAMETER_VALUE")
    error(api.get(url, params={"filter": "name = 'a' OR name = 'b'"}), 400,
          "INVALID_PARAMETER_VALUE")  # fmt: skip


def test_search_model_versions(api: TestClient) -> None:
    create_model(api, "a")
    create_model(api, "b")
    for name in ("a", "a", "b"):
        create_version(api, name, run_id="r-" + name)
    url = f"{API}/model-versions/search"
    doc = ok(api.get(url, params={"filter": "name='a'", "max_results": "10000"}))
    assert [(v["name"], v["version"]) for v in doc["model_versions"]] == [("a", "2"), ("a", "1")]
    doc = ok(api.get(url, params={"filter": "run_id IN ('r-b')"}))
    assert [v["name"] for v in doc["model_versions"]] == ["b"]
    first = ok(api.get(url, params={"max_results": "2", "order_by": ["version_number ASC"]}))
    assert len(first["model_versions"]) == 2
    rest = ok(api.get(url, params={"max_results": "2", "page_token": first["next_page_token"],
                                   "order_by": ["version_number ASC"]}))  # fmt: skip
    assert len(rest["model_versions"]) == 1
    assert "next_page_token" not in rest
    error(api.get(url, params={"max_results": "200001"}), 400, "INVALID_PARAMETER_VALUE")


# -- register-model and history --------------------------------------------------------------
@pytest.mark.parametrize("prefix", ["/api/2.0/mlflow", "/api/2.0/preview/mlflow"])
def test_register_model_as_in_the_cheat_sheet(api: TestClient, prefix: str) -> None:
    body = {"name": "MyModel", "source": "runs:/0123abcd/model"}
    first = ok(api.post(f"{prefix}/registry/register-model", json=body))["model_version"]
    assert (first["name"], first["version"], first["run_id"]) == ("MyModel", "1", "0123abcd")
    second = ok(api.post(f"{prefix}/registry/register-model", json=body))["model_version"]
    assert second["version"] == "2"


def test_history_endpoint(api: TestClient) -> None:
    create_model(api, "m1")
    create_version(api, "m1")
    url = f"{API}/registered-models/alias"
    ok(api.post(url, json={"name": "m1", "alias": "champ", "version": "1", "user_id": "ann"}))
    evidence = {"run_id": "r", "requirements": [{"condition": "metrics.auc > 0.9", "passed": True}]}
    move = {
        "name": "m1",
        "version": "1",
        "stage": "Production",
        "archive_existing_versions": False,
        "action": "promote",
        "evidence": evidence,
    }
    ok(api.post(f"{API}/model-versions/transition-stage", json=move))
    doc = ok(api.get(HISTORY, params={"name": "m1"}))
    events = doc["events"]
    assert "next_page_token" not in doc
    assert [e["action"] for e in events] == ["create_version", "set_alias", "promote"]
    assert set(events[0]) == {"timestamp", "action", "name", "version", "to_stage"}
    assert events[1] == {**events[1], "alias": "champ", "version": "1", "user_id": "ann"}
    assert (events[2]["from_stage"], events[2]["to_stage"], events[2]["evidence"]) == (
        "None",
        "Production",
        evidence,
    )
    page = ok(api.get(HISTORY, params={"name": "m1", "max_results": "2"}))
    assert len(page["events"]) == 2
    rest = ok(api.get(HISTORY, params={"name": "m1", "page_token": page["next_page_token"]}))
    assert [e["action"] for e in rest["events"]] == ["promote"]
    assert ok(api.get("/ajax-api/2.0/runyard/registered-models/history", params={"name": "m1"}))
    error(api.get(HISTORY, params={"name": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert api.get(f"{API}/registered-models/history", params={"name": "m1"}).status_code == 404
    bad = {**move, "action": "delete_version"}
    error(api.post(f"{API}/model-versions/transition-stage", json=bad), 400,
          "INVALID_PARAMETER_VALUE")  # fmt: skip


def test_registry_endpoints_are_in_openapi(api: TestClient) -> None:
    paths = ok(api.get("/openapi.json"))["paths"]
    assert set(paths[f"{API}/registered-models/alias"]) == {"get", "post", "delete"}
    assert set(paths[f"{API}/registered-models/get-latest-versions"]) == {"get", "post"}
    assert set(paths[HISTORY]) == {"get"}


def test_registry_store_uri_keeps_the_registry_in_its_own_database(tmp_path: Path) -> None:
    import sqlite3

    registry_db = tmp_path / "registry.db"
    with make_client(tmp_path, registry_store_uri=f"sqlite:///{registry_db}") as client:
        reply = client.post("/api/2.0/mlflow/registered-models/create", json={"name": "apart"})
        assert reply.status_code == 200, reply.text
        found = client.get("/api/2.0/mlflow/registered-models/get", params={"name": "apart"})
        assert found.json()["registered_model"]["name"] == "apart"
    with sqlite3.connect(registry_db) as conn:
        assert conn.execute("SELECT name FROM registered_models").fetchall() == [("apart",)]
    with sqlite3.connect(tmp_path / "server.db") as conn:
        assert conn.execute("SELECT name FROM registered_models").fetchall() == []
