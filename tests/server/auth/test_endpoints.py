"""The auth management endpoints on an auth-enabled app: MLflow's users and permissions API
(2.0, 3.0 and the legacy per-resource verbs) and runyard's tokens and audit log.

Each test makes its own users (unique names) on one app per module; every check goes through
HTTP with real credentials, so refusals come from the real policy table and invalidation is
observed the way a client sees it.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from starlette.testclient import TestClient

from tests.server.auth.conftest import ADMIN, ADMIN_USERNAME, PASSWORD, MakeUser, unique_name

V2 = "/api/2.0/mlflow"
V3 = "/api/3.0/mlflow"
RY = "/api/2.0/runyard"


def check_error(response: httpx.Response, status: int, code: str, fragment: str = "") -> None:
    """The response is MLflow's JSON error with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    assert fragment in body["message"], body


def make_experiment(api: TestClient, auth: tuple[str, str] = ADMIN) -> str:
    response = api.post(f"{V2}/experiments/create", json={"name": unique_name("exp")}, auth=auth)
    assert response.status_code == 200, response.text
    return str(response.json()["experiment_id"])


def create_run(api: TestClient, exp_id: str, auth: tuple[str, str]) -> httpx.Response:
    return api.post(f"{V2}/runs/create", json={"experiment_id": exp_id}, auth=auth)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- users/create -----------------------------------------------------------------------------
def test_create_user_returns_the_user_who_can_then_sign_in(auth_api: TestClient) -> None:
    name = unique_name()
    response = auth_api.post(
        f"{V2}/users/create", json={"username": name, "password": PASSWORD}, auth=ADMIN
    )
    assert response.status_code == 200, response.text
    user = response.json()["user"]
    assert user["username"] == name
    assert user["is_admin"] is False
    assert isinstance(user["id"], int)
    # MLflow 2.x clients parse these arrays too.
    assert user["experiment_permissions"] == []
    assert user["registered_model_permissions"] == []
    current = auth_api.get(f"{V2}/users/current", auth=(name, PASSWORD))
    assert current.status_code == 200
    assert current.json() == {
        "is_basic_auth": True,
        "user": {"id": user["id"], "username": name, "is_admin": False},
    }


def test_create_user_errors(auth_api: TestClient, new_user: MakeUser) -> None:
    name, _ = new_user()
    taken = auth_api.post(
        f"{V2}/users/create", json={"username": name, "password": PASSWORD}, auth=ADMIN
    )
    check_error(taken, 400, "RESOURCE_ALREADY_EXISTS", name)
    empty = auth_api.post(
        f"{V2}/users/create", json={"username": unique_name(), "password": ""}, auth=ADMIN
    )
    check_error(empty, 400, "INVALID_PARAMETER_VALUE", "Username and password cannot be empty")
    short = auth_api.post(
        f"{V2}/users/create", json={"username": unique_name(), "password": "short"}, auth=ADMIN
    )
    check_error(short, 400, "INVALID_PARAMETER_VALUE", "at least 8 characters")
    form = auth_api.post(
        f"{V2}/users/create", data={"username": unique_name(), "password": PASSWORD}, auth=ADMIN
    )
    check_error(form, 400, "INVALID_PARAMETER_VALUE", "Content-Type")


def test_create_user_needs_an_admin(auth_api: TestClient, new_user: MakeUser) -> None:
    user = new_user()
    body = {"username": unique_name(), "password": PASSWORD}
    check_error(
        auth_api.post(f"{V2}/users/create", json=body, auth=user),
        403,
        "PERMISSION_DENIED",
        "Permission denied",
    )
    anonymous = auth_api.post(f"{V2}/users/create", json=body)
    check_error(anonymous, 401, "UNAUTHENTICATED")
    assert anonymous.headers["www-authenticate"] == 'Basic realm="mlflow"'


