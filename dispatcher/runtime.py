"""One process's connections: database engine, Redis, HTTP pool, limiters, provider clients.

Built lazily on first use and dropped after a fork (``workers.signals`` calls :func:`reset`),
so every worker process opens its own sockets instead of sharing its parent's.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import httpx
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.config import Settings, load_settings
from dispatcher.constants import (
    BYTEHAND,
    REDIS_CONNECT_TIMEOUT_S,
    REDIS_HEALTH_CHECK_S,
    REDIS_READ_TIMEOUT_S,
    TIMETOCHAT,
    limiter_key,
)
from dispatcher.db import make_engine
from dispatcher.embedded import ensure_embedded_redis
from dispatcher.inbox import open_own_inbox, own_inbox_url
from dispatcher.meter import Meter, MeteredGate
from dispatcher.providers.base import build_http_client
from dispatcher.providers.bytehand import ByteHandClient
from dispatcher.providers.timetochat import TimeToChatClient
from dispatcher.providers.tokens import RedisTokenStore
from dispatcher.ratelimit import FleetLimiter, Reservation

__all__ = ["Runtime", "current", "redis_url_for", "reset"]


def redis_url_for(settings: Settings) -> str:
    """``REDIS_URL``, or the embedded Redis of the state directory (started if needed)."""
    return settings.redis_url or ensure_embedded_redis(settings.state_dir)


class Runtime:
    """Everything a task needs, created once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @functools.cached_property
    def redis_url(self) -> str:
        """Resolved on first use: commands that only read the database never start a Redis."""
        return redis_url_for(self.settings)

    @functools.cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @functools.cached_property
    def sessions(self) -> sessionmaker[Session]:
        return sessionmaker(self.engine, expire_on_commit=False)

    @functools.cached_property
    def inbox_engine(self) -> Engine | None:
        """The callback inbox's own file (SQLite), None where it is a table of the database."""
        url = own_inbox_url(self.settings.database_url)
        return None if url is None else open_own_inbox(url)

    @functools.cached_property
    def redis(self) -> redis.Redis[Any]:
        return redis.Redis.from_url(
            self.redis_url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
            socket_timeout=REDIS_READ_TIMEOUT_S,
            health_check_interval=REDIS_HEALTH_CHECK_S,
        )

    @functools.cached_property
    def meter(self) -> Meter:
        """The fleet-wide counters (in Redis) this process adds to."""
        return Meter(self.redis)

    @functools.cached_property
    def http(self) -> httpx.Client:
        dispatch = self.settings.dispatch
        return build_http_client(dispatch.http_connect_timeout_s, dispatch.http_read_timeout_s)

    def account(self, provider: str) -> str:
        """The account whose budget a provider's calls spend."""
        if provider == BYTEHAND:
            return self.settings.bytehand.client_id
        return self.settings.timetochat.service_id

    @functools.cache  # noqa: B019 - one limiter per provider for the life of the process
    def limiter(self, provider: str) -> FleetLimiter:
        return FleetLimiter(
            self.redis_url,
            limiter_key(provider, self.account(provider)),
            calls_per_second=self.settings.dispatch.calls_per_second,
            hold_s=self.longest_call_s,
            on_wait=functools.partial(self.meter.limiter_wait, provider),
        )

    def gate(self, provider: str, reservation: Reservation | None = None) -> MeteredGate:
        """The gate of a provider's calls: its limiter (or a slot reserved from it for the
        call), counting every call it lets through."""
        inner = self.limiter(provider) if reservation is None else reservation.gate
        return MeteredGate(inner, self.meter, provider)

    @property
    def longest_call_s(self) -> float:
        """The longest one HTTP call can last: waiting for a pooled connection, connecting,
        writing and reading are each bounded (see ``build_http_client``)."""
        dispatch = self.settings.dispatch
        return 2 * dispatch.http_connect_timeout_s + 2 * dispatch.http_read_timeout_s + 1.0

    @functools.cached_property
    def bytehand(self) -> ByteHandClient:
        settings = self.settings.bytehand
        return ByteHandClient(
            settings.url,
            settings.client_id,
            settings.key,
            self.http,
            gate=self.gate(BYTEHAND),
        )

    @functools.cached_property
    def timetochat(self) -> TimeToChatClient:
        settings = self.settings.timetochat
        return TimeToChatClient(
            settings.url,
            settings.service_id,
            settings.password,
            self.http,
            RedisTokenStore(self.redis, settings.service_id),
            gate=self.gate(TIMETOCHAT),
            token_lifetime=settings.token_lifetime,
            token_margin=settings.token_margin,
        )

    def close(self) -> None:
        """Close what was opened; safe to call on a runtime that opened nothing."""
        opened = vars(self)
        if "http" in opened:
            self.http.close()
        if "redis" in opened:
            self.redis.close()
        if "engine" in opened:
            self.engine.dispose()
        if (inbox_engine := opened.get("inbox_engine")) is not None:
            inbox_engine.dispose()


_current: Runtime | None = None
_creating = threading.Lock()


def current() -> Runtime:
    """This process's runtime, built from the settings on first use."""
    global _current  # noqa: PLW0603 - a per-process singleton, reset after fork
    with _creating:  # a worker's threads start together: one runtime, not one each
        if _current is None:
            _current = Runtime(load_settings())
        return _current


def reset(runtime: Runtime | None = None) -> None:
    """Forget this process's runtime (after a fork), or install one (tests)."""
    global _current  # noqa: PLW0603
    _current = runtime
