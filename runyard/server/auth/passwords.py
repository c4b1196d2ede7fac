"""Password hashing (Argon2id, memory-hard) and secrets.

A password is hashed once, when it is set; it is verified when a credential is not in the
authenticated-credential cache (see :mod:`runyard.server.auth.authn`). Tokens and session ids are
random 256-bit secrets: the store keeps their SHA-256, which is enough for secrets of that size.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from runyard.errors import InvalidParameterValue

__all__ = [
    "check_password_policy",
    "digest",
    "hash_password",
    "needs_rehash",
    "new_secret",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 8
#: argon2-cffi's RFC 9106 "low memory" profile: 64 MiB, 3 passes (~50 ms on one core).
_HASHER = PasswordHasher()


def check_password_policy(password: str | None) -> str:
    """``password`` when it is acceptable, else a clear error."""
    if not password or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidParameterValue(
            f"Password must be at least {MIN_PASSWORD_LENGTH} characters long."
        )
    if len(password) > 1024:
        raise InvalidParameterValue("Password must be at most 1024 characters long.")
    return password


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (salted, parameters encoded in the string)."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash`` (constant time in the hasher)."""
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def new_secret(prefix: str = "") -> str:
    """A random 256-bit secret, URL-safe, with an optional recognisable prefix."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The SHA-256 (hex) under which a token or session id is stored and looked up."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
