"""The auth store: users, grants, tokens, sessions, the audit log (tables of ``0003_auth``).

It lives in the backend store's database by default (so every worker and every server process
on one PostgreSQL sees the same users), or in the auth config's ``database_uri``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from runyard.entities import PagedList
from runyard.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from runyard.server.auth.entities import AuditEntry, Grant, TokenInfo, User
from runyard.server.auth.passwords import (
    check_password_policy,
    digest,
    hash_password,
    needs_rehash,
    new_secret,
    verify_password,
)
from runyard.server.auth.permissions import Permission, check_resource_type
from runyard.store.sql import schema as t
from runyard.store.sql.base import SqlBase
from runyard.store.sql.engine import make_engine, prepare_schema

__all__ = ["AuthStore", "TOKEN_PREFIX"]

TOKEN_PREFIX = "ryt_"
_DAY_MS = 86_400_000
_MAX_USERNAME = 256
_USER_COLUMNS = (t.auth_users.c.user_id, t.auth_users.c.username, t.auth_users.c.is_admin,
                 t.auth_users.c.creation_time)  # fmt: skip


def _now() -> int:
    return int(time.time() * 1000)


def _user(row: Any) -> User:
    return User(int(row.user_id), row.username, bool(row.is_admin), int(row.creation_time))


def _audit_text(text: str | None) -> str | None:
    """Text as the audit log keeps it: a NUL (which PostgreSQL cannot store, and which a
    request can carry in its path or ids) becomes U+FFFD, so one odd request never blocks the
    entries queued behind it."""
    return None if text is None else text.replace("\x00", "\ufffd")


def _check_username(username: str | None) -> str:
    name = (username or "").strip()
    if not name:
        raise InvalidParameterValue("Missing value for required parameter 'username'.")
    if len(name) > _MAX_USERNAME or any(ch in name for ch in ":\n\r\t"):
        raise InvalidParameterValue(
            f"Invalid username '{username}': at most {_MAX_USERNAME} characters, no ':' or "
            "control characters."
        )
    return name


def _token(row: Any) -> TokenInfo:
    return TokenInfo(
        id=int(row.token_id),
        username=row.username,
        name=row.name,
        creation_time=int(row.creation_time),
        expiration_time=int(row.expiration_time),
        last_used_time=None if row.last_used_time is None else int(row.last_used_time),
        revoked=bool(row.revoked),
    )


class AuthStore(SqlBase):
    """SQL access for the auth layer (SQLAlchemy Core; SQLite and PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def open(cls, uri: str) -> AuthStore:
        """A store on its own database (the auth config's ``database_uri``), migrated like the
        tracking database (automatically for SQLite; ``runyard db upgrade`` otherwise)."""
        engine = make_engine(uri)
        try:
            prepare_schema(engine, auto_upgrade=uri.startswith("sqlite"))
        except Exception:
            engine.dispose()
            raise
        return cls(engine)

    # -- users --------------------------------------------------------------------------------

    def create_user(self, username: str, password: str, is_admin: bool = False) -> User:
        """A new user; the password is hashed here, once."""
        name = _check_username(username)
        hashed = hash_password(check_password_policy(password))
        now = _now()
        row = {"username": name, "password_hash": hashed, "is_admin": is_admin,
               "creation_time": now}  # fmt: skip
        try:
            with self._write() as conn:
                user_id = conn.execute(
                    t.auth_users.insert().values(**row).returning(t.auth_users.c.user_id)
                ).scalar_one()
        except IntegrityError:
            raise ResourceAlreadyExists(f"User '{name}' already exists.") from None
        return User(int(user_id), name, is_admin, now)

    def _user_row(self, conn: Connection, username: str) -> Any:
        row = conn.execute(
            select(*_USER_COLUMNS, t.auth_users.c.password_hash).where(
                t.auth_users.c.username == username
            )
        ).first()
        if row is None:
            raise ResourceDoesNotExist(f"User with username={username} not found")
        return row

    def get_user(self, username: str) -> User:
        """The user called ``username``."""
        with self._read() as conn:
            return _user(self._user_row(conn, username))

    def get_user_by_id(self, user_id: int) -> User | None:
        """The user with this id, None when deleted."""
        with self._read() as conn:
            row = conn.execute(
                select(*_USER_COLUMNS).where(t.auth_users.c.user_id == user_id)
            ).first()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        """Every user, by name."""
        with self._read() as conn:
            rows = conn.execute(select(*_USER_COLUMNS).order_by(t.auth_users.c.username))
            return [_user(r) for r in rows]

    def count_users(self) -> int:
        """How many users exist (0 on a fresh database)."""
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(t.auth_users)).scalar_one())

    def update_password(self, username: str, password: str) -> None:
        """Set a new password (hashed once) and end the user's browser sessions."""
        hashed = hash_password(check_password_policy(password))
        with self._write() as conn:
            row = self._user_row(conn, username)
            conn.execute(
                update(t.auth_users)
                .where(t.auth_users.c.user_id == row.user_id)
                .values(password_hash=hashed)
            )
            conn.execute(delete(t.auth_sessions).where(t.auth_sessions.c.user_id == row.user_id))

    def set_admin(self, username: str, is_admin: bool) -> None:
        """Make the user an admin, or not."""
        with self._write() as conn:
            row = self._user_row(conn, username)
            conn.execute(
                update(t.auth_users)
                .where(t.auth_users.c.user_id == row.user_id)
                .values(is_admin=bool(is_admin))
            )

    def delete_user(self, username: str) -> None:
        """Remove the user with their grants, tokens and sessions."""
        with self._write() as conn:
            row = self._user_row(conn, username)
            for table in (t.auth_permissions, t.auth_tokens, t.auth_sessions):
                conn.execute(delete(table).where(table.c.user_id == row.user_id))
            conn.execute(delete(t.auth_users).where(t.auth_users.c.user_id == row.user_id))

    def authenticate_password(self, username: str, password: str) -> User | None:
        """The user when the password matches (runs the KDF: ~50-150 ms), else None."""
        found = self.verify_password(username, password)
        return None if found is None else found[0]

    def verify_password(self, username: str, password: str) -> tuple[User, str] | None:
        """(the user, the stored hash the password matched) or None (runs the KDF)."""
        found = self.user_with_hash(username)
        if found is None:
            # Spend the same time as a wrong password, so timing does not reveal user names.
            verify_password(_DUMMY_HASH, password)
            return None
        user, stored = found
        if not verify_password(stored, password):
            return None
        if needs_rehash(stored):
            stored = hash_password(password)
            with self._write() as conn:
                conn.execute(
                    update(t.auth_users)
                    .where(t.auth_users.c.user_id == user.id)
                    .values(password_hash=stored)
                )
        return user, stored

    def user_with_hash(self, username: str) -> tuple[User, str] | None:
        """The user and their current password hash (one indexed read, no KDF)."""
        with self._read() as conn:
            row = conn.execute(
                select(*_USER_COLUMNS, t.auth_users.c.password_hash).where(
                    t.auth_users.c.username == username
                )
            ).first()
        return None if row is None else (_user(row), str(row.password_hash))

    # -- grants -------------------------------------------------------------------------------

    def grant(
        self, username: str, resource_type: str, resource_id: str, permission: Permission
    ) -> Grant:
        """Give ``username`` ``permission`` on the resource (replacing an earlier grant)."""
        check_resource_type(resource_type)
        key = str(resource_id)
        with self._write() as conn:
            user_id = self._user_row(conn, username).user_id
            stmt = self._insert(t.auth_permissions).values(
                user_id=user_id, resource_type=resource_type, resource_id=key,
                permission=permission.name,
            )  # fmt: skip
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["user_id", "resource_type", "resource_id"],
                    set_={"permission": permission.name},
                )
            )
        return Grant(username, resource_type, key, permission)

    def revoke(self, username: str, resource_type: str, resource_id: str) -> None:
        """Remove the user's grant on the resource (it falls back to the default)."""
        check_resource_type(resource_type)
        with self._write() as conn:
            user_id = self._user_row(conn, username).user_id
            gone = conn.execute(
                delete(t.auth_permissions).where(
                    t.auth_permissions.c.user_id == user_id,
                    t.auth_permissions.c.resource_type == resource_type,
                    t.auth_permissions.c.resource_id == str(resource_id),
                )
            ).rowcount
        if not gone:
            raise ResourceDoesNotExist(
                f"No permission for user '{username}' on {resource_type} '{resource_id}'."
            )

    def get_grant(self, username: str, resource_type: str, resource_id: str) -> Grant | None:
        """The user's explicit grant on the resource, None when there is none."""
        check_resource_type(resource_type)
        with self._read() as conn:
            user_id = self._user_row(conn, username).user_id
            value = conn.execute(
                select(t.auth_permissions.c.permission).where(
                    t.auth_permissions.c.user_id == user_id,
                    t.auth_permissions.c.resource_type == resource_type,
                    t.auth_permissions.c.resource_id == str(resource_id),
                )
            ).scalar()
        if value is None:
            return None
        return Grant(username, resource_type, str(resource_id), Permission[value])

    def list_grants(self, username: str) -> list[Grant]:
        """Every explicit grant the user has."""
        p = t.auth_permissions
        with self._read() as conn:
            user_id = self._user_row(conn, username).user_id
            rows = conn.execute(
                select(p.c.resource_type, p.c.resource_id, p.c.permission)
                .where(p.c.user_id == user_id)
                .order_by(p.c.resource_type, p.c.resource_id)
            )
            return [Grant(username, r[0], r[1], Permission[r[2]]) for r in rows]

    def permission_of(
        self, user_id: int, resource_type: str, resource_id: str
    ) -> Permission | None:
        """The user's explicit permission on the resource (the hot path: one PK lookup)."""
        p = t.auth_permissions
        with self._read() as conn:
            value = conn.execute(
                select(p.c.permission).where(
                    p.c.user_id == user_id,
                    p.c.resource_type == resource_type,
                    p.c.resource_id == str(resource_id),
                )
            ).scalar()
        return None if value is None else Permission[value]

    def grants_on(self, user_id: int, resource_type: str) -> dict[str, Permission]:
        """All of one user's grants on one resource type, by resource id (search filtering)."""
        p = t.auth_permissions
        with self._read() as conn:
            rows = conn.execute(
                select(p.c.resource_id, p.c.permission).where(
                    p.c.user_id == user_id, p.c.resource_type == resource_type
                )
            )
            return {r[0]: Permission[r[1]] for r in rows}

    def move_grants(self, resource_type: str, old_id: str, new_id: str) -> None:
        """Grants follow a renamed resource (a registered model's new name)."""
        with self._write() as conn:
            conn.execute(
                update(t.auth_permissions)
                .where(
                    t.auth_permissions.c.resource_type == resource_type,
                    t.auth_permissions.c.resource_id == str(old_id),
                )
                .values(resource_id=str(new_id))
            )

    def drop_grants(self, resource_type: str, resource_id: str) -> None:
        """Remove every grant on a deleted resource."""
        with self._write() as conn:
            conn.execute(
                delete(t.auth_permissions).where(
                    t.auth_permissions.c.resource_type == resource_type,
                    t.auth_permissions.c.resource_id == str(resource_id),
                )
            )

    # -- tokens -------------------------------------------------------------------------------

    def create_token(
        self, username: str, name: str, expires_in_days: float
    ) -> tuple[str, TokenInfo]:
        """A new personal access token; its secret is returned here and never again."""
        if not expires_in_days > 0:
            raise InvalidParameterValue("expires_in_days must be a positive number of days.")
        label = (name or "").strip() or "token"
        if len(label) > 256:
            raise InvalidParameterValue("A token name is at most 256 characters.")
        secret = new_secret(TOKEN_PREFIX)
        now = _now()
        expires = now + int(expires_in_days * _DAY_MS)
        with self._write() as conn:
            user_id = self._user_row(conn, username).user_id
            token_id = conn.execute(
                t.auth_tokens.insert()
                .values(
                    user_id=user_id,
                    name=label,
                    token_hash=digest(secret),
                    creation_time=now,
                    expiration_time=expires,
                    last_used_time=None,
                    revoked=False,
                )  # fmt: skip
                .returning(t.auth_tokens.c.token_id)
            ).scalar_one()
        return secret, TokenInfo(int(token_id), username, label, now, expires)

    def _token_query(self) -> Any:
        k, u = t.auth_tokens, t.auth_users
        return select(
            k.c.token_id, k.c.name, k.c.creation_time, k.c.expiration_time, k.c.last_used_time,
            k.c.revoked, u.c.username,
        ).join(u, u.c.user_id == k.c.user_id)  # fmt: skip

    def list_tokens(self, username: str) -> list[TokenInfo]:
        """The user's tokens that are not revoked (expired ones included, marked by time)."""
        k = t.auth_tokens
        with self._read() as conn:
            user_id = self._user_row(conn, username).user_id
            rows = conn.execute(
                self._token_query()
                .where(k.c.user_id == user_id, k.c.revoked.is_(False))
                .order_by(k.c.token_id)
            )
            return [_token(r) for r in rows]

    def revoke_token(self, username: str, token_id: int) -> None:
        """Revoke one of the user's tokens (ResourceDoesNotExist when it is not theirs)."""
        k = t.auth_tokens
        with self._write() as conn:
            user_id = self._user_row(conn, username).user_id
            done = conn.execute(
                update(k)
                .where(
                    k.c.token_id == int(token_id), k.c.user_id == user_id, k.c.revoked.is_(False)
                )
                .values(revoked=True)
            ).rowcount
        if not done:
            raise ResourceDoesNotExist(f"Token {token_id} of user '{username}' not found")

    def user_for_token(self, secret: str) -> User | None:
        """The owner of a valid (known, unrevoked, unexpired) token."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        k = t.auth_tokens
        now = _now()
        with self._read() as conn:
            row = conn.execute(
                select(*_USER_COLUMNS, k.c.token_id, k.c.last_used_time)
                .join(k, k.c.user_id == t.auth_users.c.user_id)
                .where(
                    k.c.token_hash == digest(secret),
                    k.c.revoked.is_(False),
                    k.c.expiration_time > now,
                )
            ).first()
        if row is None:
            return None
        if row.last_used_time is None or now - int(row.last_used_time) > 60_000:
            # Recorded at most once a minute per token: a hot token costs no write per request.
            with self._write() as conn:
                conn.execute(
                    update(k).where(k.c.token_id == row.token_id).values(last_used_time=now)
                )
        return _user(row)

    # -- sessions -----------------------------------------------------------------------------

    def create_session(self, user_id: int, ttl_seconds: int) -> tuple[str, str]:
        """A browser session: (the cookie's secret, the CSRF token for the pages)."""
        secret = new_secret()
        csrf = new_secret()[:43]
        now = _now()
        with self._write() as conn:
            conn.execute(delete(t.auth_sessions).where(t.auth_sessions.c.expiration_time <= now))
            conn.execute(
                t.auth_sessions.insert().values(
                    session_hash=digest(secret),
                    user_id=user_id,
                    csrf_token=csrf,
                    creation_time=now,
                    expiration_time=now + ttl_seconds * 1000,
                )  # fmt: skip
            )
        return secret, csrf

    def session(self, secret: str) -> tuple[User, str] | None:
        """The user and CSRF token of a live session, None when unknown or expired."""
        s = t.auth_sessions
        with self._read() as conn:
            row = conn.execute(
                select(*_USER_COLUMNS, s.c.csrf_token)
                .join(s, s.c.user_id == t.auth_users.c.user_id)
                .where(s.c.session_hash == digest(secret), s.c.expiration_time > _now())
            ).first()
        return None if row is None else (_user(row), row.csrf_token)

    def delete_session(self, secret: str) -> None:
        """End a session (logout)."""
        with self._write() as conn:
            conn.execute(
                delete(t.auth_sessions).where(t.auth_sessions.c.session_hash == digest(secret))
            )

    # -- audit --------------------------------------------------------------------------------

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries in one transaction."""
        if not entries:
            return
        rows = [
            {
                "timestamp": e.timestamp,
                "username": _audit_text(e.username),
                "method": e.method,
                "path": _audit_text(e.path[:2048]),
                "endpoint": _audit_text(e.endpoint[:256]),
                "resource_type": e.resource_type,
                "resource_id": None
                if e.resource_id is None
                else _audit_text(str(e.resource_id)[:500]),
                "status": e.status,
                "error_code": e.error_code,
                "client_ip": e.client_ip,
            }  # fmt: skip
            for e in entries
        ]
        with self._write() as conn:
            conn.execute(t.auth_audit.insert(), rows)

    def search_audit(
        self,
        since_ms: int | None = None,
        until_ms: int | None = None,
        username: str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> PagedList[AuditEntry]:
        """Entries newest first, filtered by time range and user; paged by audit id."""
        a = t.auth_audit
        conditions = []
        if since_ms is not None:
            conditions.append(a.c.timestamp >= since_ms)
        if until_ms is not None:
            conditions.append(a.c.timestamp < until_ms)
        if username:
            conditions.append(a.c.username == username)
        if page_token:
            conditions.append(a.c.audit_id < _decode_token(page_token))
        query = select(a).order_by(a.c.audit_id.desc()).limit(max_results + 1)
        if conditions:
            query = query.where(and_(*conditions))
        with self._read() as conn:
            rows = conn.execute(query).fetchall()
        entries = [
            AuditEntry(
                id=int(r.audit_id),
                timestamp=int(r.timestamp),
                username=r.username,
                method=r.method,
                path=r.path,
                endpoint=r.endpoint,
                resource_type=r.resource_type,
                resource_id=r.resource_id,
                status=int(r.status),
                error_code=r.error_code,
                client_ip=r.client_ip,
            )  # fmt: skip
            for r in rows[:max_results]
        ]
        token = None
        if len(rows) > max_results and entries:
            token = base64.urlsafe_b64encode(orjson.dumps({"before": entries[-1].id})).decode()
        return PagedList(entries, token)

    # -- settings -----------------------------------------------------------------------------

    def secret_key(self) -> bytes:
        """The server secret (cookie signing, cache keys): made once, shared by every worker."""
        s = t.auth_settings
        with self._read() as conn:
            value = conn.execute(select(s.c.value).where(s.c.key == "secret_key")).scalar()
        if value is None:
            with self._write() as conn:
                stmt = self._insert(s).values(key="secret_key", value=new_secret())
                conn.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
                value = conn.execute(select(s.c.value).where(s.c.key == "secret_key")).scalar()
        return str(value).encode("utf-8")


def _decode_token(token: str) -> int:
    try:
        return int(orjson.loads(base64.urlsafe_b64decode(token.encode()))["before"])
    except Exception:
        raise InvalidParameterValue(f"Invalid page token '{token}'.") from None


_DUMMY_HASH = hash_password("runyard-timing-equaliser")
