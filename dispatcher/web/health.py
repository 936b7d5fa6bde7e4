"""``GET /healthz``: database and Redis reachable (200), else 503 naming which.

The route is unauthenticated (load balancers and orchestrators call it), so anyone can call
it as often as they like: its answer is kept for :data:`HEALTH_TTL_S`, checked by one caller
at a time, and Redis is pinged on one long-lived client with short timeouts (not a new
connection per call; the shared client may wait forever on a dead host).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from dispatcher.runtime import Runtime

__all__ = ["HEALTH_TTL_S", "HealthCheck", "healthz"]

log = logging.getLogger(__name__)

HEALTH_TTL_S = 1.5
"""How long one answer is served again."""

_TIMEOUT_S = 2.0


class HealthCheck:
    """The cached health of one app's runtime."""

    def __init__(self, runtime: Runtime, clock: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self.clock = clock
        self._lock = threading.Lock()
        self._answer: tuple[float, dict[str, str]] | None = None
        self._redis: redis.Redis[Any] | None = None

    def _database_ok(self) -> bool:
        try:
            with self.runtime.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            log.warning("health check: database unreachable", exc_info=True)
            return False
        return True

    def _redis_ok(self) -> bool:
        if self._redis is None:
            self._redis = redis.Redis.from_url(
                self.runtime.redis_url,
                socket_connect_timeout=_TIMEOUT_S,
                socket_timeout=_TIMEOUT_S,
                client_name="dispatcher-healthz",
            )
        try:
            return bool(self._redis.ping())
        except (redis.RedisError, OSError):
            log.warning("health check: Redis unreachable", exc_info=True)
            return False

    def checks(self) -> dict[str, str]:
        """``{"db": "ok"|"unreachable", "redis": ...}``, at most :data:`HEALTH_TTL_S` old."""
        with self._lock:  # concurrent callers wait for one check instead of each running it
            now = self.clock()
            if self._answer is not None and now - self._answer[0] < HEALTH_TTL_S:
                return self._answer[1]
            checks = {
                "db": "ok" if self._database_ok() else "unreachable",
                "redis": "ok" if self._redis_ok() else "unreachable",
            }
            self._answer = (self.clock(), checks)
            return checks


def healthz(request: Request) -> JSONResponse:
    """200 when the database and Redis answer, 503 naming which one does not."""
    check: HealthCheck = request.app.state.health
    checks = check.checks()
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "unavailable", **checks}
    return JSONResponse(body, status_code=200 if healthy else 503)
