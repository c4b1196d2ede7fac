"""Who is calling: HTTP Basic, bearer tokens and session cookies, checked through caches.

A password is verified with the KDF (Argon2id, ~50-150 ms) only when the credential is not in
the cache of verified credentials. The cache key is a keyed BLAKE2b MAC of the user name and
password under the server secret, so the cache holds no password and a memory dump reveals none.
Tokens and sessions are looked up by their SHA-256 (one indexed read), cached the same way.
Entries live ``cache_ttl_seconds``; every change made through this process clears them at once.
When a password entry expires, the stored hash is read again: unchanged, it is trusted again
without the KDF (a changed or deleted password fails that check).

Failed password checks are counted per (user name, client address) and per client address;
past ``max_failures`` (5x that for an address) in ``failure_window_seconds`` further attempts
from there are refused with 429 before any KDF runs, and at most two KDF computations run at a
time, so guessing passwords cannot take the server's CPU from everyone else. The same user
signing in from elsewhere, a cached credential, a token or a session keep working meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import anyio
from cachetools import TTLCache

from runyard.errors import RunyardError, Unauthenticated
from runyard.server.auth.cache import MISSING, ExpiringDict
from runyard.server.auth.config import AuthConfig
from runyard.server.auth.entities import User
from runyard.server.auth.store import AuthStore

__all__ = ["CredentialChecker", "Principal", "parse_authorization"]

_BAD_CREDENTIALS = "Invalid username or password."


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user: User
    #: How they proved it: "basic", "token" or "session".
    via: str
    #: The session's CSRF token (sessions only).
    csrf: str | None = None

    @property
    def username(self) -> str:
        """The user's name."""
        return self.user.username

    @property
    def is_admin(self) -> bool:
        """Admins bypass permission checks."""
        return self.user.is_admin


def parse_authorization(header: str) -> tuple[str, str, str] | None:
    """``("basic", username, password)`` or ``("bearer", token, "")`` from an Authorization
    header; None when it is neither (or malformed)."""
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, sep, password = decoded.partition(":")
        return ("basic", username, password) if sep else None
    if scheme == "bearer" and value:
        return ("bearer", value, "")
    return None


