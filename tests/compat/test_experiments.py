"""Experiments through the official client: create, read, search, rename, delete, tags, errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ErrorCheck = Callable[..., None]

SCRIPT = """
P = PARAMS["prefix"]

with section("set_experiment") as out:
    exp = mlflow.set_experiment(f"{P}-fluent")
    again = mlflow.set_experiment(f"{P}-fluent")
    by_id = mlflow.set_experiment(experiment_id=exp.experiment_id)
    out["id"] = exp.experiment_id
    out["name"] = exp.name
    out["lifecycle_stage"] = exp.lifecycle_stage
    out["artifact_location"] = exp.artifact_location
    out["again_id"] = again.experiment_id
    out["by_id_name"] = by_id.name
    with mlflow.start_run() as run:
        pass
    out["run_experiment_id"] = client.get_run(run.info.run_id).info.experiment_id

with section("default") as out:
    default = client.get_experiment("0")
    out["name"] = default.name
    out["lifecycle_stage"] = default.lifecycle_stage

with section("create") as out:
    exp_id = client.create_experiment(
        f"{P}-created",
        artifact_location="s3://compat-bucket/some/where",
        tags={"team": "fraud", "mlflow.note.content": "notes"},
    )
    got = client.get_experiment(exp_id)
    out["id"] = exp_id
    out["name"] = got.name
    out["artifact_location"] = got.artifact_location
    out["tags"] = got.tags
    out["lifecycle_stage"] = got.lifecycle_stage
    out["creation_time"] = got.creation_time
    out["last_update_time"] = got.last_update_time
    by_name = client.get_experiment_by_name(f"{P}-created")
    out["by_name_id"] = by_name.experiment_id
    out["by_name_tags"] = by_name.tags
    out["unknown_by_name"] = repr(client.get_experiment_by_name(f"{P}-no-such-experiment"))
    out["fluent_get"] = mlflow.get_experiment(exp_id).name
    out["fluent_by_name"] = mlflow.get_experiment_by_name(f"{P}-created").experiment_id

with section("search") as out:
    ids = {}
    for i in range(7):
        group = "even" if i % 2 == 0 else "odd"
        ids[i] = client.create_experiment(f"{P}-search-{i:02d}", tags={"group": group})
    client.delete_experiment(ids[6])
    like = f"name LIKE '{P}-search-%'"

    def names(exps):
        return [e.name for e in exps]

    out["like_asc"] = names(client.search_experiments(filter_string=like, order_by=["name ASC"]))
    out["like_desc"] = names(client.search_experiments(filter_string=like, order_by=["name DESC"]))
    out["ilike"] = names(
        client.search_experiments(
            filter_string=f"name ILIKE '{P.upper()}-SEARCH-%'", order_by=["name"]
        )
    )
    out["eq"] = names(client.search_experiments(filter_string=f"name = '{P}-search-03'"))
    out["tag_even"] = names(
        client.search_experiments(
            filter_string=f"{like} AND tags.group = 'even'", order_by=["name ASC"]
        )
    )
    out["tag_null"] = names(
        client.search_experiments(filter_string=f"{like} AND tags.nosuch IS NULL")
    )
    out["id_in"] = names(
        client.search_experiments(
            filter_string=f"experiment_id IN ('{ids[1]}', '{ids[2]}')", order_by=["name ASC"]
        )
    )
    out["created_after"] = len(
        client.search_experiments(filter_string=f"{like} AND creation_time > 0")
    )
    out["default_order"] = names(client.search_experiments(filter_string=like))
    for view in ("ACTIVE_ONLY", "DELETED_ONLY", "ALL"):
        found = client.search_experiments(
            view_type=getattr(mlflow.entities.ViewType, view),
            filter_string=like,
            order_by=["name ASC"],
        )
        out["view_" + view] = names(found)
    pages, token = [], None
    while True:
        page = client.search_experiments(
            view_type=mlflow.entities.ViewType.ALL,
            max_results=3,
            filter_string=like,
            order_by=["name ASC"],
            page_token=token,
        )
        pages.append(names(page))
        token = page.token
        if not token:
            break
    out["pages"] = pages
    out["fluent_all"] = names(mlflow.search_experiments(filter_string=like, order_by=["name"]))

with section("rename") as out:
    exp_id = client.create_experiment(f"{P}-old-name")
    client.rename_experiment(exp_id, f"{P}-new-name")
    out["name"] = client.get_experiment(exp_id).name
    out["old_lookup"] = repr(client.get_experiment_by_name(f"{P}-old-name"))
    out["new_lookup"] = client.get_experiment_by_name(f"{P}-new-name").experiment_id
    out["id"] = exp_id
    other = client.create_experiment(f"{P}-rename-clash")
    out["clash"] = error_of(client.rename_experiment, other, f"{P}-new-name")

