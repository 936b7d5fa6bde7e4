"""``GET /metrics`` for Prometheus.

The endpoint needs the API token (``Authorization: Bearer``) unless
``DISPATCHER_METRICS_PUBLIC=true`` (a scraper on a private network that cannot hold a token):
the figures are the fleet's business volume. What it serves is :mod:`dispatcher.metrics`.

Webhook calls are counted by :class:`dispatcher.web.webhooks.WebhookEdge`, from the status of
our answer: ``accepted`` (2xx), ``refused`` (401/403: wrong credentials or secret),
``malformed`` (other 4xx) and ``error`` (5xx).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST

from dispatcher.metrics import render_metrics
from dispatcher.runtime import Runtime
from dispatcher.web.auth import require_token
from dispatcher.web.state import get_runtime

__all__ = ["router"]

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
