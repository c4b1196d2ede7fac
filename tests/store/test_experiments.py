"""Experiments in the SQL store: ids, names, lifecycle, tags, search."""

from __future__ import annotations

import pytest

from runyard.entities import ExperimentTag, LifecycleStage, ViewType
from runyard.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from runyard.store.sql.store import SqlTrackingStore


def test_default_experiment_is_zero(store: SqlTrackingStore) -> None:
    exp = store.get_experiment("0")
    assert exp.name == "Default"
    assert exp.lifecycle_stage == LifecycleStage.ACTIVE
    assert exp.artifact_location.endswith("/artifacts/0")


def test_ids_are_sequential_integers_as_strings(store: SqlTrackingStore) -> None:
    assert store.create_experiment("a") == "1"
    assert store.create_experiment("b") == "2"


def test_create_with_location_and_tags(store: SqlTrackingStore) -> None:
    exp_id = store.create_experiment("a", "/data/here", [ExperimentTag("team", "fraud")])
    exp = store.get_experiment(exp_id)
    assert exp.artifact_location == "/data/here"
    assert exp.tags == {"team": "fraud"}
    assert exp.creation_time is not None
    assert exp.last_update_time == exp.creation_time


def test_duplicate_name_refused_even_when_deleted(store: SqlTrackingStore) -> None:
    exp_id = store.create_experiment("dup")
    with pytest.raises(ResourceAlreadyExists, match=r"Experiment\(name=dup\) already exists"):
        store.create_experiment("dup")
    store.delete_experiment(exp_id)
    with pytest.raises(ResourceAlreadyExists):
        store.create_experiment("dup")


@pytest.mark.parametrize("name", ["", "   ", "x" * 501, None, 5])
def test_bad_names_refused(store: SqlTrackingStore, name: object) -> None:
    with pytest.raises(InvalidParameterValue, match="experiment name|Experiment name"):
        store.create_experiment(name)  # type: ignore[arg-type]


def test_get_unknown_and_malformed_ids(store: SqlTrackingStore) -> None:
    with pytest.raises(ResourceDoesNotExist, match="No Experiment with id=42 exists"):
        store.get_experiment("42")
    with pytest.raises(InvalidParameterValue, match="Invalid experiment ID: 'abc'"):
        store.get_experiment("abc")
    assert store.get_experiment_by_name("nope") is None


def test_delete_restore_cascades_to_runs(store: SqlTrackingStore) -> None:
    exp_id = store.create_experiment("e")
    kept = store.create_run(exp_id, "u", 1, [], "kept").info.run_id
    earlier = store.create_run(exp_id, "u", 2, [], "earlier").info.run_id
    store.delete_run(earlier)
    store.delete_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert store.get_run(kept).info.lifecycle_stage == "deleted"
    store.restore_experiment(exp_id)
    assert store.get_experiment(exp_id).lifecycle_stage == "active"
    assert store.get_run(kept).info.lifecycle_stage == "active"
    # A run the user deleted before the experiment stays deleted.
    assert store.get_run(earlier).info.lifecycle_stage == "deleted"


def test_run_creation_refused_in_deleted_experiment(store: SqlTrackingStore) -> None:
    exp_id = store.create_experiment("e")
    store.delete_experiment(exp_id)
    with pytest.raises(InvalidParameterValue, match="non-active experiment"):
        store.create_run(exp_id, "u", 1, [], None)


def test_delete_twice_is_an_error(store: SqlTrackingStore) -> None:
    exp_id = store.create_experiment("e")
    store.delete_experiment(exp_id)
    with pytest.raises(InvalidParameterValue, match="already deleted"):
        store.delete_experiment(exp_id)


def test_rename(store: SqlTrackingStore) -> None:
    a = store.create_experiment("a")
    store.create_experiment("b")
    store.rename_experiment(a, "c")
    assert store.get_experiment(a).name == "c"
    with pytest.raises(ResourceAlreadyExists):
        store.rename_experiment(a, "b")
    store.delete_experiment(a)
    with pytest.raises(InvalidParameterValue, match="non-active"):
        store.rename_experiment(a, "d")


def test_tags_upsert_and_delete(store: SqlTrackingStore) -> None:
    exp_id = store.create_experiment("e")
    store.set_experiment_tag(exp_id, ExperimentTag("k", "1"))
    store.set_experiment_tag(exp_id, ExperimentTag("k", "2"))
    assert store.get_experiment(exp_id).tags == {"k": "2"}
    store.delete_experiment_tag(exp_id, "k")
    assert store.get_experiment(exp_id).tags == {}
    with pytest.raises(ResourceDoesNotExist, match="No tag with name: k"):
        store.delete_experiment_tag(exp_id, "k")
    with pytest.raises(InvalidParameterValue, match="20000"):
        store.set_experiment_tag(exp_id, ExperimentTag("big", "x" * 20001))
    with pytest.raises(InvalidParameterValue, match="Invalid experiment tag name"):
        store.set_experiment_tag(exp_id, ExperimentTag("bad!", "x"))


def test_search_view_types_and_paging(store: SqlTrackingStore) -> None:
    ids = [store.create_experiment(f"e{i}") for i in range(5)]
    store.delete_experiment(ids[0])
    active = store.search_experiments(ViewType.ACTIVE_ONLY)
    assert {e.experiment_id for e in active} == {"0", *ids[1:]}
    deleted = store.search_experiments(ViewType.DELETED_ONLY)
    assert [e.experiment_id for e in deleted] == [ids[0]]
    assert len(store.search_experiments(ViewType.ALL)) == 6
    page1 = store.search_experiments(ViewType.ALL, max_results=4)
    assert len(page1) == 4
    assert page1.token
    page2 = store.search_experiments(ViewType.ALL, max_results=4, page_token=page1.token)
    assert len(page2) == 2
    assert page2.token is None
    seen = {e.experiment_id for e in page1} | {e.experiment_id for e in page2}
    assert len(seen) == 6


def test_search_filter_and_order(store: SqlTrackingStore) -> None:
    store.create_experiment("alpha", tags=[ExperimentTag("team", "x")])
    store.create_experiment("beta")
    found = store.search_experiments(filter_string="name LIKE 'al%'")
    assert [e.name for e in found] == ["alpha"]
    found = store.search_experiments(filter_string="tags.team = 'x'")
    assert [e.name for e in found] == ["alpha"]
    ordered = store.search_experiments(order_by=["name DESC"])
    assert [e.name for e in ordered] == ["beta", "alpha", "Default"]


@pytest.mark.parametrize("bad", [0, -1, 50001])
def test_search_max_results_bounds(store: SqlTrackingStore, bad: int) -> None:
    with pytest.raises(InvalidParameterValue, match="max_results"):
        store.search_experiments(max_results=bad)
