"""The auth store on SQLite and (when RUNYARD_TEST_POSTGRES_URI is set) PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from runyard.server.auth.entities import AuditEntry
from runyard.server.auth.permissions import Permission
from runyard.server.auth.store import TOKEN_PREFIX, AuthStore
from tests.store.conftest import BACKENDS, fresh_store


@pytest.fixture(params=BACKENDS)
def auth_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuthStore]:
    tracking = fresh_store(request.param, tmp_path)
    yield AuthStore(tracking.engine)
    tracking.close()


def test_users(auth_store: AuthStore) -> None:
    alice = auth_store.create_user("alice", "alice-password")
    assert alice.to_json() == {"id": alice.id, "username": "alice", "is_admin": False}
    with pytest.raises(ResourceAlreadyExists):
        auth_store.create_user("alice", "another-password")
    with pytest.raises(InvalidParameterValue, match="at least 8"):
        auth_store.create_user("bob", "short")
    with pytest.raises(InvalidParameterValue, match="Invalid username"):
        auth_store.create_user("a:b", "long-enough-1")
    assert auth_store.authenticate_password("alice", "alice-password") == alice
    assert auth_store.authenticate_password("alice", "wrong-password") is None
    assert auth_store.authenticate_password("nobody", "alice-password") is None
    auth_store.set_admin("alice", True)
    assert auth_store.get_user("alice").is_admin
    auth_store.update_password("alice", "changed-password")
    assert auth_store.authenticate_password("alice", "alice-password") is None
    assert auth_store.authenticate_password("alice", "changed-password") is not None
    assert [u.username for u in auth_store.list_users()] == ["alice"]
    assert auth_store.count_users() == 1
    auth_store.delete_user("alice")
    with pytest.raises(ResourceDoesNotExist, match="username=alice"):
        auth_store.get_user("alice")


def test_grants(auth_store: AuthStore) -> None:
    user = auth_store.create_user("carol", "carol-password")
    auth_store.grant("carol", "experiment", "1", Permission.READ)
    auth_store.grant("carol", "experiment", "1", Permission.EDIT)  # replaces
    auth_store.grant("carol", "registered_model", "m", Permission.MANAGE)
    assert auth_store.permission_of(user.id, "experiment", "1") is Permission.EDIT
    assert auth_store.permission_of(user.id, "experiment", "2") is None
    assert auth_store.grants_on(user.id, "registered_model") == {"m": Permission.MANAGE}
    auth_store.move_grants("registered_model", "m", "m2")
    assert [g.resource_id for g in auth_store.list_grants("carol")] == ["1", "m2"]
    auth_store.drop_grants("registered_model", "m2")
    auth_store.revoke("carol", "experiment", "1")
    assert auth_store.list_grants("carol") == []
    with pytest.raises(ResourceDoesNotExist):
        auth_store.revoke("carol", "experiment", "1")
    with pytest.raises(InvalidParameterValue, match="resource_type"):
        auth_store.grant("carol", "run", "x", Permission.READ)
    auth_store.grant("carol", "experiment", "3", Permission.READ)
    auth_store.delete_user("carol")  # grants go with the user
    other = auth_store.create_user("carol", "carol-password")
    assert auth_store.grants_on(other.id, "experiment") == {}


def test_tokens_expire_and_are_revoked(auth_store: AuthStore) -> None:
    user = auth_store.create_user("dave", "dave-password")
    secret, info = auth_store.create_token("dave", "ci", expires_in_days=30)
    assert secret.startswith(TOKEN_PREFIX)
    assert auth_store.user_for_token(secret) == user
    assert auth_store.user_for_token(secret + "x") is None
    assert auth_store.user_for_token("not-a-token") is None
    listed = auth_store.list_tokens("dave")
    assert [t.id for t in listed] == [info.id]
    assert listed[0].last_used_time is not None
    assert "secret" not in str(listed[0].to_json())
    short, _ = auth_store.create_token("dave", "short", expires_in_days=0.00001)  # ~1 s
    time.sleep(1.2)
    assert auth_store.user_for_token(short) is None
    auth_store.revoke_token("dave", info.id)
    assert auth_store.user_for_token(secret) is None
    with pytest.raises(ResourceDoesNotExist):
        auth_store.revoke_token("dave", info.id)
    with pytest.raises(InvalidParameterValue):
        auth_store.create_token("dave", "x", expires_in_days=0)


def test_sessions(auth_store: AuthStore) -> None:
    user = auth_store.create_user("erin", "erin-password")
    secret, csrf = auth_store.create_session(user.id, ttl_seconds=60)
    assert auth_store.session(secret) == (user, csrf)
    auth_store.update_password("erin", "erin-new-password")  # ends sessions
    assert auth_store.session(secret) is None
    secret, _ = auth_store.create_session(user.id, ttl_seconds=60)
    auth_store.delete_session(secret)
    assert auth_store.session(secret) is None


def test_audit_is_paged_newest_first(auth_store: AuthStore) -> None:
    entries = [
        AuditEntry(
            timestamp=1000 + i,
            username="u" if i % 2 else "v",
            method="POST",
            path=f"/p/{i}",
            endpoint="e",
            status=200,
        )  # fmt: skip
        for i in range(5)
    ]
    auth_store.append_audit(entries)
    first = auth_store.search_audit(max_results=2)
    assert [e.path for e in first] == ["/p/4", "/p/3"]
    second = auth_store.search_audit(max_results=2, page_token=first.token)
    assert [e.path for e in second] == ["/p/2", "/p/1"]
    assert [e.path for e in auth_store.search_audit(username="u")] == ["/p/3", "/p/1"]
    assert [e.path for e in auth_store.search_audit(since_ms=1003)] == ["/p/4", "/p/3"]
    assert [e.path for e in auth_store.search_audit(until_ms=1001)] == ["/p/0"]
    with pytest.raises(InvalidParameterValue, match="page token"):
        auth_store.search_audit(page_token="garbage")


def test_the_secret_key_is_made_once(auth_store: AuthStore) -> None:
    key = auth_store.secret_key()
    assert len(key) >= 32
    assert auth_store.secret_key() == key


def test_audit_keeps_entries_whose_text_holds_nul(auth_store: AuthStore) -> None:
    """Found by the API fuzz run on PostgreSQL: a request path or id with a NUL made every
    audit batch fail, so the entries queued behind it were never written."""
    odd = AuditEntry(
        timestamp=1, username="a\x00b", method="POST", path="/p/\x00", endpoint="e\x00",
        status=400, resource_type="experiment", resource_id="1\x00",
    )  # fmt: skip
    fine = AuditEntry(timestamp=2, username="u", method="POST", path="/q", endpoint="e", status=200)
    auth_store.append_audit([odd, fine])
    found = auth_store.search_audit()
    assert [e.path for e in found] == ["/q", "/p/\ufffd"]
    assert (found[1].username, found[1].resource_id) == ("a\ufffdb", "1\ufffd")
