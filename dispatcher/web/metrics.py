"""``GET /metrics`` for Prometheus, and the count of every webhook call by our answer.

The endpoint needs the API token (``Authorization: Bearer``) unless
``DISPATCHER_METRICS_PUBLIC=true`` (a scraper on a private network that cannot hold a token):
the figures are the fleet's business volume. What it serves is :mod:`dispatcher.metrics`.

Webhook calls are counted by one ASGI middleware rather than in each route, from the status
of our answer: ``accepted`` (2xx), ``refused`` (401/403: wrong credentials or secret),
``malformed`` (other 4xx) and ``error`` (5xx). The provider comes from the path, never the
path's secret segment.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher.constants import PROVIDERS
from dispatcher.metrics import render_metrics
from dispatcher.runtime import Runtime
from dispatcher.web.auth import require_token
from dispatcher.web.state import get_runtime

__all__ = ["CallbackCounter", "callback_result", "router"]

router = APIRouter(include_in_schema=False)


_BEARER = HTTPBearer(auto_error=False)


def _metrics_access(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> None:
    """The API token, unless the operator made the metrics public."""
    if not runtime.settings.metrics_public:
        require_token(request, bearer, runtime)


@router.get("/metrics", dependencies=[Depends(_metrics_access)])
def metrics(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Response:
    """The whole fleet's counters and gauges, read now (runs in a worker thread: it queries)."""
    return Response(render_metrics(runtime), media_type=CONTENT_TYPE_LATEST)


def callback_result(status: int) -> str:
    """The ``result`` label of a webhook call answered with ``status``."""
    if 200 <= status < 300:
        return "accepted"
    if status in (401, 403):
        return "refused"
    if status >= 500:
        return "error"
    return "malformed"


def _provider(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) >= 3 and parts[1] == "webhooks" and parts[2] in PROVIDERS:
        return parts[2]
    return None


class CallbackCounter:
    """ASGI middleware: counts each ``/webhooks/<provider>...`` call by its answer."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        provider = _provider(scope["path"]) if scope["type"] == "http" else None
        if provider is None:
            await self.app(scope, receive, send)
            return
        counted = False

        async def count(status: int) -> None:
            nonlocal counted
            counted = True
            await run_in_threadpool(self.runtime.meter.callback, provider, callback_result(status))

        async def count_then_send(message: Message) -> None:
            # Counted before the answer leaves: whoever saw the answer also sees the count.
            if message["type"] == "http.response.start":
                await count(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, count_then_send)
        finally:
            if not counted:  # an exception escaping the app is answered 500 by Starlette
                await count(500)
