"""The model registry of the SQL store (SQLite, and PostgreSQL when one is given): models,
versions, stages, aliases, tags, searches, storage locations and the history."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, insert

from runyard.entities import ModelVersionTag, RegisteredModelTag
from runyard.entities.model_registry import get_canonical_stage
from runyard.errors import (
    InvalidFilter,
    InvalidParameterValue,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from runyard.store.sql import schema as t
from runyard.store.sql.engine import read_engine
from runyard.store.sql.store import SqlTrackingStore

PROMPT = "mlflow.prompt.is_prompt"


def tick() -> None:
    """Let the millisecond clock move, so a write's timestamp is later than the last one."""
    time.sleep(0.003)


def make_model(store: SqlTrackingStore, name: str = "m", versions: int = 0) -> None:
    store.create_registered_model(name)
    for i in range(versions):
        store.create_model_version(name, f"s3://bucket/{name}/{i + 1}", run_id=f"run{i + 1}")


# -- registered models -----------------------------------------------------------------------
def test_create_get_and_duplicate(store: SqlTrackingStore) -> None:
    tags = [RegisteredModelTag("team", "fraud"), RegisteredModelTag("tier", "1")]
    created = store.create_registered_model("m1", tags, "first model")
    assert (created.name, created.description, created.tags) == (
        "m1",
        "first model",
        {"team": "fraud", "tier": "1"},
    )
    assert created.creation_timestamp == created.last_updated_timestamp
    got = store.get_registered_model("m1")
    assert got == created
    with pytest.raises(
        ResourceAlreadyExists, match=r"^Registered Model \(name=m1\) already exists\.$"
    ):
        store.create_registered_model("m1")


@pytest.mark.parametrize("name", ["", "a/b", "a:b", "."])
def test_invalid_model_names(store: SqlTrackingStore, name: str) -> None:
    with pytest.raises(InvalidParameterValue):
        store.create_registered_model(name)


def test_unknown_model_is_resource_does_not_exist(store: SqlTrackingStore) -> None:
    message = r"^Registered Model with name=nope not found$"
    for call in (
        lambda: store.get_registered_model("nope"),
        lambda: store.update_registered_model("nope", "d"),
        lambda: store.rename_registered_model("nope", "other"),
        lambda: store.delete_registered_model("nope"),
        lambda: store.get_latest_versions("nope"),
        lambda: store.create_model_version("nope", "s3://x"),
        lambda: store.set_registered_model_tag("nope", RegisteredModelTag("k", "v")),
        lambda: store.get_registered_model_history("nope"),
    ):
        with pytest.raises(ResourceDoesNotExist, match=message):
            call()


def test_update_description_bumps_last_updated(store: SqlTrackingStore) -> None:
    created = store.create_registered_model("m")
    tick()
    updated = store.update_registered_model("m", "new words")
    assert updated.description == "new words"
    assert updated.last_updated_timestamp is not None
    assert created.last_updated_timestamp is not None
    assert updated.last_updated_timestamp > created.last_updated_timestamp
    assert updated.creation_timestamp == created.creation_timestamp


def test_tags_upsert_and_delete(store: SqlTrackingStore) -> None:
    store.create_registered_model("m")
    before = store.get_registered_model("m").last_updated_timestamp
    tick()
    store.set_registered_model_tag("m", RegisteredModelTag("k", "v1"))
    store.set_registered_model_tag("m", RegisteredModelTag("k", "v2"))
    got = store.get_registered_model("m")
    assert got.tags == {"k": "v2"}
    assert got.last_updated_timestamp is not None
    assert before is not None
    assert got.last_updated_timestamp > before
    store.delete_registered_model_tag("m", "k")
    store.delete_registered_model_tag("m", "k")  # gone already: not an error, as in MLflow
    assert store.get_registered_model("m").tags == {}
    with pytest.raises(InvalidParameterValue):
        store.set_registered_model_tag("m", RegisteredModelTag("bad//key", "v"))
    with pytest.raises(InvalidParameterValue, match="limit is 100000"):
        store.set_registered_model_tag("m", RegisteredModelTag("k", "x" * 100_001))


