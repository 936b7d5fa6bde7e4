"""``/healthz`` is cheap to hammer: one check per 1.5 s, Redis pinged on one connection."""

from __future__ import annotations

import time

import httpx
import redis
from sqlalchemy import event

from dispatcher.runtime import Runtime
from dispatcher.web.health import HEALTH_TTL_S


def test_healthz_answers_from_cache(client: httpx.Client, runtime: Runtime) -> None:
    """Twenty calls within the cache's life query the database once."""
    statements: list[str] = []
    event.listen(runtime.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    for _ in range(20):
        assert client.get("/healthz").status_code == 200
    assert statements.count("SELECT 1") == 1


def test_healthz_checks_again_once_stale(client: httpx.Client, runtime: Runtime) -> None:
    """After the cache's life the next call checks again, on the same Redis connection."""
    statements: list[str] = []
    event.listen(runtime.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    probe = redis.Redis.from_url(runtime.redis_url)

    def health_connections() -> list[str]:
        return [c["id"] for c in probe.client_list() if c["name"] == "dispatcher-healthz"]

    client.get("/healthz")
    first = health_connections()
    time.sleep(HEALTH_TTL_S + 0.2)
    client.get("/healthz")
    second = health_connections()
    probe.close()
    assert statements.count("SELECT 1") == 2
    assert first  # a connection kept open: the same one serves the next check
    assert set(second) == set(first)
