"""Each permission level on experiments, runs, logged models, artifacts and registered models,
search filtering, creator grants — through an auth-enabled app (real SQLite)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.server.auth.conftest import ADMIN, Credentials, MakeUser

API = "/api/2.0/mlflow"
GRANT = "/api/3.0/mlflow/users/permissions/grant"


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def _denied(response: Any) -> None:
    assert response.status_code == 403, response.text
    assert response.json() == {"error_code": "PERMISSION_DENIED", "message": "Permission denied"}


def _grant(api: TestClient, owner: Credentials, user: str, rtype: str, rid: str, perm: str) -> None:
    body = {"username": user, "resource_type": rtype, "resource_id": rid, "permission": perm}
    _ok(api.post(GRANT, json=body, auth=owner))


@pytest.fixture
def owned(auth_api: TestClient, new_user: MakeUser) -> dict[str, Any]:
    """An experiment with a run (metric, artifact) and a logged model, owned by a new user."""
    owner = new_user()
    exp_id = _ok(auth_api.post(f"{API}/experiments/create", json={"name": owner[0]}, auth=owner))[
        "experiment_id"
    ]
    run = _ok(auth_api.post(f"{API}/runs/create", json={"experiment_id": exp_id}, auth=owner))
    run_id = run["run"]["info"]["run_id"]
    batch = {"run_id": run_id, "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 0}]}
    _ok(auth_api.post(f"{API}/runs/log-batch", json=batch, auth=owner))
    path = f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/a.txt"
    assert auth_api.put(path, content=b"data", auth=owner).status_code == 200
    model = _ok(
        auth_api.post(
            f"{API}/logged-models", json={"experiment_id": exp_id, "name": "m"}, auth=owner
        )
    )
    return {"owner": owner, "exp": exp_id, "run": run_id, "artifact": path,
            "model": model["model"]["info"]["model_id"]}  # fmt: skip


def _attempts(api: TestClient, o: dict[str, Any], who: Credentials) -> dict[str, int]:
    """Status of one read, one update and one delete on each resource kind."""
    run, exp, model = o["run"], o["exp"], o["model"]
    metric = {"run_id": run, "key": "x", "value": 2, "timestamp": 2, "step": 1}
    history = {"run_id": run, "metric_key": "m"}
    tags = {"tags": [{"key": "k", "value": "v"}]}
    calls = {
        "read_exp": ("GET", f"{API}/experiments/get", {"params": {"experiment_id": exp}}),
        "read_run": ("GET", f"{API}/runs/get", {"params": {"run_id": run}}),
        "history": ("GET", f"{API}/metrics/get-history", {"params": history}),
        "read_model": ("GET", f"{API}/logged-models/{model}", {}),
        "download": ("GET", o["artifact"], {}),
        "log": ("POST", f"{API}/runs/log-metric", {"json": metric}),
        "new_run": ("POST", f"{API}/runs/create", {"json": {"experiment_id": exp}}),
        "tag_model": ("PATCH", f"{API}/logged-models/{model}/tags", {"json": tags}),
        "upload": ("PUT", o["artifact"].replace("a.txt", "b.txt"), {"content": b"x"}),
    }
    return {
        key: api.request(method, url, auth=who, **kwargs).status_code
        for key, (method, url, kwargs) in calls.items()
    }


@pytest.mark.parametrize(
    ("permission", "reads", "writes"),
    [("READ", 200, 403), ("USE", 200, 403), ("EDIT", 200, 200), ("NO_PERMISSIONS", 403, 403)],
)
def test_permission_levels_on_an_experiment_apply_to_its_runs_models_and_artifacts(
    auth_api: TestClient,
    new_user: MakeUser,
    owned: dict[str, Any],
    permission: str,
    reads: int,
    writes: int,
) -> None:
    user = new_user()
    _grant(auth_api, owned["owner"], user[0], "experiment", owned["exp"], permission)
    got = _attempts(auth_api, owned, user)
    for key in ("read_exp", "read_run", "history", "read_model", "download"):
        assert got[key] == reads, (key, got)
    for key in ("log", "new_run", "tag_model", "upload"):
        assert got[key] == writes, (key, got)
    # Deleting needs MANAGE, which only the owner (the creator) has here.
    delete = auth_api.post(f"{API}/runs/delete", json={"run_id": owned["run"]}, auth=user)
    _denied(delete)


def test_manage_allows_delete_and_granting(
    auth_api: TestClient, new_user: MakeUser, owned: dict[str, Any]
) -> None:
    manager, other = new_user(), new_user()
    _grant(auth_api, owned["owner"], manager[0], "experiment", owned["exp"], "MANAGE")
    _grant(auth_api, manager, other[0], "experiment", owned["exp"], "NO_PERMISSIONS")
    _denied(auth_api.get(f"{API}/runs/get", params={"run_id": owned["run"]}, auth=other))
    _ok(auth_api.post(f"{API}/runs/delete", json={"run_id": owned["run"]}, auth=manager))
    _ok(auth_api.post(f"{API}/runs/restore", json={"run_id": owned["run"]}, auth=manager))
    # A user without MANAGE cannot grant themselves more.
    body = {"username": other[0], "resource_type": "experiment", "resource_id": owned["exp"],
            "permission": "MANAGE"}  # fmt: skip
    _denied(auth_api.post(GRANT, json=body, auth=other))


def test_the_default_permission_is_read_and_admins_bypass(
    auth_api: TestClient, new_user: MakeUser, owned: dict[str, Any]
) -> None:
    stranger = new_user()
    got = _attempts(auth_api, owned, stranger)
    assert got["read_run"] == 200
    assert got["log"] == 403
    _grant(auth_api, owned["owner"], stranger[0], "experiment", owned["exp"], "NO_PERMISSIONS")
    admin_view = _attempts(auth_api, owned, ADMIN)
    assert set(admin_view.values()) == {200}, admin_view


def test_searches_show_only_what_the_caller_can_read(
    auth_api: TestClient, new_user: MakeUser
) -> None:
    owner, viewer = new_user(), new_user()
    ids = []
    for i in range(7):
        body = {"name": f"{owner[0]}-{i}"}
        ids.append(
            _ok(auth_api.post(f"{API}/experiments/create", json=body, auth=owner))["experiment_id"]
        )
    hidden = set(ids[1::2])  # every other one
    for exp_id in hidden:
        _grant(auth_api, owner, viewer[0], "experiment", exp_id, "NO_PERMISSIONS")
    # Paged two at a time: every page is full (refilled) and tokens stay exact.
    seen: list[str] = []
    token = None
    while True:
        body: dict[str, Any] = {"max_results": 2, "filter": f"name LIKE '{owner[0]}-%'"}
        if token:
            body["page_token"] = token
        page = _ok(auth_api.post(f"{API}/experiments/search", json=body, auth=viewer))
        got = [e["experiment_id"] for e in page.get("experiments", [])]
        token = page.get("next_page_token")
        assert len(got) == 2 or not token
        seen += got
        if not token:
            break
    assert sorted(seen) == sorted(set(ids) - hidden)
    assert len(seen) == len(set(seen))
    # search_runs drops the experiments the caller cannot read; all hidden → no runs.
    for exp_id in ids[:2]:
        _ok(auth_api.post(f"{API}/runs/create", json={"experiment_id": exp_id}, auth=owner))
    runs = _ok(auth_api.post(f"{API}/runs/search", json={"experiment_ids": ids[:2]}, auth=viewer))
    assert {r["info"]["experiment_id"] for r in runs["runs"]} == {ids[0]}
    assert (
        _ok(auth_api.post(f"{API}/runs/search", json={"experiment_ids": [ids[1]]}, auth=viewer))
        == {}
    )
    # The owner sees everything.
    everything = _ok(
        auth_api.post(f"{API}/runs/search", json={"experiment_ids": ids[:2]}, auth=owner)
    )
    assert len(everything["runs"]) == 2


def test_registered_model_permissions_rename_and_delete(
    auth_api: TestClient, new_user: MakeUser
) -> None:
    owner, reader, stranger = new_user(), new_user(), new_user()
    name = f"model-{owner[0]}"
    _ok(auth_api.post(f"{API}/registered-models/create", json={"name": name}, auth=owner))
    _grant(auth_api, owner, reader[0], "registered_model", name, "READ")
    _grant(auth_api, owner, stranger[0], "registered_model", name, "NO_PERMISSIONS")
    get = f"{API}/registered-models/get"
    _ok(auth_api.get(get, params={"name": name}, auth=reader))
    _denied(auth_api.get(get, params={"name": name}, auth=stranger))
    tag = {"name": name, "key": "k", "value": "v"}
    _denied(auth_api.post(f"{API}/registered-models/set-tag", json=tag, auth=reader))
    _ok(auth_api.post(f"{API}/registered-models/set-tag", json=tag, auth=owner))
    listed = _ok(
        auth_api.get(
            f"{API}/registered-models/search", params={"filter": f"name = '{name}'"}, auth=stranger
        )
    )
    assert listed == {}
    # Grants follow a rename, and go with a delete.
    new_name = name + "-v2"
    _ok(
        auth_api.post(
            f"{API}/registered-models/rename", json={"name": name, "new_name": new_name}, auth=owner
        )
    )
    _denied(auth_api.get(get, params={"name": new_name}, auth=stranger))
    _ok(auth_api.get(get, params={"name": new_name}, auth=reader))
    _denied(
        auth_api.request(
            "DELETE", f"{API}/registered-models/delete", json={"name": new_name}, auth=reader
        )
    )
    _ok(
        auth_api.request(
            "DELETE", f"{API}/registered-models/delete", json={"name": new_name}, auth=owner
        )
    )
    _ok(auth_api.post(f"{API}/registered-models/create", json={"name": new_name}, auth=new_user()))
    # A fresh model of the same name does not inherit the old grants: default READ again.
    _ok(auth_api.get(get, params={"name": new_name}, auth=stranger))


def test_artifact_paths_outside_an_experiment_are_for_admins(
    auth_api: TestClient, new_user: MakeUser
) -> None:
    user = new_user()
    base = "/api/2.0/mlflow-artifacts/artifacts"
    _denied(auth_api.put(f"{base}/loose/file.txt", content=b"x", auth=user))
    _denied(auth_api.get(base, params={"path": ""}, auth=user))
    assert auth_api.put(f"{base}/loose/file.txt", content=b"x", auth=ADMIN).status_code == 200
    assert auth_api.get(f"{base}/loose/file.txt", auth=ADMIN).content == b"x"