def test_rename_keeps_versions_aliases_and_history(store: SqlTrackingStore) -> None:
    make_model(store, "old", versions=2)
    store.set_registered_model_alias("old", "champion", 2)
    renamed = store.rename_registered_model("old", "new")
    assert renamed.name == "new"
    assert renamed.aliases == {"champion": "2"}
    assert [v.name for v in renamed.latest_versions] == ["new"]
    assert store.get_model_version("new", 1).source == "s3://bucket/old/1"
    assert [e.name for e in store.get_registered_model_history("new")] == ["new"] * 3
    with pytest.raises(ResourceDoesNotExist):
        store.get_registered_model("old")
    store.create_registered_model("other")
    with pytest.raises(ResourceAlreadyExists, match=r"^Registered Model \(name=other\) already"):
        store.rename_registered_model("new", "other")
    with pytest.raises(InvalidParameterValue):
        store.rename_registered_model("new", "a/b")


def test_delete_model_removes_everything_and_frees_the_name(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=2)
    store.set_registered_model_alias("m", "a", 1)
    store.set_model_version_tag("m", 1, ModelVersionTag("k", "v"))
    store.delete_registered_model("m")
    with pytest.raises(ResourceDoesNotExist):
        store.get_model_version("m", 1)
    assert list(store.search_model_versions("name = 'm'")) == []
    with store.engine.connect() as conn:
        for table in (t.model_versions, t.model_version_tags, t.registered_model_aliases):
            assert conn.execute(table.select()).all() == []
    store.create_registered_model("m")
    assert store.create_model_version("m", "s3://x").version == "1"


# -- model versions --------------------------------------------------------------------------
def test_versions_count_up_and_are_never_reused(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=3)
    store.delete_model_version("m", 3)
    store.delete_model_version("m", "2")
    created = store.create_model_version("m", "s3://again")
    assert created.version == "4"
    versions = store.search_model_versions("name = 'm'", order_by=["version_number ASC"])
    assert [v.version for v in versions] == ["1", "4"]


def test_fresh_version_fields_and_bumps_the_model(store: SqlTrackingStore) -> None:
    store.create_registered_model("m")
    before = store.get_registered_model("m").last_updated_timestamp
    tick()
    tags = [ModelVersionTag("k", "v")]
    mv = store.create_model_version(
        "m", "runs:/r1/model", "r1", tags, "http://ui/r1", "desc", user_id="alice"
    )
    assert (mv.name, mv.version, mv.current_stage, mv.status) == ("m", "1", "None", "READY")
    assert (mv.source, mv.run_id, mv.run_link, mv.description) == (
        "runs:/r1/model",
        "r1",
        "http://ui/r1",
        "desc",
    )
    assert (mv.tags, mv.aliases, mv.user_id) == ({"k": "v"}, [], "alice")
    assert mv.creation_timestamp == mv.last_updated_timestamp
    assert store.get_model_version("m", 1) == mv
    after = store.get_registered_model("m").last_updated_timestamp
    assert after is not None
    assert before is not None
    assert after > before


@pytest.mark.parametrize("version", ["x", "1.5", "", None])
def test_version_must_be_an_integer(store: SqlTrackingStore, version: object) -> None:
    make_model(store, "m", versions=1)
    with pytest.raises(InvalidParameterValue, match="^Parameter 'version' must be an integer"):
        store.get_model_version("m", version)  # type: ignore[arg-type]


def test_unknown_version_is_resource_does_not_exist(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=1)
    message = r"^Model Version \(name=m, version=9\) not found$"
    for call in (
        lambda: store.get_model_version("m", 9),
        lambda: store.update_model_version("m", "9", "d"),
        lambda: store.delete_model_version("m", 9),
        lambda: store.get_model_version_download_uri("m", 9),
        lambda: store.transition_model_version_stage("m", 9, "Staging", False),
        lambda: store.set_model_version_tag("m", 9, ModelVersionTag("k", "v")),
        lambda: store.set_registered_model_alias("m", "a", 9),
    ):
        with pytest.raises(ResourceDoesNotExist, match=message):
            call()


