"""The official MLflow 3.17.2 client against ``runyard server --app-name basic-auth``.

Logging with HTTP Basic credentials (MLFLOW_TRACKING_USERNAME/PASSWORD) and with a runyard token
(MLFLOW_TRACKING_TOKEN, sent as a bearer token), MLflow's ``AuthServiceClient``
(``mlflow.server.get_app_client("basic-auth")``) for users and per-user permissions, and the
errors the client raises for a wrong password (401) and a write without permission (403).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.compat.conftest import ClientResult, run_official_client
from tests.server.auth.conftest import (
    ADMIN,
    AuthServer,
    create_user,
    start_auth_server,
    stop_auth_server,
    unique_name,
)

pytestmark = pytest.mark.slow

SCRIPT = """
import os
from mlflow.server import get_app_client

URI = os.environ["MLFLOW_TRACKING_URI"]


def as_user(name, password):
    os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    os.environ["MLFLOW_TRACKING_USERNAME"] = name
    os.environ["MLFLOW_TRACKING_PASSWORD"] = password


def as_token(token):
    os.environ.pop("MLFLOW_TRACKING_USERNAME", None)
    os.environ.pop("MLFLOW_TRACKING_PASSWORD", None)
    os.environ["MLFLOW_TRACKING_TOKEN"] = token


def log_a_run(experiment_name, text):
    mlflow.set_experiment(experiment_name)
    with mlflow.start_run() as run:
        mlflow.log_param("p", "1")
        mlflow.log_metric("m", 0.5, step=2)
        with open("note.txt", "w") as handle:
            handle.write(text)
        mlflow.log_artifact("note.txt", "docs")
    run_id = run.info.run_id
    got = client.get_run(run_id)
    return {
        "run_id": run_id,
        "experiment_id": run.info.experiment_id,
        "status": got.info.status,
        "params": got.data.params,
        "metrics": got.data.metrics,
        "artifacts": [f.path for f in client.list_artifacts(run_id, "docs")],
        "text": mlflow.artifacts.load_text(f"runs:/{run_id}/docs/note.txt"),
    }


with section("basic") as out:
    as_user(*PARAMS["writer"])
    out.update(log_a_run(PARAMS["prefix"] + "-basic", "by password"))

with section("token") as out:
    as_token(PARAMS["token"])
    out.update(log_a_run(PARAMS["prefix"] + "-token", "by token"))

with section("wrong_password") as out:
    as_user(PARAMS["writer"][0], "not-the-password")
    out["error"] = error_of(mlflow.search_experiments)
    as_token("ryt_not-a-token")
    out["bad_token"] = error_of(client.get_experiment, "0")

with section("read_only") as out:
    as_user(*PARAMS["reader"])
    exp = client.get_experiment_by_name(PARAMS["prefix"] + "-basic")
    out["read"] = exp.name
    run_id = RESULT["basic"]["run_id"]
    out["read_run"] = client.get_run(run_id).data.params
    out["create_run"] = error_of(client.create_run, exp.experiment_id)
    out["log_metric"] = error_of(client.log_metric, run_id, "m", 1.0)
    out["set_tag"] = error_of(client.set_tag, run_id, "k", "v")
    try:
        client.log_text(run_id, "nope", "docs/denied.txt")
        out["upload"] = None
    except Exception as exc:
        out["upload"] = str(exc)

with section("auth_client") as out:
    as_user(*PARAMS["admin"])
    auth = get_app_client("basic-auth", tracking_uri=URI)
    name = PARAMS["new_user"]
    user = auth.create_user(name, "first-pass-1")
    out["created"] = {"id": user.id, "username": user.username, "is_admin": user.is_admin}
    got = auth.get_user(name)
    out["got"] = {"id": got.id, "username": got.username, "is_admin": got.is_admin}
    out["duplicate"] = error_of(auth.create_user, name, "first-pass-1")
    auth.update_user_password(name, "second-pass-2")
    auth.update_user_admin(name, True)
    out["admin_after_promotion"] = auth.get_user(name).is_admin
    auth.update_user_admin(name, False)
    out["admin_after_demotion"] = auth.get_user(name).is_admin
    exp_id = RESULT["basic"]["experiment_id"]
    before = auth.get_user_permission(name, "experiment", exp_id)
    out["before"] = {"allowed": before.allowed, "permission": before.permission}
    auth.grant_user_permission(name, "experiment", exp_id, "EDIT")
    granted = auth.get_user_permission(name, "experiment", exp_id)
    out["granted"] = {"allowed": granted.allowed, "permission": granted.permission}
    # The new user (self-service, with the current password) now logs to that experiment.
    as_user(name, "second-pass-2")
    auth.update_user_password(name, "third-pass-3", current_password="second-pass-2")
    as_user(name, "third-pass-3")
    out["self"] = auth.get_user(name).username
    out["logged"] = client.create_run(exp_id).info.experiment_id
    out["no_current"] = error_of(auth.update_user_password, name, "fourth-pass-4")
    as_user(*PARAMS["admin"])
    auth.revoke_user_permission(name, "experiment", exp_id)
    revoked = auth.get_user_permission(name, "experiment", exp_id)
    out["revoked"] = {"allowed": revoked.allowed, "permission": revoked.permission}
    out["delete_self"] = error_of(auth.delete_user, PARAMS["admin"][0])
    auth.delete_user(name)
    out["deleted"] = error_of(auth.get_user, name)

