"""The web app factory: provider webhooks, the JSON API, the dashboard and a health check.

``create_app(runtime)`` builds an app on an explicit :class:`~dispatcher.runtime.Runtime`, so
tests run several apps on several databases; :mod:`dispatcher.web.asgi` builds the process's
app for uvicorn. Routes::

    GET  /healthz                        no auth: database and Redis reachable (200, else 503)
    GET  /webhooks/bytehand              ByteHand id + key (see dispatcher.web.webhooks)
    POST /webhooks/timetochat/{secret}   TimeToChat path secret + username
    *    /campaigns...                   bearer token (see dispatcher.web.api)
    *    /suppressions..., GET /replies  bearer token (see dispatcher.web.audience)
    GET  /                               dashboard, token once then cookie
    GET  /openapi.json                   bearer token (see dispatcher.web.openapi)

No interactive docs pages are served, and the document only to holders of the API token: this
app faces the providers on the internet.
"""

from __future__ import annotations

import logging
from typing import Annotated

import redis
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from dispatcher.runtime import Runtime
from dispatcher.web import api, audience, dashboard, webhooks
from dispatcher.web.errors import install_error_handlers
from dispatcher.web.openapi import serve_openapi
from dispatcher.web.state import OnStart, get_runtime, no_kick

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_HEALTH_TIMEOUT_S = 2.0


def _database_ok(runtime: Runtime) -> bool:
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        log.warning("health check: database unreachable", exc_info=True)
        return False
    return True


def _redis_ok(runtime: Runtime) -> bool:
    # A client of its own with short timeouts: the shared one may wait forever on a dead host.
    client: redis.Redis[bytes] = redis.Redis.from_url(
        runtime.redis_url,
        socket_connect_timeout=_HEALTH_TIMEOUT_S,
        socket_timeout=_HEALTH_TIMEOUT_S,
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        log.warning("health check: Redis unreachable", exc_info=True)
        return False
    finally:
        client.close()


def healthz(runtime: Annotated[Runtime, Depends(get_runtime)]) -> JSONResponse:
    """200 when the database and Redis answer, 503 naming which one does not."""
    checks = {
        "db": "ok" if _database_ok(runtime) else "unreachable",
        "redis": "ok" if _redis_ok(runtime) else "unreachable",
    }
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "unavailable", **checks}
    return JSONResponse(body, status_code=200 if healthy else 503)


def create_app(runtime: Runtime, *, on_start: OnStart = no_kick) -> FastAPI:
    """The web app on ``runtime``; ``on_start(campaign_id)`` kicks the feeder after a start."""
    app = FastAPI(
        title="SMS campaign dispatcher",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.on_start = on_start
    install_error_handlers(app)
    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    app.include_router(webhooks.router)
    app.include_router(api.router)
    app.include_router(audience.router)
    app.include_router(dashboard.router)
    serve_openapi(app)
    return app
