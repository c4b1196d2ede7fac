"""``Client``'s model-registry methods against a real SQLite store: registered models, versions,
stages, tags, aliases, copies and the registry history."""

from __future__ import annotations

import pytest

from runyard import Client
from runyard.entities import ModelVersion
from runyard.tracking.context import current_user
from tests.tracking.helpers import INVALID, MISSING, expect_error

EXISTS = "RESOURCE_ALREADY_EXISTS"


@pytest.fixture
def client(tracking_env: str) -> Client:
    """Registry calls go straight to the store, so one logging mode is enough here."""
    return Client()


@pytest.fixture
def run_id(client: Client) -> str:
    """A finished run to be the source of model versions."""
    run_id = client.create_run("0").info.run_id
    client.set_terminated(run_id)
    return run_id


def _versions(client: Client, name: str, count: int, run_id: str | None = None) -> list[str]:
    """Register ``count`` versions of ``name`` (created first); returns their numbers."""
    client.create_registered_model(name)
    return [
        client.create_model_version(name, f"/models/{name}/{i}", run_id).version
        for i in range(count)
    ]


def _stages(client: Client, name: str) -> dict[str, str]:
    found = client.search_model_versions(f"name = '{name}'")
    return {v.version: v.current_stage for v in found}


# -- registered models ----------------------------------------------------------------------------
def test_create_and_get_registered_model(client: Client) -> None:
    created = client.create_registered_model(
        "fraud", tags={"team": "risk", "n": 3}, description="detects fraud"
    )
    assert created.name == "fraud"
    assert created.tags == {"team": "risk", "n": "3"}
    got = client.get_registered_model("fraud")
    assert got.name == "fraud"
    assert got.description == "detects fraud"
    assert got.tags == {"team": "risk", "n": "3"}
    assert got.latest_versions == []
    assert got.aliases == {}
    assert got.creation_timestamp == created.creation_timestamp
    assert got.last_updated_timestamp >= got.creation_timestamp


def test_create_registered_model_twice_or_get_unknown_is_error(client: Client) -> None:
    client.create_registered_model("fraud")
    error = expect_error(EXISTS, client.create_registered_model, "fraud")
    assert "fraud" in error.message
    expect_error(MISSING, client.get_registered_model, "nope")
    expect_error(INVALID, client.create_registered_model, "")


def test_rename_registered_model_takes_versions_along(client: Client, run_id: str) -> None:
    _versions(client, "old", 2, run_id)
    client.set_registered_model_alias("old", "champion", 2)
    renamed = client.rename_registered_model("old", "new")
    assert renamed.name == "new"
    expect_error(MISSING, client.get_registered_model, "old")
    assert client.get_model_version("new", 1).run_id == run_id
    assert client.get_model_version_by_alias("new", "champion").version == "2"
    client.create_registered_model("other")
    expect_error(EXISTS, client.rename_registered_model, "new", "other")
    expect_error(MISSING, client.rename_registered_model, "old", "again")


def test_update_registered_model_description(client: Client) -> None:
    client.create_registered_model("fraud", description="first")
    updated = client.update_registered_model("fraud", description="second")
    assert updated.description == "second"
    assert client.get_registered_model("fraud").description == "second"
    # As in MLflow: an update with nothing to change is an error, not a silent wipe.
    error = expect_error(INVALID, client.update_registered_model, "fraud")
    assert "no new field values" in error.message
    assert client.get_registered_model("fraud").description == "second"
    expect_error(MISSING, client.update_registered_model, "nope", "x")


def test_delete_registered_model_removes_versions(client: Client, run_id: str) -> None:
    _versions(client, "fraud", 2, run_id)
    _versions(client, "kept", 1, run_id)
    client.delete_registered_model("fraud")
    expect_error(MISSING, client.get_registered_model, "fraud")
    expect_error(MISSING, client.get_model_version, "fraud", 1)
    assert list(client.search_model_versions("name = 'fraud'")) == []
    assert [m.name for m in client.search_registered_models()] == ["kept"]
    expect_error(MISSING, client.delete_registered_model, "fraud")


