"""Provider callbacks: ByteHand's handler GETs and TimeToChat's Push_CRA POSTs.

The parsing is pure (:mod:`dispatcher.providers.bytehand_webhooks`,
:mod:`dispatcher.providers.timetochat_webhooks`); the database side is
:mod:`dispatcher.tracking` (recorded once by ``dedup_key``, applied only forwards). This module
is the thin edge between them, and decides what the provider is told:

* **403** wrong credentials (ByteHand ``id``/``key``; TimeToChat path secret or ``username``).
  With no TimeToChat webhook secret configured every Push_CRA is refused: an unset secret must
  not mean "accept anything".
* **400** a callback we cannot read (the provider repeats it; nothing was stored).
* **200** everything else, quickly, with a small JSON body: applied, duplicate, stale, and also
  **unknown message ids**: the report is recorded (``status_events`` with no message) but moves
  nothing. Answering an error there would make the provider retry for 48 h a report we can
  never apply; polling settles such messages instead. ByteHand USSD actions, which we never
  use, are acknowledged and ignored for the same reason.

Values go into ``VARCHAR`` columns and JSON: a NUL character, text that is not valid Unicode
or a value longer than its column is a malformed callback (400), not a database error (500).
The ByteHand ``key`` is never stored or logged: payloads keep a whitelist of fields without it.

Both routes read their raw input, credentials first; the OpenAPI document describes it from
:mod:`dispatcher.web.schemas` without FastAPI judging it (see :mod:`dispatcher.web.openapi`).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from dispatcher import tracking
from dispatcher.constants import BYTEHAND, TIMETOCHAT
from dispatcher.db import session_scope
from dispatcher.errors import WebhookPayloadError
from dispatcher.models import utcnow
from dispatcher.providers.base import check_webhook_secret
from dispatcher.providers.bytehand_webhooks import IncomingSms, StatusCallback, parse_callback
from dispatcher.providers.timetochat_webhooks import PushEvent, parse_push_cra
from dispatcher.replies import Audience
from dispatcher.runtime import Runtime
from dispatcher.tracking import Report
from dispatcher.web.bodies import read_limited
from dispatcher.web.openapi import WEBHOOK_ERRORS, query_parameters, request_body
from dispatcher.web.schemas import ByteHandCallback, PushCra
from dispatcher.web.state import get_runtime

__all__ = ["MAX_PUSH_BYTES", "router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=WEBHOOK_ERRORS)

MAX_PUSH_BYTES = 1 << 20
"""A Push_CRA POST carries a handful of small items; anything this large is not one."""

_BYTEHAND_FIELDS = (
    "action",
    "id",
    "message",
    "description",
    "error_code",
    "updated_at",
    "to",
    "from",
    "text",
    "posted_at",
)
"""What a ByteHand payload keeps: every documented field except ``key``."""

_USSD_ACTIONS = frozenset({"ussd", "ussdStatus"})

# Column sizes of dispatcher.models (PostgreSQL enforces them; SQLite does not).
_STATE_LEN = 40
_ID_LEN = 64
_NUMBER_LEN = 32


def _clean(name: str, value: str | None, limit: int | None = None) -> None:
    """Refuse what the database would choke on, as a malformed callback."""
    if value is None:
        return
    if "\x00" in value:
        raise WebhookPayloadError(f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise WebhookPayloadError(f"{name} is not valid Unicode") from exc
    if limit is not None and len(value) > limit:
        raise WebhookPayloadError(f"{name} is longer than {limit} characters")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@router.get("/bytehand", openapi_extra={"parameters": query_parameters(ByteHandCallback)})
def bytehand_callback(request: Request, runtime: Runtime = Depends(get_runtime)) -> dict[str, Any]:  # noqa: B008
    """One ByteHand callback: a status of a message we sent, or an incoming SMS."""
    query = dict(request.query_params)
    settings = runtime.settings.bytehand
    try:
        parsed = parse_callback(query, client_id=settings.client_id, key=settings.key)
    except WebhookPayloadError:
        # parse_callback checks credentials first: reaching here means the call is genuine.
        if query.get("action") in _USSD_ACTIONS:
            return {"ok": True, "result": "ignored"}
        raise
    payload = {name: query[name] for name in _BYTEHAND_FIELDS if name in query}
    for name, value in payload.items():
        _clean(name, value)
    now = utcnow()
    if isinstance(parsed, StatusCallback):
        _clean("description", parsed.provider_state, _STATE_LEN)
        report = Report(
            provider=BYTEHAND,
            source="callback",
            provider_state=parsed.provider_state,
            state=parsed.state,
            dedup_key=(
                f"cb:bytehand:{parsed.message_id}:{parsed.provider_state}:"
                f"{parsed.updated_at.isoformat()}"
            ),
            payload=payload,
            provider_message_id=parsed.message_id,
            error_code=str(parsed.error_code),
        )
        with session_scope(runtime.sessions) as session:
            result = tracking.apply_report(session, report, now)
        return {"ok": True, "result": str(result)}
    assert isinstance(parsed, IncomingSms)
    _clean("message", parsed.message_id, _ID_LEN)
    _clean("from", parsed.sender, _NUMBER_LEN)
    _clean("to", parsed.to, _NUMBER_LEN)
    with session_scope(runtime.sessions) as session:
        stored = tracking.store_inbound(
            session,
            provider=BYTEHAND,
            from_number=parsed.sender,
            to_number=parsed.to,
            text=parsed.text,
            dedup_key=f"mo:bytehand:{parsed.message_id}",
            now=now,
            provider_message_id=parsed.message_id,
            audience=Audience.for_provider(runtime.settings, BYTEHAND),
        )
    return {"ok": True, "result": "stored" if stored else "duplicate"}


def _push_payload(event: PushEvent) -> dict[str, Any]:
    return {
        "call_id": event.call_id,
        "ref_externe": event.ext_ref,
        "to": event.to,
        "from": event.sender,
        "date": event.date.isoformat(),
        "status": event.status,
        "info": event.info,
    }


def _check_event(event: PushEvent) -> None:
    _clean("call_id", event.call_id, _ID_LEN)
    _clean("ref_externe", event.ext_ref, 150)
    _clean("to", event.to, _NUMBER_LEN)
    _clean("from", event.sender, _NUMBER_LEN)
    _clean("info", event.info)


def _parse_push(body: bytes, service_id: str) -> list[PushEvent]:
    """The parser, with the failures of ``json``/``datetime`` it lets through made ours."""
    try:
        events = parse_push_cra(body, service_id=service_id)
    except (RecursionError, OverflowError) as exc:
        # Deeply nested JSON, or a date whose zone pushes it out of datetime's range.
        raise WebhookPayloadError("Push_CRA body cannot be read") from exc
    for event in events:
        _check_event(event)
    return events


def _apply_push(runtime: Runtime, events: list[PushEvent]) -> dict[str, int]:
    """Every item of one POST in one transaction: all recorded, or none (and a 5xx retry)."""
    now = utcnow()
    results: dict[str, int] = {}
    audience = Audience.for_provider(runtime.settings, TIMETOCHAT)
    with session_scope(runtime.sessions) as session:
        for event in events:
            payload = _push_payload(event)
            when = event.date.isoformat()
            if event.state is not None:
                label = event.info if event.status == "ERROR" and event.info else event.status
                report = Report(
                    provider=TIMETOCHAT,
                    source="callback",
                    provider_state=label[:_STATE_LEN],
                    state=event.state,
                    dedup_key=(
                        f"cb:timetochat:{event.call_id or ''}:{event.ext_ref or ''}:"
                        f"{event.status}:{when}"
                    ),
                    payload=payload,
                    provider_message_id=event.call_id,
                    ext_ref=event.ext_ref,
                )
                outcome = str(tracking.apply_report(session, report, now))
            else:
                # INCOMING and ANSWERED: ``to`` is the customer's mobile and ``from`` the
                # service number (as in the original's examples), so the SMS came *from* ``to``.
                text = event.info or ""
                key = (
                    f"mo:timetochat:{event.status}:{event.call_id or ''}:{event.ext_ref or ''}:"
                    f"{event.to}:{when}:{_digest(text)}"
                )
                answered = event.status == "ANSWERED"
                stored = tracking.store_inbound(
                    session,
                    provider=TIMETOCHAT,
                    from_number=event.to,
                    to_number=event.sender,
                    text=text,
                    dedup_key=key,
                    now=now,
                    reply_to_ext_ref=event.ext_ref if answered else None,
                    reply_to_provider_id=event.call_id if answered else None,
                    audience=audience,
                )
                outcome = "stored" if stored else "duplicate"
            results[outcome] = results.get(outcome, 0) + 1
    return results


@router.post("/timetochat/{secret}", openapi_extra=request_body(PushCra))
async def timetochat_push(
    secret: str,
    request: Request,
    runtime: Runtime = Depends(get_runtime),  # noqa: B008
) -> dict[str, Any]:
    """One Push_CRA POST: status reports (SENT, RECEIVED, ERROR), MOs and answers."""
    settings = runtime.settings.timetochat
    check_webhook_secret(secret, settings.webhook_secret)
    body = await read_limited(request, MAX_PUSH_BYTES)
    events = _parse_push(body, settings.service_id)
    results = await run_in_threadpool(_apply_push, runtime, events)
    return {"ok": True, "results": results}