def test_update_and_tags_of_a_version(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=1)
    first = store.get_model_version("m", 1)
    tick()
    updated = store.update_model_version("m", 1, "better")
    assert updated.description == "better"
    assert updated.last_updated_timestamp is not None
    assert first.last_updated_timestamp
    assert updated.last_updated_timestamp > first.last_updated_timestamp
    store.set_model_version_tag("m", "1", ModelVersionTag("a", "1"))
    store.set_model_version_tag("m", 1, ModelVersionTag("a", "2"))
    store.set_model_version_tag("m", 1, ModelVersionTag("b", "3"))
    assert store.get_model_version("m", 1).tags == {"a": "2", "b": "3"}
    store.delete_model_version_tag("m", 1, "a")
    store.delete_model_version_tag("m", 1, "a")  # not an error
    assert store.get_model_version("m", 1).tags == {"b": "3"}


def test_deleted_version_is_gone_everywhere(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=2)
    store.transition_model_version_stage("m", 2, "Production", False)
    store.delete_model_version("m", 2, user_id="bob")
    with pytest.raises(ResourceDoesNotExist):
        store.get_model_version("m", 2)
    assert [v.version for v in store.get_registered_model("m").latest_versions] == ["1"]
    assert store.get_latest_versions("m", ["Production"]) == []


# -- stages ----------------------------------------------------------------------------------
def test_stage_names_are_canonicalised() -> None:
    assert [get_canonical_stage(s) for s in ("none", "STAGING", "production", "archived")] == [
        "None",
        "Staging",
        "Production",
        "Archived",
    ]


def test_bad_stage(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=1)
    message = (
        r"^Invalid Model Version stage: Bogus\. Value must be one of None, Staging, "
        r"Production, Archived\.$"
    )
    with pytest.raises(InvalidParameterValue, match=message):
        store.transition_model_version_stage("m", 1, "Bogus", False)
    with pytest.raises(InvalidParameterValue, match=message):
        store.get_latest_versions("m", ["Bogus"])


def test_transition_and_archive_existing_versions(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=4)
    store.transition_model_version_stage("m", 1, "production", False)
    store.transition_model_version_stage("m", 2, "Production", False)
    store.transition_model_version_stage("m", 3, "Staging", False)
    promoted = store.transition_model_version_stage("m", 4, "Production", True, user_id="eve")
    assert promoted.current_stage == "Production"
    stages = {v: store.get_model_version("m", v).current_stage for v in (1, 2, 3, 4)}
    assert stages == {1: "Archived", 2: "Archived", 3: "Staging", 4: "Production"}
    events = list(store.get_registered_model_history("m"))[-3:]
    assert [(e.action, e.version, e.from_stage, e.to_stage, e.user_id) for e in events] == [
        ("transition_stage", "4", "None", "Production", "eve"),
        ("transition_stage", "1", "Production", "Archived", "eve"),
        ("transition_stage", "2", "Production", "Archived", "eve"),
    ]
    with pytest.raises(InvalidParameterValue, match="is not an Active stage"):
        store.transition_model_version_stage("m", 1, "Archived", True)


def test_latest_versions_per_stage(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=5)
    store.transition_model_version_stage("m", 2, "Staging", False)
    store.transition_model_version_stage("m", 3, "Staging", False)
    store.transition_model_version_stage("m", 4, "Production", False)
    latest = store.get_registered_model("m").latest_versions
    assert {v.current_stage: v.version for v in latest} == {
        "None": "5",
        "Staging": "3",
        "Production": "4",
    }
    assert [v.version for v in store.get_latest_versions("m", ["staging", "Production"])] == [
        "3",
        "4",
    ]
    assert len(store.get_latest_versions("m")) == 3
    assert len(store.get_latest_versions("m", [])) == 3
    assert store.get_latest_versions("m", ["Archived"]) == []