with section("non_admin_client") as out:
    as_user(*PARAMS["reader"])
    auth = get_app_client("basic-auth", tracking_uri=URI)
    out["create"] = error_of(auth.create_user, "sneaky-user", "sneaky-pass-1")
    out["grant"] = error_of(
        auth.grant_user_permission, PARAMS["reader"][0], "experiment",
        RESULT["basic"]["experiment_id"], "MANAGE",
    )
"""


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """An auth-enabled runyard server for this module (the compat server runs without auth)."""
    server = start_auth_server(tmp_path_factory.mktemp("compat-auth-server"))
    yield server
    stop_auth_server(server)


@pytest.fixture(scope="module")
def result(
    auth_server: AuthServer, compat_venv: Path, tmp_path_factory: pytest.TempPathFactory
) -> ClientResult:
    """One run of the client script: users made over HTTP first, then the official client."""
    with httpx.Client(base_url=auth_server.url, timeout=60) as http:
        writer = create_user(http)
        reader = create_user(http)
        token = http.post(
            "/api/2.0/runyard/tokens/create", json={"name": "compat"}, auth=writer
        ).json()["token"]
    params: dict[str, Any] = {
        "admin": list(ADMIN),
        "writer": list(writer),
        "reader": list(reader),
        "token": token,
        "prefix": unique_name("compat-auth"),
        "new_user": unique_name("client-user"),
    }
    return run_official_client(
        compat_venv,
        tmp_path_factory.mktemp("auth-client"),
        SCRIPT,
        auth_server.url,
        auth_server.root / "server.log",
        params,
    )


def _check_logged(run: dict[str, Any], text: str) -> None:
    assert run["status"] == "FINISHED"
    assert run["params"] == {"p": "1"}
    assert run["metrics"] == {"m": 0.5}
    assert run["artifacts"] == ["docs/note.txt"]
    assert run["text"] == text


def test_logging_with_username_and_password(result: ClientResult) -> None:
    _check_logged(result["basic"], "by password")


def test_logging_with_a_token(result: ClientResult) -> None:
    _check_logged(result["token"], "by token")
    assert result["token"]["experiment_id"] != result["basic"]["experiment_id"]


def test_wrong_credentials_raise_the_clients_401(result: ClientResult) -> None:
    for error in (result["wrong_password"]["error"], result["wrong_password"]["bad_token"]):
        assert error is not None
        assert error["error_code"] == "UNAUTHENTICATED"
        assert error["http_status"] == 401


def test_a_read_only_user_reads_but_gets_403_on_writes(result: ClientResult) -> None:
    out = result["read_only"]
    assert out["read"].endswith("-basic")
    assert out["read_run"] == {"p": "1"}
    for key in ("create_run", "log_metric", "set_tag"):
        error = out[key]
        assert error is not None, key
        assert error["error_code"] == "PERMISSION_DENIED", error
        assert error["http_status"] == 403, error
    assert out["upload"] is not None
    assert "403" in out["upload"]


def test_auth_service_client_manages_users(result: ClientResult) -> None:
    out = result["auth_client"]
    assert out["created"]["username"].startswith("client-user")
    assert out["created"]["is_admin"] is False
    assert out["got"] == out["created"]
    assert out["duplicate"]["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert out["admin_after_promotion"] is True
    assert out["admin_after_demotion"] is False
    assert out["self"] == out["created"]["username"]
    assert out["no_current"]["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Current password is required" in out["no_current"]["message"]
    assert out["delete_self"]["error_code"] == "BAD_REQUEST"
    assert out["deleted"]["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["deleted"]["http_status"] == 404


def test_auth_service_client_grants_and_revokes(result: ClientResult) -> None:
    out = result["auth_client"]
    assert out["before"] == {"allowed": False, "permission": "READ"}
    assert out["granted"] == {"allowed": True, "permission": "EDIT"}
    assert out["logged"] == result["basic"]["experiment_id"]
    assert out["revoked"] == {"allowed": False, "permission": "READ"}


def test_auth_service_client_refuses_non_admins(result: ClientResult) -> None:
    out = result["non_admin_client"]
    for key in ("create", "grant"):
        assert out[key]["error_code"] == "PERMISSION_DENIED", out[key]
        assert out[key]["http_status"] == 403
