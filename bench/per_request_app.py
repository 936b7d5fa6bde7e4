"""The ByteHand webhook as it was before the inbox: one transaction per callback, in the request.

Served by ``bench/callbacks.py`` beside the real app (``dispatcher.web.asgi:app``) so both paths
are measured in the same run, on the same machine and database. Same parsing and the same
``tracking.apply_report``; only where and when the work happens differs.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from dispatcher import runtime, tracking
from dispatcher.constants import BYTEHAND
from dispatcher.db import session_scope
from dispatcher.models import utcnow
from dispatcher.providers.bytehand_webhooks import StatusCallback, parse_callback
from dispatcher.reports import Report

app = FastAPI()


@app.get("/webhooks/bytehand")
def bytehand_callback(request: Request) -> dict[str, Any]:
    """Parse, then match and apply in this request's own transaction."""
    current = runtime.current()
    query = dict(request.query_params)
    settings = current.settings.bytehand
    parsed = parse_callback(query, client_id=settings.client_id, key=settings.key)
    assert isinstance(parsed, StatusCallback)
    report = Report(
        provider=BYTEHAND,
        source="callback",
        provider_state=parsed.provider_state,
        state=parsed.state,
        dedup_key=(
            f"cb:bytehand:{parsed.message_id}:{parsed.provider_state}:"
            f"{parsed.updated_at.isoformat()}"
        ),
        payload={name: value for name, value in query.items() if name != "key"},
        provider_message_id=parsed.message_id,
    )
    with session_scope(current.sessions) as session:
        result = tracking.apply_report(session, report, utcnow())
    return {"ok": True, "result": str(result)}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Up (the bench waits for it before sending)."""
    return {"status": "ok"}