# -- aliases ---------------------------------------------------------------------------------
def test_alias_set_move_read_and_delete(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=2)
    store.set_registered_model_alias("m", "champion", 1, user_id="ann")
    assert store.get_model_version_by_alias("m", "champion").version == "1"
    store.set_registered_model_alias("m", "champion", "2", user_id="ann")
    got = store.get_model_version_by_alias("m", "champion")
    assert (got.version, got.aliases) == ("2", ["champion"])
    assert store.get_model_version("m", 1).aliases == []
    assert store.get_registered_model("m").aliases == {"champion": "2"}
    store.set_registered_model_alias("m", "champion", 2)  # same version again: no move
    store.delete_registered_model_alias("m", "champion", user_id="ann")
    store.delete_registered_model_alias("m", "champion")  # gone already: not an error
    with pytest.raises(
        InvalidParameterValue, match=r"^Registered model alias champion not found\.$"
    ):
        store.get_model_version_by_alias("m", "champion")
    events = [
        (e.action, e.alias, e.version, e.previous_version, e.user_id)
        for e in store.get_registered_model_history("m")
        if e.alias
    ]
    assert events == [
        ("set_alias", "champion", "1", None, "ann"),
        ("set_alias", "champion", "2", "1", "ann"),
        ("set_alias", "champion", "2", None, None),
        ("delete_alias", "champion", "2", None, "ann"),
    ]


def test_latest_is_the_highest_version(store: SqlTrackingStore) -> None:
    store.create_registered_model("m")
    with pytest.raises(InvalidParameterValue, match="alias latest not found"):
        store.get_model_version_by_alias("m", "latest")
    make_model(store, "n", versions=3)
    store.delete_model_version("n", 3)
    assert store.get_model_version_by_alias("n", "LATEST").version == "2"


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("latest", "reserved"),
        ("LATEST", "reserved"),
        ("v1", "reserved"),
        ("V12", "reserved"),
        ("has space", "Invalid alias name"),
        ("a.b", "Invalid alias name"),
        ("", "cannot be empty"),
        ("x" * 256, "exceeded length limit of 255"),
    ],
)
def test_bad_aliases(store: SqlTrackingStore, alias: str, message: str) -> None:
    make_model(store, "m", versions=1)
    with pytest.raises(InvalidParameterValue, match=message):
        store.set_registered_model_alias("m", alias, 1)


def test_alias_names_that_are_allowed(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=1)
    for alias in ("champion", "blue-green_2", "v1a", "x" * 255):
        store.set_registered_model_alias("m", alias, 1)
    assert len(store.get_model_version("m", 1).aliases) == 4


def test_deleting_a_version_drops_its_aliases_and_records_it(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=2)
    store.set_registered_model_alias("m", "a", 1)
    store.set_registered_model_alias("m", "b", 1)
    store.set_registered_model_alias("m", "c", 2)
    store.delete_model_version("m", 1, user_id="zed")
    assert store.get_registered_model("m").aliases == {"c": "2"}
    with pytest.raises(InvalidParameterValue, match="alias a not found"):
        store.get_model_version_by_alias("m", "a")
    tail = list(store.get_registered_model_history("m"))[-3:]
    assert [(e.action, e.alias, e.version, e.user_id) for e in tail] == [
        ("delete_alias", "a", "1", "zed"),
        ("delete_alias", "b", "1", "zed"),
        ("delete_version", None, "1", "zed"),
    ]
    assert tail[-1].from_stage == "None"


# -- storage locations -----------------------------------------------------------------------
def _logged_model(store: SqlTrackingStore, model_id: str, location: str, run: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(t.logged_models).values(
                model_id=model_id,
                experiment_id=0,
                name="model",
                artifact_location=location,
                creation_timestamp_ms=1,
                last_updated_timestamp_ms=1,
                status=2,
                lifecycle_stage="active",
                source_run_id=run,
            )
        )


