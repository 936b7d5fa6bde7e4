"""The web app factory: provider webhooks, the JSON API, the console and a health check.

``create_app(runtime)`` builds an app on an explicit :class:`~dispatcher.runtime.Runtime`, so
tests run several apps on several databases; :mod:`dispatcher.web.asgi` builds the process's
app for uvicorn. Routes::

    GET  /healthz                        no auth: database and Redis reachable (200, else 503),
                                         the answer kept 1.5 s (see dispatcher.web.health)
    GET  /webhooks/bytehand              ByteHand id + key (see dispatcher.web.webhooks)
    POST /webhooks/timetochat/{secret}   TimeToChat path secret + username
    *    /campaigns...                   bearer token (see dispatcher.web.api)
    POST /estimates                      bearer token: a file's figures, nothing stored
    *    /suppressions..., GET /replies  bearer token (see dispatcher.web.audience)
    GET  /console/...                     the marketing console (dispatcher.console): signed
                                         session cookie after posting the token; / leads there
    GET  /openapi.json                   bearer token (see dispatcher.web.openapi)
    GET  /metrics                        bearer token unless DISPATCHER_METRICS_PUBLIC=true

No interactive docs pages are served, and the document only to holders of the API token: this
app faces the providers on the internet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from dispatcher import console
from dispatcher.constants import PROVIDERS
from dispatcher.inbox import Inbox
from dispatcher.meter import FLUSH_EVERY_S
from dispatcher.replies import Audience
from dispatcher.runtime import Runtime
from dispatcher.web import api, audience, estimates, metrics, webhooks
from dispatcher.web.errors import install_error_handlers
from dispatcher.web.health import HealthCheck, healthz
from dispatcher.web.openapi import serve_openapi
from dispatcher.web.state import OnStart, no_kick

__all__ = ["create_app"]


class _App(FastAPI):
    """FastAPI with the webhook edge outermost: the providers' callbacks skip FastAPI's own
    middleware (error pages, telemetry, body limits) as well as its routing."""

    def build_middleware_stack(self) -> ASGIApp:
        return webhooks.WebhookEdge(super().build_middleware_stack())


async def _flush_meter(runtime: Runtime) -> None:
    """Write the webhook answers counted in memory every :data:`FLUSH_EVERY_S`."""
    while True:
        await asyncio.sleep(FLUSH_EVERY_S)
        await run_in_threadpool(runtime.meter.flush)


def create_app(runtime: Runtime, *, on_start: OnStart = no_kick) -> FastAPI:
    """The web app on ``runtime``; ``on_start(campaign_id)`` kicks the feeder after a start.

    The callback inbox's threads run while the app is served (its lifespan); building the app
    alone (for its OpenAPI document) touches neither the runtime nor the database."""

    @asynccontextmanager
    async def lifespan(served: FastAPI) -> AsyncIterator[None]:
        audiences = {p: Audience.for_provider(runtime.settings, p) for p in PROVIDERS}
        inbox = Inbox(runtime.engine, store=runtime.inbox_engine, audiences=audiences)
        served.state.inbox = inbox
        inbox.start()
        flushing = asyncio.create_task(_flush_meter(runtime))
        try:
            yield
        finally:
            flushing.cancel()
            inbox.stop()
            runtime.meter.flush()

    app = _App(
        title="SMS campaign dispatcher",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.on_start = on_start
    app.state.health = HealthCheck(runtime)
    install_error_handlers(app)
    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    app.include_router(api.router)
    app.include_router(audience.router)
    app.include_router(estimates.router)
    app.include_router(metrics.router)
    console.install(app)
    serve_openapi(app, webhooks.webhook_paths())
    return app
