"""The registry over REST: the requests RestStore sends (recorded on a transport), then every
registry method end to end against a real tracking server process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from runyard.entities import ModelVersionTag, RegisteredModelTag
from runyard.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from runyard.store.http_session import HttpConfig, HttpSession
from runyard.store.rest import RestStore, api_base_url
from tests.live_server import TrackingServer

FAST = HttpConfig(max_retries=2, backoff_factor=0.1, backoff_jitter=0.0)
VERSION_DOC = {"name": "m", "version": "1", "current_stage": "None", "status": "READY"}
MODEL_DOC = {"name": "m", "creation_timestamp": 1, "last_updated_timestamp": 1}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- the wire, recorded ----------------------------------------------------------------------
def test_methods_paths_and_bodies_follow_mlflow() -> None:
    calls: list[tuple[str, str, dict[str, list[str]], Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        query: dict[str, list[str]] = {}
        for key, value in request.url.params.multi_items():
            query.setdefault(key, []).append(value)
        body = orjson.loads(request.content) if request.content else None
        calls.append((request.method, path, query, body))
        if path.endswith("/history"):
            return httpx.Response(200, json={"events": [{"timestamp": 5, "action": "a"}]})
        if "registered-models/" in path and not path.endswith("alias"):
            return httpx.Response(200, json={"registered_model": MODEL_DOC})
        return httpx.Response(200, json={"model_version": VERSION_DOC})

    uri = "http://tracking.test/prefix"
    session = HttpSession(api_base_url(uri), FAST, transport=httpx.MockTransport(handler))
    store = RestStore(uri, session=session)
    store.search_registered_models("name LIKE 'a%'", 5, ["name DESC", "timestamp"], "tok")
    store.search_model_versions("name = 'm'", 10000)
    store.get_latest_versions("m", ["Staging"])
    store.delete_registered_model("m")
    store.delete_model_version("m", 3, user_id="ann")
    store.delete_registered_model_alias("m", "champ")
    store.update_model_version("m", 1, "d")
    store.transition_model_version_stage("m", 2, "Production", True)
    store.transition_model_version_stage("m", 2, "Production", False, evidence={"x": 1},
                                         action="promote")  # fmt: skip
    history = store.get_registered_model_history("m", 10, "tok")
    assert [(e.timestamp, e.action, e.name) for e in history] == [(5, "a", "")]
    base = "/prefix/api/2.0/mlflow/"
    assert [(method, path.removeprefix(base)) for method, path, _, _ in calls] == [
        ("GET", "registered-models/search"),
        ("GET", "model-versions/search"),
        ("POST", "registered-models/get-latest-versions"),
        ("DELETE", "registered-models/delete"),
        ("DELETE", "model-versions/delete"),
        ("DELETE", "registered-models/alias"),
        ("PATCH", "model-versions/update"),
        ("POST", "model-versions/transition-stage"),
        ("POST", "model-versions/transition-stage"),
        ("GET", "/prefix/api/2.0/runyard/registered-models/history"),
    ]
    assert calls[0][2] == {
        "filter": ["name LIKE 'a%'"],
        "max_results": ["5"],
        "order_by": ["name DESC", "timestamp"],
        "page_token": ["tok"],
    }
    assert [c[3] for c in calls[2:8]] == [
        {"name": "m", "stages": ["Staging"]},
        {"name": "m"},
        {"name": "m", "version": "3", "user_id": "ann"},
        {"name": "m", "alias": "champ"},
        {"name": "m", "version": "1", "description": "d"},
        {"name": "m", "version": "2", "stage": "Production", "archive_existing_versions": True},
    ]
    assert calls[8][3]["action"] == "promote"
    assert calls[8][3]["evidence"] == {"x": 1}
    assert calls[9][2] == {"name": ["m"], "max_results": ["10"], "page_token": ["tok"]}


# -- a real server ---------------------------------------------------------------------------
@pytest.fixture
def rest(tracking_server: TrackingServer) -> Iterator[RestStore]:
    store = RestStore(tracking_server.url, FAST)
    yield store
    store.close()


@pytest.mark.slow
def test_registered_models_round_trip(rest: RestStore) -> None:
    name = unique("model")
    created = rest.create_registered_model(name, [RegisteredModelTag("team", "a")], "first")
    assert (created.name, created.tags, created.description) == (name, {"team": "a"}, "first")
    with pytest.raises(ResourceAlreadyExists):
        rest.create_registered_model(name)
    rest.set_registered_model_tag(name, RegisteredModelTag("stage", "dev"))
    rest.delete_registered_model_tag(name, "team")
    updated = rest.update_registered_model(name, "second")
    assert (updated.description, updated.tags) == ("second", {"stage": "dev"})
    renamed = unique("renamed")
    assert rest.rename_registered_model(name, renamed).name == renamed
    assert rest.get_registered_model(renamed).description == "second"
    found = rest.search_registered_models(f"name = '{renamed}'")
    assert [m.name for m in found] == [renamed]
    assert found.token is None
    rest.delete_registered_model(renamed)
    with pytest.raises(ResourceDoesNotExist):
        rest.get_registered_model(renamed)


@pytest.mark.slow
def test_model_versions_round_trip(rest: RestStore) -> None:
    name = unique("model")
    rest.create_registered_model(name)
    tags = [ModelVersionTag("k", "v")]
    first = rest.create_model_version(name, "s3://bucket/one", "run1", tags, "http://ui", "d")
    assert (first.version, first.status, first.current_stage) == ("1", "READY", "None")
    assert (first.tags, first.run_id, first.run_link, first.description) == (
        {"k": "v"},
        "run1",
        "http://ui",
        "d",
    )
    second = rest.create_model_version(name, f"models:/{name}/1")
    assert rest.get_model_version_download_uri(name, second.version) == "s3://bucket/one"
    assert rest.get_model_version(name, 1) == first
    assert rest.update_model_version(name, "1", "better").description == "better"
    rest.set_model_version_tag(name, 1, ModelVersionTag("k2", "v2"))
    rest.delete_model_version_tag(name, 1, "k")
    assert rest.get_model_version(name, 1).tags == {"k2": "v2"}
    staged = rest.transition_model_version_stage(name, 1, "staging", False)
    assert staged.current_stage == "Staging"
    rest.transition_model_version_stage(name, 2, "Staging", True)
    assert rest.get_model_version(name, 1).current_stage == "Archived"
    latest = rest.get_latest_versions(name, ["Staging"])
    assert [v.version for v in latest] == ["2"]
    assert len(rest.get_registered_model(name).latest_versions) == 2
    page = rest.search_model_versions(f"name = '{name}'", max_results=1)
    assert [v.version for v in page] == ["2"]
    assert page.token is not None
    rest_page = rest.search_model_versions(f"name = '{name}'", 1, None, page.token)
    assert [v.version for v in rest_page] == ["1"]
    assert rest_page.token is None
    rest.delete_model_version(name, 2)
    with pytest.raises(ResourceDoesNotExist):
        rest.get_model_version(name, 2)
    assert rest.create_model_version(name, "s3://bucket/three").version == "3"
    with pytest.raises(InvalidParameterValue, match="must be an integer"):
        rest.get_model_version(name, "x")


@pytest.mark.slow
def test_aliases_and_history_round_trip(rest: RestStore, tracking_server: TrackingServer) -> None:
    name = unique("model")
    rest.create_registered_model(name)
    rest.create_model_version(name, "s3://a")
    rest.create_model_version(name, "s3://b")
    rest.set_registered_model_alias(name, "champion", 1, user_id="ann")
    rest.set_registered_model_alias(name, "champion", "2", user_id="bob")
    assert rest.get_model_version_by_alias(name, "champion").version == "2"
    assert rest.get_registered_model(name).aliases == {"champion": "2"}
    rest.delete_registered_model_alias(name, "champion")
    with pytest.raises(InvalidParameterValue, match="alias champion not found"):
        rest.get_model_version_by_alias(name, "champion")
    with pytest.raises(InvalidParameterValue, match="reserved"):
        rest.set_registered_model_alias(name, "latest", 1)
    if tracking_server.kind != "runyard":
        return  # MLflow's server has no history; the rest above is its behaviour too
    evidence = {"run_id": "r", "requirements": []}
    rest.transition_model_version_stage(
        name, 2, "Production", False, evidence=evidence, action="promote"
    )
    events = rest.get_registered_model_history(name)
    assert [(e.action, e.version, e.alias, e.previous_version) for e in events] == [
        ("create_version", "1", None, None),
        ("create_version", "2", None, None),
        ("set_alias", "1", "champion", None),
        ("set_alias", "2", "champion", "1"),
        ("delete_alias", "2", "champion", None),
        ("promote", "2", None, None),
    ]
    assert events[-1].evidence == evidence
    assert [e.user_id for e in events[2:4]] == ["ann", "bob"]
    assert {e.name for e in events} == {name}
    first = rest.get_registered_model_history(name, max_results=4)
    assert len(first) == 4
    assert first.token is not None
    second = rest.get_registered_model_history(name, 4, first.token)
    assert [e.action for e in second] == ["delete_alias", "promote"]
    assert second.token is None