def test_search_registered_models_filter_order_and_pages(client: Client) -> None:
    for name in ("fraud-a", "fraud-b", "churn", "fraud-c"):
        client.create_registered_model(name, tags={"kind": name.split("-")[0]})
    assert [m.name for m in client.search_registered_models()] == [
        "churn",
        "fraud-a",
        "fraud-b",
        "fraud-c",
    ]
    found = client.search_registered_models("name LIKE 'fraud%'", order_by=["name DESC"])
    assert [m.name for m in found] == ["fraud-c", "fraud-b", "fraud-a"]
    assert [m.name for m in client.search_registered_models("tags.kind = 'churn'")] == ["churn"]
    first = client.search_registered_models(max_results=3)
    assert [m.name for m in first] == ["churn", "fraud-a", "fraud-b"]
    assert first.token
    second = client.search_registered_models(max_results=3, page_token=first.token)
    assert [m.name for m in second] == ["fraud-c"]
    assert not second.token
    expect_error(INVALID, client.search_registered_models, "name >> 'x'")


def test_get_latest_versions_per_stage(client: Client) -> None:
    _versions(client, "fraud", 4)
    client.transition_model_version_stage("fraud", 1, "Staging")
    client.transition_model_version_stage("fraud", 2, "Production")
    client.transition_model_version_stage("fraud", "3", "staging")  # any case, str or int
    latest = client.get_latest_versions("fraud")
    assert sorted((v.current_stage, v.version) for v in latest) == [
        ("None", "4"),
        ("Production", "2"),
        ("Staging", "3"),
    ]
    assert [v.version for v in client.get_latest_versions("fraud", ["Staging"])] == ["3"]
    assert [v.version for v in client.get_latest_versions("fraud", ["PRODUCTION"])] == ["2"]
    assert client.get_latest_versions("fraud", ["Archived"]) == []
    expect_error(INVALID, client.get_latest_versions, "fraud", ["Live"])
    expect_error(MISSING, client.get_latest_versions, "nope")


def test_registered_model_tags(client: Client) -> None:
    client.create_registered_model("fraud")
    client.set_registered_model_tag("fraud", "owner", "ana")
    client.set_registered_model_tag("fraud", "threshold", 0.5)
    client.set_registered_model_tag("fraud", "owner", "bo")  # replaces
    assert client.get_registered_model("fraud").tags == {"owner": "bo", "threshold": "0.5"}
    client.delete_registered_model_tag("fraud", "owner")
    client.delete_registered_model_tag("fraud", "never-set")  # not an error, as in MLflow
    assert client.get_registered_model("fraud").tags == {"threshold": "0.5"}
    expect_error(MISSING, client.set_registered_model_tag, "nope", "k", "v")


# -- model versions -------------------------------------------------------------------------------
def test_create_model_version(client: Client, run_id: str) -> None:
    client.create_registered_model("fraud")
    mv = client.create_model_version(
        "fraud",
        "/data/models/fraud",
        run_id,
        tags={"validated": True},
        run_link="http://ci/1",
        description="first cut",
    )
    assert isinstance(mv, ModelVersion)
    assert (mv.name, mv.version, mv.status, mv.current_stage) == ("fraud", "1", "READY", "None")
    assert mv.source == "/data/models/fraud"
    assert mv.run_id == run_id
    assert mv.tags == {"validated": "True"}
    assert mv.run_link == "http://ci/1"
    assert mv.description == "first cut"
    assert mv.user_id == current_user()
    assert client.get_model_version("fraud", 1) == mv
    assert client.create_model_version("fraud", "/data/models/fraud2").version == "2"
    assert client.get_registered_model("fraud").latest_versions[0].version == "2"
    expect_error(MISSING, client.create_model_version, "nope", "/x")