class _Limiter:
    """Failed attempts per key in a sliding window (thread-safe, bounded memory)."""

    def __init__(self, limit: int, window: float, max_keys: int) -> None:
        self._limit = limit
        self._window = window
        self._hits: TTLCache[str, deque[float]] = TTLCache(maxsize=max_keys, ttl=window)
        self._lock = threading.Lock()

    def blocked(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                return 0.0
            while hits and hits[0] <= now - self._window:
                hits.popleft()
            if len(hits) < self._limit:
                return 0.0
            return max(0.0, hits[0] + self._window - now)

    def fail(self, key: str) -> None:
        """Count one failure for ``key``."""
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = deque(maxlen=self._limit)
            hits.append(time.monotonic())
            self._hits[key] = hits  # refreshes the entry's TTL

    def clear(self, key: str) -> None:
        """Forget ``key``'s failures (after a success)."""
        with self._lock:
            self._hits.pop(key, None)


class CredentialChecker:
    """Turns credentials into users, with the caches and the limiter described above."""

    def __init__(self, store: AuthStore, config: AuthConfig, secret: bytes) -> None:
        self._store = store
        self._mac_key = hashlib.sha256(secret).digest()  # BLAKE2b keys are at most 64 bytes
        self._cache: ExpiringDict[bytes, Any] = ExpiringDict(
            config.cache_ttl_seconds, config.cache_max_size
        )
        window = config.failure_window_seconds
        self._limiter = _Limiter(config.max_failures, window, 100_000)
        # An address guessing many names (or a busy NAT) gets more room than one name.
        self._ip_limiter = _Limiter(config.max_failures * 5, window, 100_000)
        # At most two KDF computations at once: guessing cannot starve the thread pool.
        self._kdf_slots = anyio.CapacityLimiter(2)
        self._in_flight: dict[bytes, asyncio.Future[tuple[User, str] | None]] = {}
        #: Credential key → the stored hash it was verified against (see ``password``).
        self._verified: dict[bytes, str] = {}
        self._max_verified = config.cache_max_size

    def key(self, kind: bytes, text: str) -> bytes:
        """The cache key of a credential: a keyed BLAKE2b MAC under the server secret (the
        cache never holds a password, a token or a session id). BLAKE2b rather than
        ``hmac.digest``: OpenSSL 3 spends ~10 µs setting up each HMAC, BLAKE2b's key is a
        parameter of one native call (< 1 µs) — this runs on every request."""
        data = kind + b"\0" + text.encode("utf-8", "surrogatepass")
        return hashlib.blake2b(data, key=self._mac_key, digest_size=32).digest()

    def _cached(self, key: bytes) -> tuple[bool, Any]:
        found = self._cache.get(key)
        return (False, None) if found is MISSING else (True, found)

    def _remember(self, key: bytes, value: Any) -> None:
        self._cache.put(key, value)

    def clear(self) -> None:
        """Forget every cached credential (a password, admin flag, token or user changed)."""
        self._cache.clear()
        self._verified.clear()

    async def password(self, username: str, password: str, client_ip: str | None) -> User:
        """The user for a name and password, or Unauthenticated / REQUEST_LIMIT_EXCEEDED."""
        key = self.key(b"basic", f"{username}\0{password}")
        hit, cached = self._cached(key)
        if hit and isinstance(cached, User):
            return cached
        # Verified before, and the stored hash is still the one it matched: the password is
        # still right (a change or a deletion changes or removes the hash). One indexed read
        # instead of the KDF when a cache entry expires.
        verified = self._verified.get(key)
        if verified is not None:
            current = self._store.user_with_hash(username)
            if current is not None and hmac.compare_digest(current[1], verified):
                self._remember(key, current[0])
                return current[0]
        user_key = f"u:{username}@{client_ip}"
        ip_key = f"ip:{client_ip}"
        wait = max(self._limiter.blocked(user_key), self._ip_limiter.blocked(ip_key))
        if wait > 0:
            raise RunyardError(
                f"Too many failed sign-in attempts; try again in {int(wait) + 1} seconds.",
                error_code="REQUEST_LIMIT_EXCEEDED",
            )
        found = await self._verify_once(key, username, password)
        if found is None:
            self._limiter.fail(user_key)
            self._ip_limiter.fail(ip_key)
            raise Unauthenticated(_BAD_CREDENTIALS)
        user, stored = found
        self._limiter.clear(user_key)
        self._remember(key, user)
        if len(self._verified) >= self._max_verified:
            self._verified.clear()
        self._verified[key] = stored
        return user

    async def _verify_once(
        self, key: bytes, username: str, password: str
    ) -> tuple[User, str] | None:
        """Run the KDF for this credential once, however many requests bring it at the same
        time (a client opening 16 connections does not cost 16 hashes)."""
        pending = self._in_flight.get(key)
        if pending is not None:
            return await pending
        future: asyncio.Future[tuple[User, str] | None] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            async with self._kdf_slots:
                found = await anyio.to_thread.run_sync(
                    self._store.verify_password, username, password
                )
            future.set_result(found)
            return found
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, no "never retrieved" warning
            raise
        finally:
            del self._in_flight[key]

    def _lookup(self, kind: bytes, secret: str, find: Any) -> Any:
        key = self.key(kind, secret)
        hit, value = self._cached(key)
        if hit:
            return value
        value = find(secret)
        self._remember(key, value)
        return value

    async def token(self, secret: str) -> User:
        """The owner of a valid personal access token, or Unauthenticated."""
        user = self._lookup(b"token", secret, self._store.user_for_token)
        if user is None:
            raise Unauthenticated("Invalid, expired or revoked token.")
        return user  # type: ignore[no-any-return]

    def session(self, secret: str) -> tuple[User, str] | None:
        """The user and CSRF token of a live session cookie, None when it is not one."""
        found = self._lookup(b"session", secret, self._store.session)
        return found  # type: ignore[no-any-return]
