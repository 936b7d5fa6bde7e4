"""The TimeToChat token cache, shared by the whole fleet.

A token request spends the same 20 calls/s budget as a send, so ten workers must not each fetch
their own: the token lives in Redis with a TTL shorter than its lifetime, and one process at a
time refreshes it under a Redis lock while the others wait and re-read. A refused token is
discarded only if it is still the cached one (compare-and-delete), so a process holding a stale
token cannot throw away the fresh one another process just stored.

Tokens travel as :class:`~dispatcher.config.Secret` so no ``repr`` or log line shows them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any, Protocol

import redis
from redis.exceptions import LockError, RedisError

from dispatcher.config import Secret
from dispatcher.constants import TIMETOCHAT, token_key, token_lock_key
from dispatcher.errors import ProviderUnavailable

__all__ = ["MemoryTokenStore", "RedisTokenStore", "TokenFetcher", "TokenStore"]

TokenFetcher = Callable[[], Secret]
"""Requests a new token from the provider (one HTTP call)."""

_MS = timedelta(milliseconds=1)

# Deletes the key only when it still holds the token that failed.
_COMPARE_AND_DELETE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class TokenStore(Protocol):
    """Where a client finds the current token; implementations must serialise refreshes."""

    def get(self, fetch: TokenFetcher, ttl: timedelta) -> Secret:
        """The cached token, or one obtained from ``fetch`` (by one caller only) and cached."""
        ...

    def discard(self, token: Secret) -> None:
        """Forget ``token`` if, and only if, it is still the cached one."""
        ...


class MemoryTokenStore:
    """One process's cache, for unit tests and single-process tools."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Secret | None = None
        self._expires_at = 0.0

    def get(self, fetch: TokenFetcher, ttl: timedelta) -> Secret:
        """See :meth:`TokenStore.get`; the lock is held while fetching, so others wait."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                self._token = fetch()
                self._expires_at = self._clock() + ttl.total_seconds()
            return self._token

    def discard(self, token: Secret) -> None:
        """See :meth:`TokenStore.discard`."""
        with self._lock:
            if self._token == token:
                self._token = None


@contextmanager
def _redis_errors() -> Iterator[None]:
    """Our boundary for redis errors: without the cache no call can be authorised, so retry."""
    try:
        yield
    except RedisError as exc:
        raise ProviderUnavailable(
            "the token cache (Redis) cannot be reached", provider=TIMETOCHAT, code="token_cache"
        ) from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisTokenStore:
    """The fleet's cache: ``token_key(service_id)``, refreshed under ``token_lock_key``.

    ``lock_timeout`` bounds how long a crashed refresher can hold the lock; it must exceed one
    token request (connect + read timeouts). ``wait_timeout`` bounds how long the others wait.
    """

    def __init__(
        self,
        client: redis.Redis[Any],
        service_id: str,
        *,
        lock_timeout: timedelta = timedelta(seconds=30),
        wait_timeout: timedelta = timedelta(seconds=30),
    ) -> None:
        self._redis = client
        self._key = token_key(service_id)
        self._lock_key = token_lock_key(service_id)
        self._lock_timeout = lock_timeout.total_seconds()
        self._wait_timeout = wait_timeout.total_seconds()
        self._compare_and_delete = client.register_script(_COMPARE_AND_DELETE)

    def _cached(self) -> Secret | None:
        value = self._redis.get(self._key)
        return None if value is None else Secret(_text(value))

    def get(self, fetch: TokenFetcher, ttl: timedelta) -> Secret:
        """See :meth:`TokenStore.get`."""
        with _redis_errors():
            cached = self._cached()
            if cached is not None:
                return cached
            lock = self._redis.lock(
                self._lock_key,
                timeout=self._lock_timeout,
                sleep=0.02,
                blocking_timeout=self._wait_timeout,
            )
            if not lock.acquire():
                raise ProviderUnavailable(
                    "another process is refreshing the token and did not finish in time",
                    provider=TIMETOCHAT,
                    code="token_lock",
                )
            try:
                cached = self._cached()
                if cached is not None:
                    return cached
                token = fetch()
                self._redis.set(self._key, token.reveal(), px=max(1, int(ttl / _MS)))
                return token
            finally:
                # LockError: the lock expired during a slow fetch; the token is stored anyway.
                with suppress(LockError):
                    lock.release()

    def discard(self, token: Secret) -> None:
        """See :meth:`TokenStore.discard`: an atomic compare-and-delete in Lua."""
        with _redis_errors():
            self._compare_and_delete(keys=[self._key], args=[token.reveal()])