def test_storage_location_of_a_logged_model_source(store: SqlTrackingStore) -> None:
    model_id = "m-" + "a" * 32
    location = "mlflow-artifacts:/0/models/" + model_id + "/artifacts"
    _logged_model(store, model_id, location, "r" * 32)
    store.create_registered_model("m")
    mv = store.create_model_version("m", f"models:/{model_id}")
    assert (mv.source, mv.run_id, mv.model_id) == (f"models:/{model_id}", "r" * 32, model_id)
    assert store.get_model_version_download_uri("m", 1) == location
    with pytest.raises(ResourceDoesNotExist, match="Logged model with ID 'm-missing' not found"):
        store.create_model_version("m", "models:/m-missing")


def test_storage_location_of_registry_sources(store: SqlTrackingStore) -> None:
    make_model(store, "base", versions=1)
    store.set_registered_model_alias("base", "prod", 1)
    store.create_registered_model("copy")
    by_version = store.create_model_version("copy", "models:/base/1")
    by_alias = store.create_model_version("copy", "models:/base@prod")
    assert by_version.run_id == by_alias.run_id == "run1"
    for version in (1, 2):
        assert store.get_model_version_download_uri("copy", version) == "s3://bucket/base/1"
    plain = store.create_model_version("copy", "file:///tmp/model")
    assert store.get_model_version_download_uri("copy", plain.version) == "file:///tmp/model"
    with pytest.raises(InvalidParameterValue, match="Unable to fetch model"):
        store.create_model_version("copy", "models:/base/Production")
    with pytest.raises(ResourceDoesNotExist):
        store.create_model_version("copy", "models:/base/7")


# -- searches --------------------------------------------------------------------------------
def _names(store: SqlTrackingStore, filter_string: str | None = None, **kw: object) -> list[str]:
    return [m.name for m in store.search_registered_models(filter_string, **kw)]  # type: ignore[arg-type]


def test_search_registered_models_filters(store: SqlTrackingStore) -> None:
    for name, team in (("Fraud-A", "risk"), ("fraud-b", "risk"), ("churn", "growth")):
        store.create_registered_model(name, [RegisteredModelTag("team", team)])
    store.create_registered_model("untagged")
    assert _names(store) == ["Fraud-A", "churn", "fraud-b", "untagged"]
    assert _names(store, "name = 'churn'") == ["churn"]
    assert _names(store, "name != 'churn'") == ["Fraud-A", "fraud-b", "untagged"]
    assert _names(store, "name LIKE 'fraud%'") == ["fraud-b"]
    assert _names(store, "name ILIKE 'fraud%'") == ["Fraud-A", "fraud-b"]
    assert _names(store, "name IN ('churn', 'untagged')") == ["churn", "untagged"]
    assert _names(store, "name NOT IN ('churn')") == ["Fraud-A", "fraud-b", "untagged"]
    assert _names(store, "tags.team = 'risk'") == ["Fraud-A", "fraud-b"]
    assert _names(store, "tag.`team` != 'risk'") == ["churn"]
    assert _names(store, "tags.team LIKE 'gr%' AND name ILIKE 'CH%'") == ["churn"]
    with pytest.raises(InvalidFilter):
        _names(store, "run_id = 'x'")
    with pytest.raises(InvalidFilter):
        _names(store, "name = 'a' OR name = 'b'")


def test_prompts_are_left_out_unless_asked_for(store: SqlTrackingStore) -> None:
    store.create_registered_model("model")
    store.create_registered_model("no-prompt", [RegisteredModelTag(PROMPT, "false")])
    store.create_registered_model("prompt", [RegisteredModelTag(PROMPT, "true")])
    everything_but_prompts = ["model", "no-prompt"]
    assert _names(store) == everything_but_prompts
    assert _names(store, f"tag.`{PROMPT}` != 'true'") == everything_but_prompts
    assert _names(store, f"tags.`{PROMPT}` = 'false'") == everything_but_prompts
    assert _names(store, f"tags.`{PROMPT}` = 'true'") == ["prompt"]
    assert _names(store, f"tags.`{PROMPT}` != 'false'") == ["prompt"]