with section("delete_restore") as out:
    exp_id = client.create_experiment(f"{P}-deleted")
    run = client.create_run(exp_id)
    client.delete_experiment(exp_id)
    out["stage_after_delete"] = client.get_experiment(exp_id).lifecycle_stage
    out["by_name_after_delete"] = client.get_experiment_by_name(f"{P}-deleted").lifecycle_stage
    out["run_after_delete"] = client.get_run(run.info.run_id).info.lifecycle_stage
    out["create_run_in_deleted"] = error_of(client.create_run, exp_id)
    out["set_deleted"] = error_of(mlflow.set_experiment, f"{P}-deleted")
    out["recreate_deleted_name"] = error_of(client.create_experiment, f"{P}-deleted")
    client.restore_experiment(exp_id)
    out["stage_after_restore"] = client.get_experiment(exp_id).lifecycle_stage
    out["run_after_restore"] = client.get_run(run.info.run_id).info.lifecycle_stage
    out["fluent_delete"] = mlflow.delete_experiment(exp_id) is None
    out["stage_after_fluent_delete"] = client.get_experiment(exp_id).lifecycle_stage

with section("tags") as out:
    exp_id = client.create_experiment(f"{P}-tags")
    client.set_experiment_tag(exp_id, "a", "1")
    client.set_experiment_tag(exp_id, "b", "2")
    client.set_experiment_tag(exp_id, "a", "updated")
    client.set_experiment_tag(exp_id, "empty", "")
    out["after_set"] = client.get_experiment(exp_id).tags
    client.delete_experiment_tag(exp_id, "b")
    out["after_delete"] = client.get_experiment(exp_id).tags
    out["delete_missing"] = error_of(client.delete_experiment_tag, exp_id, "never-set")
    mlflow.set_experiment(experiment_id=exp_id)
    mlflow.set_experiment_tags({"x": "10", "y": "20"})
    out["fluent"] = client.get_experiment(exp_id).tags

with section("errors") as out:
    client.create_experiment(f"{P}-dup")
    out["duplicate"] = error_of(client.create_experiment, f"{P}-dup")
    out["unknown_id"] = error_of(client.get_experiment, "987654321")
    out["non_integer_id"] = error_of(client.get_experiment, "abc")
    out["delete_unknown"] = error_of(client.delete_experiment, "987654321")
    out["tag_unknown"] = error_of(client.set_experiment_tag, "987654321", "k", "v")
    out["empty_name"] = error_of(client.create_experiment, "")
    out["long_name"] = error_of(client.create_experiment, "x" * 501)
    out["bad_scheme"] = error_of(
        client.create_experiment, f"{P}-ftp", artifact_location="ftp://elsewhere/x"
    )
    out["bad_filter"] = error_of(client.search_experiments, filter_string="name = 'a' OR b = 'c'")
    out["bad_order"] = error_of(client.search_experiments, order_by=["bogus ASC"])
    out["zero_results"] = error_of(client.search_experiments, max_results=0)
    out["too_many_results"] = error_of(client.search_experiments, max_results=50001)