def test_version_numbers_are_never_reused(client: Client) -> None:
    _versions(client, "fraud", 3)
    client.delete_model_version("fraud", 3)
    client.delete_model_version("fraud", "2")
    expect_error(MISSING, client.get_model_version, "fraud", 3)
    assert client.create_model_version("fraud", "/x").version == "4"
    assert sorted(_stages(client, "fraud")) == ["1", "4"]
    expect_error(MISSING, client.delete_model_version, "fraud", 3)


def test_update_model_version_description(client: Client) -> None:
    _versions(client, "fraud", 1)
    assert client.update_model_version("fraud", 1, "tuned").description == "tuned"
    assert client.get_model_version("fraud", "1").description == "tuned"
    error = expect_error(INVALID, client.update_model_version, "fraud", 1)
    assert "no new field values" in error.message
    assert client.get_model_version("fraud", 1).description == "tuned"
    expect_error(MISSING, client.update_model_version, "fraud", 7, "x")


def test_transition_stage_and_archive_existing(client: Client) -> None:
    _versions(client, "fraud", 3)
    assert client.transition_model_version_stage("fraud", 1, "Production").current_stage == (
        "Production"
    )
    client.transition_model_version_stage("fraud", 2, "Production")
    assert _stages(client, "fraud") == {"1": "Production", "2": "Production", "3": "None"}
    moved = client.transition_model_version_stage(
        "fraud", 3, "production", archive_existing_versions=True
    )
    assert moved.current_stage == "Production"
    assert _stages(client, "fraud") == {"1": "Archived", "2": "Archived", "3": "Production"}
    expect_error(INVALID, client.transition_model_version_stage, "fraud", 1, "Live")
    # archiving only applies to the active stages
    expect_error(
        INVALID,
        client.transition_model_version_stage,
        "fraud",
        1,
        "None",
        archive_existing_versions=True,
    )
    assert client.get_model_version_stages("fraud", 1) == [
        "None",
        "Staging",
        "Production",
        "Archived",
    ]


def test_download_uri_is_the_source_location(client: Client) -> None:
    client.create_registered_model("fraud")
    client.create_model_version("fraud", "/data/models/fraud")
    assert client.get_model_version_download_uri("fraud", 1) == "/data/models/fraud"
    expect_error(MISSING, client.get_model_version_download_uri, "fraud", 2)


def test_search_model_versions(client: Client, run_id: str) -> None:
    other_run = client.create_run("0").info.run_id
    _versions(client, "fraud", 3, run_id)
    client.create_registered_model("churn")
    client.create_model_version("churn", "/models/churn", other_run)
    by_name = client.search_model_versions("name = 'fraud'", order_by=["version_number ASC"])
    assert [(v.name, v.version) for v in by_name] == [
        ("fraud", "1"),
        ("fraud", "2"),
        ("fraud", "3"),
    ]
    by_run = client.search_model_versions(f"run_id = '{other_run}'")
    assert [(v.name, v.version) for v in by_run] == [("churn", "1")]
    page = client.search_model_versions(
        "name = 'fraud'", max_results=2, order_by=["version_number DESC"]
    )
    assert [v.version for v in page] == ["3", "2"]
    rest = client.search_model_versions(
        "name = 'fraud'", max_results=2, order_by=["version_number DESC"], page_token=page.token
    )
    assert [v.version for v in rest] == ["1"]
    assert len(client.search_model_versions()) == 4
    expect_error(INVALID, client.search_model_versions, "nonsense = 1")


def test_model_version_tags_by_number_or_stage(client: Client) -> None:
    _versions(client, "fraud", 3)
    client.transition_model_version_stage("fraud", 1, "Staging")
    client.transition_model_version_stage("fraud", 2, "Staging")
    client.set_model_version_tag("fraud", 1, "checked", True)
    client.set_model_version_tag("fraud", stage="Staging", key="gate", value="passed")
    assert client.get_model_version("fraud", 1).tags == {"checked": "True"}
    assert client.get_model_version("fraud", 2).tags == {"gate": "passed"}  # newest in Staging
    client.set_model_version_tag("fraud", "2", "extra", 1)
    client.delete_model_version_tag("fraud", stage="staging", key="gate")
    client.delete_model_version_tag("fraud", 1, "never-set")
    assert client.get_model_version("fraud", 2).tags == {"extra": "1"}
    client.delete_model_version_tag("fraud", 2, "extra")
    assert client.get_model_version("fraud", 2).tags == {}