# -- users/get, current, list -----------------------------------------------------------------
def test_get_user_for_admin_and_self(auth_api: TestClient, new_user: MakeUser) -> None:
    alice, bob = new_user(), new_user()
    exp_id = make_experiment(auth_api)
    auth_api.post(
        f"{V3}/users/permissions/grant",
        json={"username": alice[0], "resource_type": "experiment", "resource_id": exp_id,
              "permission": "EDIT"},
        auth=ADMIN,
    )  # fmt: skip
    by_admin = auth_api.get(f"{V2}/users/get", params={"username": alice[0]}, auth=ADMIN)
    assert by_admin.status_code == 200, by_admin.text
    user = by_admin.json()["user"]
    assert user["username"] == alice[0]
    assert user["is_admin"] is False
    assert user["experiment_permissions"] == [
        {"experiment_id": exp_id, "user_id": user["id"], "permission": "EDIT"}
    ]
    by_self = auth_api.get(f"{V2}/users/get", params={"username": alice[0]}, auth=alice)
    assert by_self.json() == by_admin.json()
    check_error(
        auth_api.get(f"{V2}/users/get", params={"username": alice[0]}, auth=bob),
        403,
        "PERMISSION_DENIED",
    )
    check_error(
        auth_api.get(f"{V2}/users/get", params={"username": "nobody-here"}, auth=ADMIN),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "User with username=nobody-here not found",
    )


def test_list_users(auth_api: TestClient, new_user: MakeUser) -> None:
    user = new_user()
    response = auth_api.get(f"{V2}/users/list", auth=ADMIN)
    assert response.status_code == 200
    users = {u["username"]: u for u in response.json()["users"]}
    assert users[ADMIN_USERNAME]["is_admin"] is True
    assert users[user[0]] == {
        "id": users[user[0]]["id"],
        "username": user[0],
        "is_admin": False,
        "roles": [],
    }
    check_error(auth_api.get(f"{V2}/users/list", auth=user), 403, "PERMISSION_DENIED")


def test_endpoints_answer_under_ajax_api_too(auth_api: TestClient, new_user: MakeUser) -> None:
    user = new_user()
    response = auth_api.get("/ajax-api/2.0/mlflow/users/current", auth=user)
    assert response.json()["user"]["username"] == user[0]
    response = auth_api.get("/ajax-api/3.0/mlflow/users/current/permissions", auth=user)
    assert response.json() == {"is_admin": False, "permissions": []}


# -- users/update-password --------------------------------------------------------------------
def test_admin_sets_a_password_and_the_old_one_stops_working_at_once(
    auth_api: TestClient, new_user: MakeUser
) -> None:
    name, old = new_user()
    assert auth_api.get(f"{V2}/users/current", auth=(name, old)).status_code == 200  # cached
    response = auth_api.patch(
        f"{V2}/users/update-password",
        json={"username": name, "password": "brand-new-pass"},
        auth=ADMIN,
    )
    assert response.status_code == 200
    assert response.json() == {}
    check_error(auth_api.get(f"{V2}/users/current", auth=(name, old)), 401, "UNAUTHENTICATED")
    assert auth_api.get(f"{V2}/users/current", auth=(name, "brand-new-pass")).status_code == 200


def test_changing_your_own_password_needs_the_current_one(
    auth_api: TestClient, new_user: MakeUser
) -> None:
    name, old = new_user()
    path = f"{V2}/users/update-password"
    missing = auth_api.patch(path, json={"username": name, "password": "next-pass-1"},
                             auth=(name, old))  # fmt: skip
    check_error(missing, 400, "INVALID_PARAMETER_VALUE", "Current password is required")
    wrong = auth_api.patch(
        path,
        json={"username": name, "password": "next-pass-1", "current_password": "not-it-at-all"},
        auth=(name, old),
    )
    check_error(wrong, 400, "INVALID_PARAMETER_VALUE", "Current password does not match")
    same = auth_api.patch(
        path, json={"username": name, "password": old, "current_password": old}, auth=(name, old)
    )
    check_error(same, 400, "INVALID_PARAMETER_VALUE", "must differ")
    done = auth_api.patch(
        path,
        json={"username": name, "password": "next-pass-1", "current_password": old},
        auth=(name, old),
    )
    assert done.status_code == 200, done.text
    check_error(auth_api.get(f"{V2}/users/current", auth=(name, old)), 401, "UNAUTHENTICATED")
    assert auth_api.get(f"{V2}/users/current", auth=(name, "next-pass-1")).status_code == 200


def test_password_rules_and_refusals(auth_api: TestClient, new_user: MakeUser) -> None:
    alice, bob = new_user(), new_user()
    path = f"{V2}/users/update-password"
    other = auth_api.patch(path, json={"username": bob[0], "password": "hijacked-1"}, auth=alice)
    check_error(other, 403, "PERMISSION_DENIED")
    assert auth_api.get(f"{V2}/users/current", auth=bob).status_code == 200
    short = auth_api.patch(path, json={"username": bob[0], "password": "short"}, auth=ADMIN)
    check_error(short, 400, "INVALID_PARAMETER_VALUE", "at least 8 characters")
    unknown = auth_api.patch(path, json={"username": "ghost-user", "password": "whatever-1"},
                             auth=ADMIN)  # fmt: skip
    check_error(unknown, 404, "RESOURCE_DOES_NOT_EXIST", "username=ghost-user")