"""


@pytest.fixture(scope="module")
def res(run_client: Any, prefix: str) -> Any:
    return run_client(SCRIPT, {"prefix": prefix})


def test_set_experiment_creates_then_reuses(res: Any, prefix: str) -> None:
    out = res["set_experiment"]
    assert out["name"] == f"{prefix}-fluent"
    assert out["id"].isdigit()
    assert out["lifecycle_stage"] == "active"
    assert out["artifact_location"] == f"mlflow-artifacts:/{out['id']}"
    assert out["again_id"] == out["id"]
    assert out["by_id_name"] == f"{prefix}-fluent"
    assert out["run_experiment_id"] == out["id"]


def test_default_experiment(res: Any) -> None:
    assert res["default"] == {"name": "Default", "lifecycle_stage": "active"}


def test_create_with_tags_and_artifact_location(res: Any, prefix: str) -> None:
    out = res["create"]
    assert out["name"] == f"{prefix}-created"
    assert out["artifact_location"] == "s3://compat-bucket/some/where"
    assert out["tags"] == {"team": "fraud", "mlflow.note.content": "notes"}
    assert out["lifecycle_stage"] == "active"
    assert out["creation_time"] > 1_600_000_000_000
    assert out["last_update_time"] >= out["creation_time"]


def test_get_and_get_by_name(res: Any, prefix: str) -> None:
    out = res["create"]
    assert out["by_name_id"] == out["id"]
    assert out["by_name_tags"] == out["tags"]
    assert out["unknown_by_name"] == "None"
    assert out["fluent_get"] == f"{prefix}-created"
    assert out["fluent_by_name"] == out["id"]


def test_search_filters(res: Any, prefix: str) -> None:
    out = res["search"]
    active = [f"{prefix}-search-{i:02d}" for i in range(6)]
    assert out["like_asc"] == active
    assert out["like_desc"] == active[::-1]
    assert out["ilike"] == active
    assert out["eq"] == [f"{prefix}-search-03"]
    assert out["tag_even"] == [active[0], active[2], active[4]]
    assert sorted(out["tag_null"]) == active
    assert out["id_in"] == [active[1], active[2]]
    assert out["created_after"] == 6


def test_search_default_order_is_newest_first(res: Any, prefix: str) -> None:
    # creation_time DESC, then experiment_id: the last one created comes first.
    assert res["search"]["default_order"] == [f"{prefix}-search-{i:02d}" for i in range(5, -1, -1)]


def test_search_view_types(res: Any, prefix: str) -> None:
    out = res["search"]
    names = [f"{prefix}-search-{i:02d}" for i in range(7)]
    assert out["view_ACTIVE_ONLY"] == names[:6]
    assert out["view_DELETED_ONLY"] == [names[6]]
    assert out["view_ALL"] == names


def test_search_paging(res: Any, prefix: str) -> None:
    names = [f"{prefix}-search-{i:02d}" for i in range(7)]
    assert res["search"]["pages"] == [names[0:3], names[3:6], names[6:7]]
    assert res["search"]["fluent_all"] == names[:6]


def test_rename(res: Any, prefix: str) -> None:
    out = res["rename"]
    assert out["name"] == f"{prefix}-new-name"
    assert out["old_lookup"] == "None"
    assert out["new_lookup"] == out["id"]
    clash = out["clash"]
    assert clash is not None, "renaming onto an existing name succeeded"
    assert clash["http_status"] == 400, clash
    assert clash["error_code"] in {"RESOURCE_ALREADY_EXISTS", "BAD_REQUEST"}, clash


def test_delete_and_restore(res: Any, prefix: str, assert_error: ErrorCheck) -> None:
    out = res["delete_restore"]
    assert out["stage_after_delete"] == "deleted"
    assert out["by_name_after_delete"] == "deleted"
    assert out["run_after_delete"] == "deleted"
    assert_error(out["create_run_in_deleted"], "INVALID_PARAMETER_VALUE", 400, "active")
    # Client-side refusal, driven by the lifecycle_stage the server returned.
    assert_error(out["set_deleted"], "INVALID_PARAMETER_VALUE", 400, "Cannot set a deleted")
    assert_error(out["recreate_deleted_name"], "RESOURCE_ALREADY_EXISTS", 400, f"{prefix}-deleted")
    assert out["stage_after_restore"] == "active"
    assert out["run_after_restore"] == "active"
    assert out["fluent_delete"] is True
    assert out["stage_after_fluent_delete"] == "deleted"


def test_experiment_tags(res: Any, assert_error: ErrorCheck) -> None:
    out = res["tags"]
    assert out["after_set"] == {"a": "updated", "b": "2", "empty": ""}
    assert out["after_delete"] == {"a": "updated", "empty": ""}
    assert_error(out["delete_missing"], "RESOURCE_DOES_NOT_EXIST", 404, "never-set")
    assert out["fluent"] == {"a": "updated", "empty": "", "x": "10", "y": "20"}


def test_error_codes_the_client_branches_on(
    res: Any, prefix: str, assert_error: ErrorCheck
) -> None:
    out = res["errors"]
    assert_error(out["duplicate"], "RESOURCE_ALREADY_EXISTS", 400, f"{prefix}-dup")
    assert_error(out["unknown_id"], "RESOURCE_DOES_NOT_EXIST", 404, "987654321")
    assert_error(out["non_integer_id"], "INVALID_PARAMETER_VALUE", 400, "abc")
    assert_error(out["delete_unknown"], "RESOURCE_DOES_NOT_EXIST", 404)
    assert_error(out["tag_unknown"], "RESOURCE_DOES_NOT_EXIST", 404)


def test_invalid_names_and_arguments(res: Any, assert_error: ErrorCheck) -> None:
    out = res["errors"]
    assert_error(out["empty_name"], "INVALID_PARAMETER_VALUE", 400, "name")
    assert_error(out["long_name"], "INVALID_PARAMETER_VALUE", 400, "500")
    assert_error(out["bad_scheme"], "INVALID_PARAMETER_VALUE", 400, "ftp")
    assert_error(out["bad_filter"], "INVALID_PARAMETER_VALUE", 400, "Invalid clause")
    assert_error(out["bad_order"], "INVALID_PARAMETER_VALUE", 400, "bogus")
    assert_error(out["zero_results"], "INVALID_PARAMETER_VALUE", 400, "max_results")
    assert_error(out["too_many_results"], "INVALID_PARAMETER_VALUE", 400, "50000")