@pytest.mark.parametrize(
    ("version", "key", "stage", "fragment"),
    [
        (1, "k", "Staging", "exactly one of version or stage"),
        (None, "k", None, "exactly one of version or stage"),
        (1, None, None, "'key'"),
        (None, "k", "Production", "No version of model 'fraud' is in stage 'Production'"),
    ],
)
def test_model_version_tag_argument_errors(
    client: Client, version: int | None, key: str | None, stage: str | None, fragment: str
) -> None:
    _versions(client, "fraud", 1)
    client.transition_model_version_stage("fraud", 1, "Staging")
    error = expect_error(INVALID, client.set_model_version_tag, "fraud", version, key, "v", stage)
    assert fragment in error.message
    error = expect_error(INVALID, client.delete_model_version_tag, "fraud", version, key, stage)
    assert fragment in error.message
    assert client.get_model_version("fraud", 1).tags == {}


def test_tag_on_unknown_version_is_missing(client: Client) -> None:
    _versions(client, "fraud", 1)
    expect_error(MISSING, client.set_model_version_tag, "fraud", 5, "k", "v")
    expect_error(MISSING, client.set_model_version_tag, "nope", 1, "k", "v")


# -- aliases ------------------------------------------------------------------------------------
def test_aliases_point_move_and_go(client: Client) -> None:
    _versions(client, "fraud", 3)
    client.set_registered_model_alias("fraud", "champion", 1)
    client.set_registered_model_alias("fraud", "challenger", "2")
    assert client.get_model_version_by_alias("fraud", "champion").version == "1"
    assert client.get_registered_model("fraud").aliases == {"champion": "1", "challenger": "2"}
    assert client.get_model_version("fraud", 1).aliases == ["champion"]
    client.set_registered_model_alias("fraud", "champion", 3)  # moves
    assert client.get_model_version_by_alias("fraud", "champion").version == "3"
    assert client.get_model_version("fraud", 1).aliases == []
    client.delete_registered_model_alias("fraud", "challenger")
    assert client.get_registered_model("fraud").aliases == {"champion": "3"}
    expect_error(INVALID, client.get_model_version_by_alias, "fraud", "challenger")
    # deleting a version drops the aliases that point at it
    client.delete_model_version("fraud", 3)
    assert client.get_registered_model("fraud").aliases == {}
    expect_error(MISSING, client.set_registered_model_alias, "fraud", "champion", 3)
    expect_error(MISSING, client.set_registered_model_alias, "nope", "champion", 1)


def test_latest_alias_is_the_highest_version(client: Client) -> None:
    _versions(client, "fraud", 2)
    assert client.get_model_version_by_alias("fraud", "latest").version == "2"


# -- copy -----------------------------------------------------------------------------------------
def test_copy_model_version_creates_target_and_keeps_metadata(client: Client, run_id: str) -> None:
    client.create_registered_model("dev")
    client.create_model_version(
        "dev", "/models/dev/1", run_id, tags={"k": "v"}, description="from dev"
    )
    copied = client.copy_model_version("models:/dev/1", "prod")
    assert (copied.name, copied.version) == ("prod", "1")
    assert client.get_registered_model("prod").name == "prod"
    # As MLflow records a copy: the source is the copied version, its run and metadata follow.
    assert copied.source == "models:/dev/1"
    assert copied.run_id == run_id
    assert copied.tags == {"k": "v"}
    assert copied.description == "from dev"
    assert client.get_model_version_download_uri("prod", 1) == "/models/dev/1"
    # by alias, into the now existing target
    client.set_registered_model_alias("dev", "champion", 1)
    again = client.copy_model_version("models:/dev@champion", "prod")
    assert again.version == "2"
    assert again.source == "models:/dev/1"
    expect_error(MISSING, client.copy_model_version, "models:/dev/9", "prod")
    expect_error(INVALID, client.copy_model_version, "models:/dev@nope", "prod")


