"""Provider callbacks: ByteHand's handler GETs and TimeToChat's Push_CRA POSTs.

The parsing is pure (:mod:`dispatcher.providers.bytehand_webhooks`,
:mod:`dispatcher.providers.timetochat_webhooks`); a callback that passes is appended to the
:mod:`dispatcher.inbox` and answered once that append is committed; the inbox applier then
matches and applies it in a batch (:mod:`dispatcher.reports`: recorded once by ``dedup_key``,
applied only forwards; incoming SMS through :func:`dispatcher.tracking.store_inbound`). This
module is the thin edge, and decides what the provider is told:

* **403** wrong credentials (ByteHand ``id``/``key``; TimeToChat path secret or ``username``).
  With no TimeToChat webhook secret configured every Push_CRA is refused: an unset secret must
  not mean "accept anything".
* **400** a callback we cannot read (the provider repeats it; nothing was stored).
* **413** a Push_CRA POST larger than :data:`MAX_PUSH_BYTES` or carrying more than
  :data:`MAX_PUSH_ITEMS` items (one such POST once held the SQLite write lock for 10 s).
* **200** everything else, once durable (``{"result": "accepted"}``; what became of it is in
  ``status_events``): repeats, stale reports, and also **unknown message ids**: the report is
  recorded (``status_events`` with no message, up to a cap) but moves nothing. Answering an
  error there would make the provider retry for 48 h a report we can never apply; polling
  settles such messages instead. ByteHand USSD actions, which we never use, are acknowledged and
  ignored for the same reason.

Values go into ``VARCHAR`` columns and JSON: a NUL character, text that is not valid Unicode
or a value longer than its column is a malformed callback (400), not a database error (500).
The ByteHand ``key`` is never stored or logged: payloads keep a whitelist of fields without it.

Both routes are ``async`` and take the runtime and the inbox from the app directly, not as
FastAPI dependencies: a plain-function dependency runs in the thread pool, and two thread hops
per callback cost more than the rest of the request. Both read their raw input, credentials
first; the OpenAPI document describes it from
:mod:`dispatcher.web.schemas` without FastAPI judging it (see :mod:`dispatcher.web.openapi`).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from fastapi import APIRouter, Request

from dispatcher.constants import BYTEHAND, TIMETOCHAT
from dispatcher.errors import WebhookPayloadError
from dispatcher.inbox import Item, mo_item, report_item
from dispatcher.providers.base import check_webhook_secret
from dispatcher.providers.bytehand_webhooks import IncomingSms, StatusCallback, parse_callback
from dispatcher.providers.timetochat_webhooks import PushEvent, parse_push_cra
from dispatcher.reports import Report
from dispatcher.web.bodies import read_limited
from dispatcher.web.errors import ApiError
from dispatcher.web.openapi import WEBHOOK_ERRORS, query_parameters, request_body
from dispatcher.web.schemas import ByteHandCallback, PushCra
from dispatcher.web.state import get_inbox, get_runtime

__all__ = ["MAX_PUSH_BYTES", "MAX_PUSH_ITEMS", "router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=WEBHOOK_ERRORS)

MAX_PUSH_BYTES = 1 << 20
"""A Push_CRA POST carries a handful of small items; anything this large is not one."""

MAX_PUSH_ITEMS = 1000
"""Items one Push_CRA POST may carry; above it the POST is refused with 413 before any work."""


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


def _bytehand_item(query: dict[str, str], parsed: StatusCallback | IncomingSms) -> Item:
    """The inbox item of one genuine ByteHand callback, checked for what the database refuses."""
    payload = {name: query[name] for name in _BYTEHAND_FIELDS if name in query}
    for name, value in payload.items():
        _clean(name, value)
    if isinstance(parsed, StatusCallback):
        _clean("description", parsed.provider_state, _STATE_LEN)
        return report_item(
            Report(
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
        )
    _clean("message", parsed.message_id, _ID_LEN)
    _clean("from", parsed.sender, _NUMBER_LEN)
    _clean("to", parsed.to, _NUMBER_LEN)
    return mo_item(
        provider=BYTEHAND,
        from_number=parsed.sender,
        to_number=parsed.to,
        text=parsed.text,
        dedup_key=f"mo:bytehand:{parsed.message_id}",
        provider_message_id=parsed.message_id,
    )


@router.get("/bytehand", openapi_extra={"parameters": query_parameters(ByteHandCallback)})
async def bytehand_callback(request: Request) -> dict[str, Any]:
    """One ByteHand callback: a status of a message we sent, or an incoming SMS; answered once
    it is in the inbox."""
    query = dict(request.query_params)
    settings = get_runtime(request).settings.bytehand
    try:
        parsed = parse_callback(query, client_id=settings.client_id, key=settings.key)
    except WebhookPayloadError:
        # parse_callback checks credentials first: reaching here means the call is genuine.
        if query.get("action") in _USSD_ACTIONS:
            return {"ok": True, "result": "ignored"}
        raise
    await get_inbox(request).append([_bytehand_item(query, parsed)])
    return {"ok": True, "result": "accepted"}


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


def _push_report(event: PushEvent) -> Report:
    """A Push_CRA status item (SENT, RECEIVED, ERROR) as a report."""
    assert event.state is not None
    label = event.info if event.status == "ERROR" and event.info else event.status
    return Report(
        provider=TIMETOCHAT,
        source="callback",
        provider_state=label[:_STATE_LEN],
        state=event.state,
        dedup_key=(
            f"cb:timetochat:{event.call_id or ''}:{event.ext_ref or ''}:{event.status}:"
            f"{event.date.isoformat()}"
        ),
        payload=_push_payload(event),
        provider_message_id=event.call_id,
        ext_ref=event.ext_ref,
    )


def _push_mo(event: PushEvent) -> Item:
    """INCOMING and ANSWERED: ``to`` is the customer's mobile and ``from`` the service number
    (as in the original's examples), so the SMS came *from* ``to``."""
    text = event.info or ""
    key = (
        f"mo:timetochat:{event.status}:{event.call_id or ''}:{event.ext_ref or ''}:"
        f"{event.to}:{event.date.isoformat()}:{_digest(text)}"
    )
    answered = event.status == "ANSWERED"
    return mo_item(
        provider=TIMETOCHAT,
        from_number=event.to,
        to_number=event.sender,
        text=text,
        dedup_key=key,
        reply_to_ext_ref=event.ext_ref if answered else None,
        reply_to_provider_id=event.call_id if answered else None,
    )


def _push_item(event: PushEvent) -> Item:
    return report_item(_push_report(event)) if event.state is not None else _push_mo(event)


@router.post("/timetochat/{secret}", openapi_extra=request_body(PushCra))
async def timetochat_push(
    secret: str,
    request: Request,
) -> dict[str, Any]:
    """One Push_CRA POST: status reports (SENT, RECEIVED, ERROR), MOs and answers."""
    settings = get_runtime(request).settings.timetochat
    check_webhook_secret(secret, settings.webhook_secret)
    body = await read_limited(request, MAX_PUSH_BYTES)
    events = _parse_push(body, settings.service_id)
    if len(events) > MAX_PUSH_ITEMS:
        raise ApiError(413, "too_large", f"a Push_CRA POST carries at most {MAX_PUSH_ITEMS} items")
    await get_inbox(request).append([_push_item(event) for event in events])
    return {"ok": True, "results": {"accepted": len(events)}}