def test_search_registered_models_order_and_pages(store: SqlTrackingStore) -> None:
    for name in ("c", "a", "d", "b", "e"):
        store.create_registered_model(name)
        tick()
    store.update_registered_model("a", "touched last")
    assert _names(store, order_by=["name DESC"]) == ["e", "d", "c", "b", "a"]
    assert _names(store, order_by=["timestamp DESC"])[0] == "a"
    assert _names(store, order_by=["last_updated_timestamp ASC"]) == ["c", "d", "b", "e", "a"]
    seen, token = [], None
    while True:
        page = store.search_registered_models(max_results=2, page_token=token)
        seen.extend(m.name for m in page)
        assert len(page) <= 2
        token = page.token
        if not token:
            break
    assert seen == ["a", "b", "c", "d", "e"]
    last = store.search_registered_models(max_results=5)
    assert last.token is None
    with pytest.raises(InvalidFilter, match="duplicate"):
        _names(store, order_by=["timestamp", "last_updated_timestamp DESC"])
    with pytest.raises(InvalidFilter):
        _names(store, order_by=["creation_timestamp"])
    with pytest.raises(InvalidParameterValue, match="at most 1000"):
        store.search_registered_models(max_results=1001)
    with pytest.raises(InvalidParameterValue, match="positive integer"):
        store.search_registered_models(max_results=0)
    with pytest.raises(InvalidParameterValue, match="Invalid page token"):
        store.search_registered_models(page_token="garbage!")


def test_search_model_versions(store: SqlTrackingStore) -> None:
    make_model(store, "a", versions=3)
    make_model(store, "b", versions=2)
    store.set_model_version_tag("b", 2, ModelVersionTag("validated", "yes"))

    def found(filter_string: str | None = None, **kw: object) -> list[tuple[str, str]]:
        page = store.search_model_versions(filter_string, **kw)  # type: ignore[arg-type]
        return [(v.name, v.version) for v in page]

    asc = ["name ASC", "version_number ASC"]
    assert found("name = 'a'", order_by=asc) == [("a", "1"), ("a", "2"), ("a", "3")]
    assert found("run_id IN ('run1', 'run3')", order_by=asc) == [("a", "1"), ("a", "3"), ("b", "1")]
    assert found("run_id NOT IN ('run1')", order_by=asc) == [("a", "2"), ("a", "3"), ("b", "2")]
    assert found("source_path LIKE 's3://bucket/b/%'", order_by=asc) == [("b", "1"), ("b", "2")]
    assert found("version_number >= 2 AND name = 'a'", order_by=asc) == [("a", "2"), ("a", "3")]
    assert found("tags.validated = 'yes'") == [("b", "2")]
    # The default order: newest update first, then name, then the highest version.
    assert found()[0] == ("b", "2")
    assert found(order_by=["creation_timestamp ASC"])[0] == ("a", "1")
    with pytest.raises(InvalidFilter):
        found("version_number = 'two'")
    with pytest.raises(InvalidFilter):
        found("source_path IN ('x')")
    with pytest.raises(InvalidFilter):
        found(order_by=["run_id"])
    with pytest.raises(InvalidParameterValue, match="at most 200000"):
        found(max_results=200_001)


def test_search_model_versions_pages_and_prompts(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=5)
    store.create_registered_model("p")
    store.create_model_version("p", "s3://p/1", tags=[ModelVersionTag(PROMPT, "true")])
    seen, token = [], None
    while True:
        page = store.search_model_versions(max_results=2, page_token=token)
        seen.extend(v.version for v in page)
        token = page.token
        if not token:
            break
    assert sorted(seen) == ["1", "2", "3", "4", "5"]  # the prompt version is left out
    prompts = store.search_model_versions(f"tags.`{PROMPT}` = 'true'")
    assert [(v.name, v.version) for v in prompts] == [("p", "1")]