def test_copy_of_a_logged_model_version_keeps_its_model_id(client: Client, run_id: str) -> None:
    model = client.create_logged_model("0", "net", run_id)
    client.finalize_logged_model(model.model_id, "READY")
    client.create_registered_model("dev")
    client.create_model_version("dev", f"models:/{model.model_id}", run_id, model_id=model.model_id)
    copied = client.copy_model_version("models:/dev/latest", "prod")
    assert copied.model_id == model.model_id
    assert copied.run_id == run_id
    assert client.get_model_version_download_uri("prod", 1) == model.artifact_location


# -- history --------------------------------------------------------------------------------------
def test_history_records_each_change_in_order(client: Client) -> None:
    _versions(client, "fraud", 2)
    client.transition_model_version_stage("fraud", 1, "Staging")
    client.set_registered_model_alias("fraud", "champion", 1)
    client.set_registered_model_alias("fraud", "champion", 2)
    client.delete_registered_model_alias("fraud", "champion")
    client.delete_model_version("fraud", 1)
    events = list(client.get_registered_model_history("fraud"))
    summary = [
        (e.action, e.version, e.from_stage, e.to_stage, e.alias, e.previous_version) for e in events
    ]
    assert summary == [
        ("create_version", "1", None, "None", None, None),
        ("create_version", "2", None, "None", None, None),
        ("transition_stage", "1", "None", "Staging", None, None),
        ("set_alias", "1", None, None, "champion", None),
        ("set_alias", "2", None, None, "champion", "1"),
        ("delete_alias", "2", None, None, "champion", None),
        ("delete_version", "1", "Staging", None, None, None),
    ]
    assert {e.user_id for e in events} == {current_user()}
    assert {e.name for e in events} == {"fraud"}
    assert all(e.evidence is None for e in events)
    times = [e.timestamp for e in events]
    assert times == sorted(times)


def test_history_pages_and_follows_a_rename(client: Client) -> None:
    _versions(client, "fraud", 3)
    client.rename_registered_model("fraud", "risk")
    first = client.get_registered_model_history("risk", max_results=2)
    assert [e.version for e in first] == ["1", "2"]
    assert first.token
    rest = client.get_registered_model_history("risk", max_results=2, page_token=first.token)
    assert [e.version for e in rest] == ["3"]
    assert not rest.token
    assert {e.name for e in [*first, *rest]} == {"risk"}
    expect_error(MISSING, client.get_registered_model_history, "fraud")


# -- promotion without conditions -----------------------------------------------------------------
def test_promote_without_conditions(client: Client) -> None:
    _versions(client, "fraud", 2)
    promoted = client.promote_model_version("fraud", 1, stage="staging")
    assert promoted.current_stage == "Staging"
    aliased = client.promote_model_version("fraud", "2", alias="champion")
    assert aliased.aliases == ["champion"]
    last = list(client.get_registered_model_history("fraud"))[-2:]
    assert [(e.action, e.version, e.to_stage, e.alias, e.evidence) for e in last] == [
        ("promote", "1", "Staging", None, None),
        ("promote", "2", None, "champion", None),
    ]


@pytest.mark.parametrize(
    "target", [{}, {"stage": "Production", "alias": "champion"}], ids=["neither", "both"]
)
def test_promote_needs_exactly_one_target(client: Client, target: dict[str, str]) -> None:
    _versions(client, "fraud", 1)
    error = expect_error(INVALID, client.promote_model_version, "fraud", 1, **target)
    assert "exactly one" in error.message
    assert client.get_model_version("fraud", 1).current_stage == "None"
    assert client.get_model_version("fraud", 1).aliases == []


def test_promote_unknown_version_is_missing(client: Client) -> None:
    _versions(client, "fraud", 1)
    expect_error(MISSING, client.promote_model_version, "fraud", 2, stage="Production")
    expect_error(MISSING, client.promote_model_version, "nope", 1, alias="champion")
