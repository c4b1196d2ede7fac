"""Runs in the SQL store: creation, names, lifecycle, tags, inputs, search paging."""

from __future__ import annotations

import re

import pytest

from runyard.entities import Dataset, DatasetInput, InputTag, RunTag, ViewType
from runyard.errors import InvalidParameterValue, ResourceDoesNotExist
from runyard.store.sql.store import SqlTrackingStore


def test_create_run_fields(store: SqlTrackingStore, exp_id: str) -> None:
    run = store.create_run(exp_id, "alice", 1234, [RunTag("k", "v")], "named")
    info = run.info
    assert re.fullmatch(r"[0-9a-f]{32}", info.run_id)
    assert info.experiment_id == exp_id
    assert (info.user_id, info.status, info.start_time, info.end_time) == (
        "alice",
        "RUNNING",
        1234,
        None,
    )
    assert info.artifact_uri.endswith(f"/artifacts/{exp_id}/{info.run_id}/artifacts")
    assert run.data.tags == {"k": "v", "mlflow.runName": "named"}
    assert store.get_run(info.run_id) == run


def test_run_name_generated_and_tag_synced(store: SqlTrackingStore, exp_id: str) -> None:
    run = store.create_run(exp_id, "u", 1, [], None)
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{1,3}", run.info.run_name)
    assert run.data.tags["mlflow.runName"] == run.info.run_name
    by_tag = store.create_run(exp_id, "u", 1, [RunTag("mlflow.runName", "from-tag")], None)
    assert by_tag.info.run_name == "from-tag"
    with pytest.raises(InvalidParameterValue, match="different values"):
        store.create_run(exp_id, "u", 1, [RunTag("mlflow.runName", "a")], "b")


def test_rename_via_update_and_via_tag(store: SqlTrackingStore, run_id: str) -> None:
    store.update_run_info(run_id, None, None, "renamed")
    run = store.get_run(run_id)
    assert run.info.run_name == "renamed"
    assert run.data.tags["mlflow.runName"] == "renamed"
    store.log_batch(run_id, tags=[RunTag("mlflow.runName", "by-tag")])
    assert store.get_run(run_id).info.run_name == "by-tag"


def test_update_status_and_end_time(store: SqlTrackingStore, run_id: str) -> None:
    info = store.update_run_info(run_id, "FINISHED", 99, None)
    assert (info.status, info.end_time) == ("FINISHED", 99)
    with pytest.raises(InvalidParameterValue, match="Invalid RunStatus 'DONE'"):
        store.update_run_info(run_id, "DONE", None, None)


def test_unknown_run(store: SqlTrackingStore) -> None:
    with pytest.raises(ResourceDoesNotExist, match="Run with id=0123 not found"):
        store.get_run("0123")
    with pytest.raises(InvalidParameterValue, match="Invalid run ID"):
        store.get_run("../etc")


def test_deleted_run_readable_but_not_writable(store: SqlTrackingStore, run_id: str) -> None:
    store.delete_run(run_id)
    assert store.get_run(run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(InvalidParameterValue, match="must be in the 'active' state"):
        store.log_batch(run_id, tags=[RunTag("a", "b")])
    with pytest.raises(InvalidParameterValue, match="Current state is deleted"):
        store.update_run_info(run_id, "FINISHED", 1, None)
    store.restore_run(run_id)
    store.log_batch(run_id, tags=[RunTag("a", "b")])
    assert store.get_run(run_id).data.tags["a"] == "b"


def test_delete_tag(store: SqlTrackingStore, run_id: str) -> None:
    store.log_batch(run_id, tags=[RunTag("a", "1")])
    store.delete_tag(run_id, "a")
    assert "a" not in store.get_run(run_id).data.tags
    with pytest.raises(ResourceDoesNotExist, match="No tag with name: a"):
        store.delete_tag(run_id, "a")


def _dataset(name: str = "train", digest: str = "abc123") -> Dataset:
    return Dataset(name, digest, "local", '{"uri": "/data/train.csv"}', '{"mlflow_colspec": []}')


def test_log_inputs_dedupes_datasets(store: SqlTrackingStore, run_id: str) -> None:
    item = DatasetInput(_dataset(), [InputTag("mlflow.data.context", "training")])
    store.log_inputs(run_id, [item])
    store.log_inputs(run_id, [item])
    inputs = store.get_run(run_id).inputs.dataset_inputs
    assert inputs == [item]


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        (Dataset("", "d", "local", "{}"), "Dataset name must be provided"),
        (Dataset("n", "d" * 37, "local", "{}"), "digest is 37 characters"),
        (Dataset("n" * 501, "d", "local", "{}"), "name is 501 characters"),
    ],
)
def test_log_inputs_validation(
    store: SqlTrackingStore, run_id: str, dataset: Dataset, message: str
) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        store.log_inputs(run_id, [DatasetInput(dataset)])


def test_search_runs_default_order_and_paging(store: SqlTrackingStore, exp_id: str) -> None:
    ids = [store.create_run(exp_id, "u", t, [], None).info.run_id for t in (5, 3, 9, 1)]
    expected = [ids[2], ids[0], ids[1], ids[3]]  # start_time DESC
    got = store.search_runs([exp_id], max_results=3)
    assert [r.info.run_id for r in got] == expected[:3]
    assert got.token
    rest = store.search_runs([exp_id], max_results=3, page_token=got.token)
    assert [r.info.run_id for r in rest] == expected[3:]
    assert rest.token is None


def test_search_runs_view_type(store: SqlTrackingStore, exp_id: str) -> None:
    a = store.create_run(exp_id, "u", 1, [], None).info.run_id
    b = store.create_run(exp_id, "u", 2, [], None).info.run_id
    store.delete_run(a)
    assert [r.info.run_id for r in store.search_runs([exp_id])] == [b]
    deleted = store.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [a]
    assert len(store.search_runs([exp_id], run_view_type=ViewType.ALL)) == 2


def test_search_runs_returns_full_runs(store: SqlTrackingStore, exp_id: str) -> None:
    from runyard.entities import Metric, Param

    rid = store.create_run(exp_id, "u", 1, [], "full").info.run_id
    store.log_batch(rid, [Metric("m", 0.5, 1, 0)], [Param("p", "x")], [RunTag("t", "y")])
    [run] = store.search_runs([exp_id], "params.p = 'x'")
    assert run.data.metrics == {"m": 0.5}
    assert run.data.params == {"p": "x"}
    assert run.data.tags["t"] == "y"
    assert run == store.get_run(rid)


def test_search_runs_bad_token(store: SqlTrackingStore, exp_id: str) -> None:
    with pytest.raises(InvalidParameterValue, match="Invalid page token"):
        store.search_runs([exp_id], page_token="!!!notbase64")
