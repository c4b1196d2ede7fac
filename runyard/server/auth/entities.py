"""What the auth store hands out: users, grants, tokens, audit entries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runyard.server.auth.permissions import Permission

__all__ = ["AuditEntry", "Grant", "TokenInfo", "User"]


@dataclass(frozen=True)
class User:
    """A user account (the password hash never leaves the store)."""

    id: int
    username: str
    is_admin: bool
    created_time: int = 0

    def to_json(self) -> dict[str, Any]:
        """MLflow's ``user`` object."""
        return {"id": self.id, "username": self.username, "is_admin": self.is_admin}


@dataclass(frozen=True)
class Grant:
    """A user's explicit permission on one resource."""

    username: str
    resource_type: str
    resource_id: str
    permission: Permission

    def to_json(self) -> dict[str, Any]:
        """The entry of MLflow 3's ``users/permissions/list``."""
        return {
            "permission": self.permission.name,
            "resource_type": self.resource_type,
            "resource_pattern": self.resource_id,
        }


@dataclass(frozen=True)
class TokenInfo:
    """A personal access token, without its secret."""

    id: int
    username: str
    name: str
    creation_time: int
    expiration_time: int
    last_used_time: int | None = None
    revoked: bool = False

    def to_json(self) -> dict[str, Any]:
        """The token as the token endpoints list it."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "username": self.username,
            "creation_time": self.creation_time,
            "expiration_time": self.expiration_time,
        }
        if self.last_used_time is not None:
            out["last_used_time"] = self.last_used_time
        return out


@dataclass(frozen=True)
class AuditEntry:
    """One audited request: who, when, what, on which resource, with what outcome."""

    timestamp: int
    username: str | None
    method: str
    path: str
    endpoint: str
    status: int
    resource_type: str | None = None
    resource_id: str | None = None
    error_code: str | None = None
    client_ip: str | None = None
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The entry as ``/api/2.0/runyard/audit`` returns it (absent fields left out)."""
        out: dict[str, Any] = {
            "id": self.id,
            "timestamp": self.timestamp,
            "username": self.username,
            "method": self.method,
            "path": self.path,
            "endpoint": self.endpoint,
            "status": self.status,
            "outcome": "success" if self.status < 400 else "failure",
        }
        for key in ("resource_type", "resource_id", "error_code", "client_ip"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return {k: v for k, v in out.items() if v is not None}