# -- history ---------------------------------------------------------------------------------
def test_history_pages_oldest_first(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=3)
    store.transition_model_version_stage("m", 1, "Staging", False)
    events = store.get_registered_model_history("m")
    assert [(e.action, e.version) for e in events] == [
        ("create_version", "1"),
        ("create_version", "2"),
        ("create_version", "3"),
        ("transition_stage", "1"),
    ]
    assert events.token is None
    timestamps = [e.timestamp for e in events]
    assert timestamps == sorted(timestamps)
    first = store.get_registered_model_history("m", max_results=3)
    assert first.token is not None
    rest = store.get_registered_model_history("m", max_results=3, page_token=first.token)
    assert [e.action for e in rest] == ["transition_stage"]
    assert rest.token is None
    with pytest.raises(InvalidParameterValue):
        store.get_registered_model_history("m", max_results=0)


def test_promotion_records_action_and_evidence(store: SqlTrackingStore) -> None:
    make_model(store, "m", versions=1)
    evidence = {"run_id": "run1", "requirements": [{"condition": "metrics.auc > 0.9"}]}
    store.transition_model_version_stage(
        "m", 1, "Production", False, user_id="cd", evidence=evidence, action="promote"
    )
    store.set_registered_model_alias("m", "live", 1, evidence=evidence, action="promote")
    promote, alias = list(store.get_registered_model_history("m"))[-2:]
    assert (promote.action, promote.to_stage, promote.evidence) == (
        "promote",
        "Production",
        evidence,
    )
    assert (alias.action, alias.alias, alias.evidence) == ("promote", "live", evidence)
    with pytest.raises(InvalidParameterValue, match="Invalid registry action"):
        store.transition_model_version_stage("m", 1, "Staging", False, action="hack")
    with pytest.raises(InvalidParameterValue, match="Invalid registry action"):
        store.set_registered_model_alias("m", "x", 1, action="delete_version")
    with pytest.raises(InvalidParameterValue, match="user_id is 257 characters long"):
        store.set_registered_model_alias("m", "x", 1, user_id="u" * 257)
    assert "x" not in store.get_registered_model("m").aliases


# -- concurrency and query counts ------------------------------------------------------------
def test_concurrent_registrations_get_distinct_numbers(store: SqlTrackingStore) -> None:
    store.create_registered_model("m")

    def register(i: int) -> str:
        return store.create_model_version("m", f"s3://bucket/{i}").version

    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = list(pool.map(register, range(30)))
    assert sorted(numbers, key=int) == [str(n) for n in range(1, 31)]
    events = store.get_registered_model_history("m")
    assert sorted(int(e.version or 0) for e in events) == list(range(1, 31))


def _statements(store: SqlTrackingStore, call: Callable[[], object]) -> int:
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    engines = {store.engine, read_engine(store.engine)}  # reads have their own on PostgreSQL
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        call()
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_a_page_is_loaded_with_a_fixed_number_of_queries(store: SqlTrackingStore) -> None:
    def populate(prefix: str, count: int) -> None:
        for i in range(count):
            name = f"{prefix}{i:02d}"
            store.create_registered_model(name, [RegisteredModelTag("k", "v")])
            store.create_model_version(name, "s3://x", tags=[ModelVersionTag("t", "1")])
            store.set_registered_model_alias(name, "a", 1)

    populate("few", 2)
    populate("many", 20)
    few = _statements(store, lambda: store.search_registered_models("name LIKE 'few%'"))
    many = _statements(store, lambda: store.search_registered_models("name LIKE 'many%'"))
    assert few == many
    few = _statements(store, lambda: store.search_model_versions("name LIKE 'few%'"))
    many = _statements(store, lambda: store.search_model_versions("name LIKE 'many%'"))
    assert few == many
    loaded = store.search_registered_models("name LIKE 'many%'")
    assert all(m.tags == {"k": "v"} and m.aliases == {"a": "1"} for m in loaded)
    assert all(m.latest_versions[0].tags == {"t": "1"} for m in loaded)
