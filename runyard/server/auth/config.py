"""The auth configuration: MLflow's ``basic_auth.ini`` keys, then environment overrides.

The file is named by ``RUNYARD_AUTH_CONFIG_PATH`` (or ``MLFLOW_AUTH_CONFIG_PATH``); its section
is ``[mlflow]`` as in MLflow (``[runyard]`` is read too). Keys: ``default_permission``,
``database_uri``, ``admin_username``, ``admin_password``, ``auth_cache_ttl_seconds``,
``auth_cache_max_size`` and runyard's own (below). ``authorization_function`` is MLflow's plug-in
hook for custom authentication; runyard refuses a value other than MLflow's default rather than
silently ignoring it.
"""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runyard.config import ENV
from runyard.errors import InvalidParameterValue
from runyard.server.auth.permissions import Permission

__all__ = ["AuthConfig", "read_auth_config"]

_DEFAULT_AUTH_FUNCTION = "mlflow.server.auth:authenticate_request_basic_auth"


@dataclass(frozen=True)
class AuthConfig:
    """How the auth layer behaves (defaults are the secure ones)."""

    default_permission: Permission = Permission.READ
    #: Where users, grants, tokens and the audit log live; None: the backend store's database.
    database_uri: str | None = None
    admin_username: str = "admin"
    admin_password: str | None = None
    #: How long a verified credential, a token or a grant is trusted without a database read.
    #: Changes made through this process apply at once; other workers see them within this.
    cache_ttl_seconds: float = 10.0
    cache_max_size: int = 10_000
    session_ttl_seconds: int = 12 * 3600
    token_default_days: int = 90
    token_max_days: int = 365
    #: Cookies marked Secure: None means when the request came over https.
    secure_cookies: bool | None = None
    #: Failed logins per (user name, client address) in ``failure_window_seconds`` before
    #: further attempts from there are answered 429 without checking the password (an address
    #: alone gets five times as many).
    max_failures: int = 10
    failure_window_seconds: float = 60.0


def _bool(text: str) -> bool | None:
    value = text.strip().lower()
    if value in ("", "auto"):
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise InvalidParameterValue(f"Expected true, false or auto, got '{text}'")


def read_auth_config(environ: Mapping[str, str] | None = None) -> AuthConfig:
    """The configuration from the ini file (if any) and the environment."""
    values: dict[str, str] = {}
    path = ENV.AUTH_CONFIG_PATH.get(environ)
    if path:
        parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
        try:
            with Path(path).open(encoding="utf-8") as handle:
                parser.read_file(handle)
        except OSError as exc:
            raise InvalidParameterValue(
                f"Cannot read the auth config {path}: {exc.strerror}"
            ) from None
        except configparser.Error as exc:
            raise InvalidParameterValue(
                f"The auth config {path} is not a valid ini file: {exc}"
            ) from None
        for section in ("mlflow", "runyard"):
            if parser.has_section(section):
                values.update(parser.items(section))
    function = values.get("authorization_function", "").strip()
    if function and function != _DEFAULT_AUTH_FUNCTION:
        raise InvalidParameterValue(
            f"authorization_function = {function} is not supported: runyard authenticates with "
            "passwords, tokens and sessions itself. Remove the line from the auth config."
        )
    if ENV.AUTH_ADMIN_USERNAME.is_set(environ):
        values["admin_username"] = ENV.AUTH_ADMIN_USERNAME.get(environ) or "admin"
    if ENV.AUTH_ADMIN_PASSWORD.raw(environ) is not None:
        values["admin_password"] = ENV.AUTH_ADMIN_PASSWORD.raw(environ) or ""
    if ENV.AUTH_DEFAULT_PERMISSION.is_set(environ):
        values["default_permission"] = ENV.AUTH_DEFAULT_PERMISSION.get(environ) or ""
    try:
        return AuthConfig(
            default_permission=Permission.parse(values.get("default_permission", "READ")),
            database_uri=values.get("database_uri") or None,
            admin_username=values.get("admin_username") or "admin",
            admin_password=values.get("admin_password") or None,
            cache_ttl_seconds=float(values.get("auth_cache_ttl_seconds", 10)),
            cache_max_size=int(values.get("auth_cache_max_size", 10_000)),
            session_ttl_seconds=int(values.get("session_ttl_seconds", 12 * 3600)),
            token_default_days=int(values.get("token_default_days", 90)),
            token_max_days=int(values.get("token_max_days", 365)),
            secure_cookies=_bool(values.get("secure_cookies", "")),
            max_failures=int(values.get("max_failures", 10)),
            failure_window_seconds=float(values.get("failure_window_seconds", 60)),
        )
    except ValueError as exc:
        raise InvalidParameterValue(f"Invalid auth configuration: {exc}") from None