# -- users/update-admin, users/delete ---------------------------------------------------------
def test_update_admin_applies_at_once(auth_api: TestClient, new_user: MakeUser) -> None:
    user = new_user()
    check_error(auth_api.get(f"{V2}/users/list", auth=user), 403, "PERMISSION_DENIED")
    path = f"{V2}/users/update-admin"
    response = auth_api.patch(path, json={"username": user[0], "is_admin": True}, auth=ADMIN)
    assert response.status_code == 200
    assert response.json() == {}
    assert auth_api.get(f"{V2}/users/list", auth=user).status_code == 200
    assert auth_api.get(f"{V2}/users/current", auth=user).json()["user"]["is_admin"] is True
    auth_api.patch(path, json={"username": user[0], "is_admin": "false"}, auth=ADMIN)
    check_error(auth_api.get(f"{V2}/users/list", auth=user), 403, "PERMISSION_DENIED")


def test_update_admin_refusals(auth_api: TestClient, new_user: MakeUser) -> None:
    alice, bob = new_user(), new_user()
    path = f"{V2}/users/update-admin"
    check_error(
        auth_api.patch(path, json={"username": alice[0], "is_admin": True}, auth=alice),
        403,
        "PERMISSION_DENIED",
    )
    check_error(
        auth_api.patch(path, json={"username": "ghost-user", "is_admin": True}, auth=ADMIN),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    check_error(
        auth_api.patch(path, json={"username": bob[0]}, auth=ADMIN),
        400,
        "INVALID_PARAMETER_VALUE",
        "is_admin",
    )


def test_delete_user_ends_their_password_and_tokens_at_once(
    auth_api: TestClient, new_user: MakeUser
) -> None:
    user = new_user()
    token = auth_api.post(f"{RY}/tokens/create", json={"name": "t"}, auth=user).json()["token"]
    assert auth_api.get(f"{V2}/users/current", headers=bearer(token)).status_code == 200
    response = auth_api.request(
        "DELETE", f"{V2}/users/delete", json={"username": user[0]}, auth=ADMIN
    )
    assert response.status_code == 200
    assert response.json() == {}
    check_error(auth_api.get(f"{V2}/users/current", auth=user), 401, "UNAUTHENTICATED")
    check_error(auth_api.get(f"{V2}/users/current", headers=bearer(token)), 401, "UNAUTHENTICATED")
    again = auth_api.request("DELETE", f"{V2}/users/delete", json={"username": user[0]},
                             auth=ADMIN)  # fmt: skip
    check_error(again, 404, "RESOURCE_DOES_NOT_EXIST")


def test_nobody_deletes_themselves_and_users_delete_nobody(
    auth_api: TestClient, new_user: MakeUser
) -> None:
    admin2 = new_user(admin=True)
    own = auth_api.request("DELETE", f"{V2}/users/delete", json={"username": admin2[0]},
                           auth=admin2)  # fmt: skip
    check_error(own, 400, "BAD_REQUEST", "cannot delete their own account")
    user = new_user()
    other = auth_api.request("DELETE", f"{V2}/users/delete", json={"username": admin2[0]},
                             auth=user)  # fmt: skip
    check_error(other, 403, "PERMISSION_DENIED")
    assert auth_api.get(f"{V2}/users/current", auth=admin2).status_code == 200


# -- 3.0 permissions --------------------------------------------------------------------------
def _grant(api: TestClient, username: str, exp_id: str, permission: str,
           auth: tuple[str, str] = ADMIN) -> httpx.Response:  # fmt: skip
    body = {"username": username, "resource_type": "experiment", "resource_id": exp_id,
            "permission": permission}  # fmt: skip
    return api.post(f"{V3}/users/permissions/grant", json=body, auth=auth)


def _get_permission(api: TestClient, username: str, rtype: str, rid: str) -> dict[str, Any]:
    params = {"username": username, "resource_type": rtype, "resource_id": rid}
    response = api.get(f"{V3}/users/permissions/get", params=params, auth=ADMIN)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


def test_grant_get_list_revoke(auth_api: TestClient, new_user: MakeUser) -> None:
    name, password = new_user()
    exp_id = make_experiment(auth_api)
    # Default permission (READ): may read, may not log.
    assert _get_permission(auth_api, name, "experiment", exp_id) == {
        "allowed": False,
        "permission": "READ",
    }
    check_error(create_run(auth_api, exp_id, (name, password)), 403, "PERMISSION_DENIED")
    granted = _grant(auth_api, name, exp_id, "edit")
    assert granted.status_code == 200
    assert granted.json() == {}
    assert _get_permission(auth_api, name, "experiment", exp_id) == {
        "allowed": True,
        "permission": "EDIT",
    }
    assert create_run(auth_api, exp_id, (name, password)).status_code == 200  # at once
    listed = auth_api.get(f"{V3}/users/permissions/list", params={"username": name}, auth=ADMIN)
    doc = listed.json()
    assert doc["is_admin"] is False
    [row] = doc["permissions"]
    assert row["permission"] == "EDIT"
    assert row["resource_type"] == "experiment"
    assert row["resource_pattern"] == exp_id
    assert {"role_id", "role_name", "workspace"} <= set(row)
    own = auth_api.get(f"{V3}/users/current/permissions", auth=(name, password))
    assert own.json() == doc
    body = {"username": name, "resource_type": "experiment", "resource_id": exp_id}
    revoked = auth_api.post(f"{V3}/users/permissions/revoke", json=body, auth=ADMIN)
    assert revoked.status_code == 200
    assert revoked.json() == {}
    check_error(create_run(auth_api, exp_id, (name, password)), 403, "PERMISSION_DENIED")
    again = auth_api.post(f"{V3}/users/permissions/revoke", json=body, auth=ADMIN)
    check_error(again, 404, "RESOURCE_DOES_NOT_EXIST")


def test_registered_model_grants_and_admin_permission(
    auth_api: TestClient, new_user: MakeUser
) -> None:
    name, _ = new_user()
    body = {"username": name, "resource_type": "registered_model", "resource_id": "fraud",
            "permission": "USE"}  # fmt: skip
    assert auth_api.post(f"{V3}/users/permissions/grant", json=body, auth=ADMIN).json() == {}
    assert _get_permission(auth_api, name, "registered_model", "fraud") == {
        "allowed": True,
        "permission": "USE",
    }
    assert _get_permission(auth_api, ADMIN_USERNAME, "experiment", "12345") == {
        "allowed": True,
        "permission": "MANAGE",
    }


def test_permission_errors(auth_api: TestClient, new_user: MakeUser) -> None:
    alice, bob = new_user(), new_user()
    exp_id = make_experiment(auth_api)
    check_error(
        _grant(auth_api, alice[0], exp_id, "ALL_OF_IT"), 400, "INVALID_PARAMETER_VALUE", "READ"
    )
    bad_type = {"username": alice[0], "resource_type": "prompt", "resource_id": "x",
                "permission": "READ"}  # fmt: skip
    check_error(
        auth_api.post(f"{V3}/users/permissions/grant", json=bad_type, auth=ADMIN),
        400,
        "INVALID_PARAMETER_VALUE",
        "resource_type",
    )
    check_error(_grant(auth_api, "ghost-user", exp_id, "READ"), 404, "RESOURCE_DOES_NOT_EXIST")
    # Without MANAGE on the experiment, a user cannot grant on it (not even to themselves).
    check_error(_grant(auth_api, alice[0], exp_id, "MANAGE", auth=alice), 403, "PERMISSION_DENIED")
    check_error(
        auth_api.get(f"{V3}/users/permissions/list", params={"username": alice[0]}, auth=bob),
        403,
        "PERMISSION_DENIED",
    )
    params = {"username": "ghost-user", "resource_type": "experiment", "resource_id": exp_id}
    check_error(
        auth_api.get(f"{V3}/users/permissions/get", params=params, auth=ADMIN),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_the_creator_of_an_experiment_manages_it(auth_api: TestClient, new_user: MakeUser) -> None:
    owner, other = new_user(), new_user()
    exp_id = make_experiment(auth_api, auth=owner)
    assert _get_permission(auth_api, owner[0], "experiment", exp_id)["permission"] == "MANAGE"
    assert _grant(auth_api, other[0], exp_id, "EDIT", auth=owner).status_code == 200
    assert create_run(auth_api, exp_id, other).status_code == 200


# -- legacy per-resource permissions ----------------------------------------------------------
def test_legacy_experiment_permissions(auth_api: TestClient, new_user: MakeUser) -> None:
    name, password = new_user()
    user_id = auth_api.get(f"{V2}/users/current", auth=(name, password)).json()["user"]["id"]
    exp_id = make_experiment(auth_api)
    base = f"{V2}/experiments/permissions"
    body = {"experiment_id": exp_id, "username": name, "permission": "EDIT"}
    created = auth_api.post(f"{base}/create", json=body, auth=ADMIN)
    expected = {"experiment_id": exp_id, "user_id": user_id, "permission": "EDIT"}
    assert created.json() == {"experiment_permission": expected}
    check_error(
        auth_api.post(f"{base}/create", json=body, auth=ADMIN),
        400,
        "RESOURCE_ALREADY_EXISTS",
        f"experiment_id={exp_id}, username={name}",
    )
    key = {"experiment_id": exp_id, "username": name}
    got = auth_api.get(f"{base}/get", params=key, auth=ADMIN)
    assert got.json() == {"experiment_permission": expected}
    assert create_run(auth_api, exp_id, (name, password)).status_code == 200
    updated = auth_api.patch(f"{base}/update", json={**key, "permission": "READ"}, auth=ADMIN)
    assert updated.status_code == 200
    assert updated.json() == {}
    assert auth_api.get(f"{base}/get", params=key, auth=ADMIN).json()[
        "experiment_permission"
    ]["permission"] == "READ"  # fmt: skip
    check_error(create_run(auth_api, exp_id, (name, password)), 403, "PERMISSION_DENIED")
    deleted = auth_api.request("DELETE", f"{base}/delete", json=key, auth=ADMIN)
    assert deleted.status_code == 200
    assert deleted.json() == {}
    check_error(
        auth_api.get(f"{base}/get", params=key, auth=ADMIN),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        f"Experiment permission with experiment_id={exp_id} and username={name} not found",
    )
    for method, verb in (("PATCH", "update"), ("DELETE", "delete")):
        missing = auth_api.request(method, f"{base}/{verb}", json={**key, "permission": "READ"},
                                   auth=ADMIN)  # fmt: skip
        check_error(missing, 404, "RESOURCE_DOES_NOT_EXIST")


def test_legacy_registered_model_permissions(auth_api: TestClient, new_user: MakeUser) -> None:
    name, password = new_user()
    user_id = auth_api.get(f"{V2}/users/current", auth=(name, password)).json()["user"]["id"]
    base = f"{V2}/registered-models/permissions"
    model = unique_name("model")
    body = {"name": model, "username": name, "permission": "MANAGE"}
    created = auth_api.post(f"{base}/create", json=body, auth=ADMIN)
    expected = {"name": model, "user_id": user_id, "permission": "MANAGE"}
    assert created.json() == {"registered_model_permission": expected}
    key = {"name": model, "username": name}
    assert auth_api.get(f"{base}/get", params=key, auth=ADMIN).json() == {
        "registered_model_permission": expected
    }
    got = auth_api.get(f"{V2}/users/get", params={"username": name}, auth=ADMIN).json()["user"]
    assert got["registered_model_permissions"] == [expected]
    assert auth_api.patch(f"{base}/update", json={**key, "permission": "READ"},
                          auth=ADMIN).status_code == 200  # fmt: skip
    assert auth_api.request("DELETE", f"{base}/delete", json=key, auth=ADMIN).json() == {}
    check_error(
        auth_api.get(f"{base}/get", params=key, auth=ADMIN),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        f"Registered model permission with name={model} and username={name} not found",
    )
    check_error(
        auth_api.post(f"{base}/create", json={**body, "permission": "OWNER"}, auth=ADMIN),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_legacy_permissions_need_manage(auth_api: TestClient, new_user: MakeUser) -> None:
    user = new_user()
    exp_id = make_experiment(auth_api)
    body = {"experiment_id": exp_id, "username": user[0], "permission": "MANAGE"}
    check_error(
        auth_api.post(f"{V2}/experiments/permissions/create", json=body, auth=user),
        403,
        "PERMISSION_DENIED",
    )


# -- tokens -----------------------------------------------------------------------------------
def test_token_lifecycle(auth_api: TestClient, new_user: MakeUser) -> None:
    user = new_user()
    created = auth_api.post(
        f"{RY}/tokens/create", json={"name": "ci", "expires_in_days": 2}, auth=user
    )
    assert created.status_code == 200, created.text
    doc = created.json()
    token, info = doc["token"], doc["token_info"]
    assert token.startswith("ryt_")
    assert info["name"] == "ci"
    assert info["username"] == user[0]
    assert isinstance(info["id"], int)
    days = (info["expiration_time"] - info["creation_time"]) / 86_400_000
    assert abs(days - 2) < 0.01
    me = auth_api.get(f"{V2}/users/current", headers=bearer(token))
    assert me.json()["user"]["username"] == user[0]
    listed = auth_api.get(f"{RY}/tokens/list", auth=user).json()["tokens"]
    assert [t["id"] for t in listed] == [info["id"]]
    assert "token" not in listed[0]
    assert token not in str(listed)
    revoked = auth_api.post(f"{RY}/tokens/revoke", json={"token_id": info["id"]}, auth=user)
    assert revoked.status_code == 200
    assert revoked.json() == {}
    check_error(auth_api.get(f"{V2}/users/current", headers=bearer(token)), 401, "UNAUTHENTICATED")
    assert auth_api.get(f"{RY}/tokens/list", auth=user).json() == {"tokens": []}
    again = auth_api.post(f"{RY}/tokens/revoke", json={"token_id": info["id"]}, auth=user)
    check_error(again, 404, "RESOURCE_DOES_NOT_EXIST")


def test_default_token_expiry_and_limits(auth_api: TestClient, new_user: MakeUser) -> None:
    user = new_user()
    info = auth_api.post(f"{RY}/tokens/create", json={}, auth=user).json()["token_info"]
    assert info["name"] == "token"
    days = (info["expiration_time"] - info["creation_time"]) / 86_400_000
    assert abs(days - 90) < 0.01  # the configured default
    too_long = auth_api.post(f"{RY}/tokens/create", json={"expires_in_days": 1000}, auth=user)
    check_error(too_long, 400, "INVALID_PARAMETER_VALUE", "at most 365")
    zero = auth_api.post(f"{RY}/tokens/create", json={"expires_in_days": 0}, auth=user)
    check_error(zero, 400, "INVALID_PARAMETER_VALUE", "expires_in_days")


def test_only_admins_handle_other_users_tokens(auth_api: TestClient, new_user: MakeUser) -> None:
    alice, bob = new_user(), new_user()
    bob_token = auth_api.post(f"{RY}/tokens/create", json={"name": "b"}, auth=bob).json()
    token_id = bob_token["token_info"]["id"]
    for response in (
        auth_api.post(f"{RY}/tokens/create", json={"username": bob[0]}, auth=alice),
        auth_api.get(f"{RY}/tokens/list", params={"username": bob[0]}, auth=alice),
        auth_api.post(f"{RY}/tokens/revoke", json={"token_id": token_id, "username": bob[0]},
                      auth=alice),
    ):  # fmt: skip
        check_error(response, 403, "PERMISSION_DENIED")
    # Alice cannot revoke Bob's token by id through her own name either.
    mine = auth_api.post(f"{RY}/tokens/revoke", json={"token_id": token_id}, auth=alice)
    check_error(mine, 404, "RESOURCE_DOES_NOT_EXIST")
    assert (
        auth_api.get(f"{V2}/users/current", headers=bearer(bob_token["token"])).status_code == 200
    )
    made = auth_api.post(f"{RY}/tokens/create", json={"username": bob[0], "name": "by-admin"},
                         auth=ADMIN)  # fmt: skip
    assert made.json()["token_info"]["username"] == bob[0]
    listed = auth_api.get(f"{RY}/tokens/list", params={"username": bob[0]}, auth=ADMIN)
    assert sorted(t["name"] for t in listed.json()["tokens"]) == ["b", "by-admin"]
    by_admin = auth_api.post(f"{RY}/tokens/revoke", json={"token_id": token_id,
                             "username": bob[0]}, auth=ADMIN)  # fmt: skip
    assert by_admin.status_code == 200
    check_error(
        auth_api.get(f"{V2}/users/current", headers=bearer(bob_token["token"])),
        401,
        "UNAUTHENTICATED",
    )


def test_a_token_acts_with_its_owners_permissions(auth_api: TestClient, new_user: MakeUser) -> None:
    user = new_user()
    token = auth_api.post(f"{RY}/tokens/create", json={}, auth=user).json()["token"]
    exp_id = make_experiment(auth_api)
    denied = auth_api.post(f"{V2}/runs/create", json={"experiment_id": exp_id},
                           headers=bearer(token))  # fmt: skip
    check_error(denied, 403, "PERMISSION_DENIED")
    _grant(auth_api, user[0], exp_id, "EDIT")
    allowed = auth_api.post(f"{V2}/runs/create", json={"experiment_id": exp_id},
                            headers=bearer(token))  # fmt: skip
    assert allowed.status_code == 200, allowed.text


# -- audit ------------------------------------------------------------------------------------
def test_audit_log_records_writes_newest_first(auth_api: TestClient, new_user: MakeUser) -> None:
    started = int(time.time() * 1000) - 1
    user = new_user()
    exp_id = make_experiment(auth_api, auth=user)
    check_error(create_run(auth_api, make_experiment(auth_api), user), 403, "PERMISSION_DENIED")
    response = auth_api.get(f"{RY}/audit", params={"username": user[0], "since": started},
                            auth=ADMIN)  # fmt: skip
    assert response.status_code == 200, response.text
    entries = response.json()["entries"]
    assert [(e["method"], e["endpoint"], e["path"]) for e in entries] == [
        ("POST", "mlflow/runs/create", f"{V2}/runs/create"),
        ("POST", "mlflow/experiments/create", f"{V2}/experiments/create"),
    ]
    denied, created = entries[0], entries[1]
    assert denied["status"] == 403
    assert denied["outcome"] == "failure"
    assert denied["error_code"] == "PERMISSION_DENIED"
    assert created["status"] == 200
    assert created["outcome"] == "success"
    assert created["resource_type"] == "experiment"
    assert created["resource_id"] == exp_id
    assert all(e["username"] == user[0] for e in entries)
    assert all(e["timestamp"] >= started for e in entries)
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)


def test_audit_paging_and_filters(auth_api: TestClient, new_user: MakeUser) -> None:
    started = int(time.time() * 1000) - 1
    user = new_user()
    for _ in range(3):
        make_experiment(auth_api, auth=user)
    query = {"username": user[0], "since": started}
    first = auth_api.get(f"{RY}/audit", params={**query, "max_results": 2}, auth=ADMIN).json()
    assert len(first["entries"]) == 2
    assert first["next_page_token"]
    rest = auth_api.get(
        f"{RY}/audit",
        params={**query, "max_results": 2, "page_token": first["next_page_token"]},
        auth=ADMIN,
    ).json()
    assert "next_page_token" not in rest
    ids = [e["id"] for e in first["entries"] + rest["entries"]]
    assert len(ids) == 3 == len(set(ids))
    future = auth_api.get(f"{RY}/audit", params={"since": started + 10**9}, auth=ADMIN).json()
    assert future == {"entries": []}
    past = auth_api.get(f"{RY}/audit", params={**query, "until": started}, auth=ADMIN).json()
    assert past == {"entries": []}


def test_audit_errors(auth_api: TestClient, new_user: MakeUser) -> None:
    user = new_user()
    check_error(auth_api.get(f"{RY}/audit", auth=user), 403, "PERMISSION_DENIED")
    check_error(
        auth_api.get(f"{RY}/audit", params={"max_results": 100_000}, auth=ADMIN),
        400,
        "INVALID_PARAMETER_VALUE",
        "max_results",
    )
    check_error(
        auth_api.get(f"{RY}/audit", params={"since": 10, "until": 5}, auth=ADMIN),
        400,
        "INVALID_PARAMETER_VALUE",
        "since",
    )
    check_error(
        auth_api.get(f"{RY}/audit", params={"page_token": "garbage"}, auth=ADMIN),
        400,
        "INVALID_PARAMETER_VALUE",
        "page token",
    )


def test_user_names_in_requests_are_checked(auth_api: TestClient) -> None:
    bad = auth_api.post(
        f"{V2}/users/create", json={"username": "a:b", "password": PASSWORD}, auth=ADMIN
    )
    check_error(bad, 400, "INVALID_PARAMETER_VALUE", "username")
    missing = auth_api.get(f"{V2}/users/get", auth=ADMIN)
    check_error(missing, 400, "INVALID_PARAMETER_VALUE", "username")
