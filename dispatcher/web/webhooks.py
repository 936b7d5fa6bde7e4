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

Both are served by :class:`WebhookEdge`, a plain ASGI layer in front of FastAPI's routing,
not by FastAPI routes: providers call back thousands of times a second, and FastAPI's routing,
dependency solving and response validation cost more per callback than the parsing and the
inbox append together. The edge counts every answer (``dispatcher_callbacks_total``: accepted,
refused, malformed, error), logs refusals (once per cause per minute), and hands every other
path to FastAPI. Its input is described in the OpenAPI document by :func:`webhook_paths`, from
the typed wire formats of :mod:`dispatcher.web.schemas`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from dispatcher.constants import BYTEHAND, TIMETOCHAT
from dispatcher.errors import WebhookAuthError, WebhookPayloadError
from dispatcher.inbox import Item, mo_item, report_item
from dispatcher.logs import redact
from dispatcher.providers.base import check_webhook_secret
from dispatcher.providers.bytehand_webhooks import IncomingSms, StatusCallback, parse_callback
from dispatcher.providers.timetochat_webhooks import PushEvent, parse_push_cra
from dispatcher.reports import Report
from dispatcher.runtime import Runtime
from dispatcher.throttle import LogThrottle
from dispatcher.web.bodies import read_limited
from dispatcher.web.errors import ApiError, error_response
from dispatcher.web.openapi import WEBHOOK_ERRORS, query_parameters, request_body
from dispatcher.web.schemas import ByteHandCallback, PushCra
from dispatcher.web.state import get_inbox, get_runtime

__all__ = [
    "MAX_PUSH_BYTES",
    "MAX_PUSH_ITEMS",
    "REFUSAL_LOG_PERIOD_S",
    "WebhookEdge",
    "callback_result",
    "webhook_paths",
]

log = logging.getLogger(__name__)

REFUSAL_LOG_PERIOD_S: Final = 60.0
"""One WARNING per cause of refused callbacks per minute: a provider retries for hours."""

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


async def _bytehand(request: Request, runtime: Runtime) -> tuple[dict[str, Any], list[Item]]:
    """One ByteHand callback: a status of a message we sent, or an incoming SMS."""
    query = dict(request.query_params)
    settings = runtime.settings.bytehand
    try:
        parsed = parse_callback(query, client_id=settings.client_id, key=settings.key)
    except WebhookPayloadError:
        # parse_callback checks credentials first: reaching here means the call is genuine.
        if query.get("action") in _USSD_ACTIONS:
            return {"ok": True, "result": "ignored"}, []
        raise
    return {"ok": True, "result": "accepted"}, [_bytehand_item(query, parsed)]


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


async def _push(request: Request, runtime: Runtime) -> tuple[dict[str, Any], list[Item]]:
    """One Push_CRA POST: status reports (SENT, RECEIVED, ERROR), MOs and answers."""
    settings = runtime.settings.timetochat
    check_webhook_secret(request.path_params["secret"], settings.webhook_secret)
    body = await read_limited(request, MAX_PUSH_BYTES)
    events = _parse_push(body, settings.service_id)
    if len(events) > MAX_PUSH_ITEMS:
        raise ApiError(413, "too_large", f"a Push_CRA POST carries at most {MAX_PUSH_ITEMS} items")
    return {"ok": True, "results": {"accepted": len(events)}}, [_push_item(e) for e in events]


Handler = Callable[[Request, Runtime], Awaitable[tuple[dict[str, Any], list[Item]]]]
"""A webhook's reading of one call: the body of its 200 answer and what goes to the inbox."""

_HANDLERS: Final[Mapping[str, tuple[str, Handler]]] = {
    BYTEHAND: ("GET", _bytehand),
    TIMETOCHAT: ("POST", _push),
}
"""Per provider: the method its callbacks use, and their handler."""

_PREFIX: Final = "/webhooks/"


def _route(path: str) -> tuple[str, dict[str, str]] | None:
    """The provider of a webhook path and its path parameters; ``None`` for any other path
    (FastAPI answers those: 404)."""
    if not path.startswith(_PREFIX):
        return None
    provider, _, rest = path.removeprefix(_PREFIX).partition("/")
    if provider == BYTEHAND and not rest:
        return provider, {}
    if provider == TIMETOCHAT and rest and "/" not in rest:
        return provider, {"secret": rest}
    return None


def callback_result(status: int) -> str:
    """The ``result`` label of a webhook call answered with ``status``."""
    if 200 <= status < 300:
        return "accepted"
    if status in (401, 403):
        return "refused"
    if status >= 500:
        return "error"
    return "malformed"


class WebhookEdge:
    """ASGI middleware answering the providers' callbacks itself (see the module docstring);
    every other request goes on to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._refusals = LogThrottle(REFUSAL_LOG_PERIOD_S)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _route(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        provider, path_params = route
        request = Request({**scope, "path_params": path_params}, receive)
        runtime = get_runtime(request)
        try:
            response = await self._answer(provider, request, runtime)
        except ClientDisconnect:
            return  # nobody to answer; nothing was stored
        # Counted before the answer leaves: whoever saw the answer also sees the count.
        runtime.meter.callback(provider, callback_result(response.status_code))
        await response(scope, receive, send)

    async def _answer(self, provider: str, request: Request, runtime: Runtime) -> JSONResponse:
        method, handler = _HANDLERS[provider]
        if request.method != method:
            return error_response(
                405, "method_not_allowed", "Method Not Allowed", headers={"Allow": method}
            )
        try:
            body, items = await handler(request, runtime)
            await get_inbox(request).append(items)
        except WebhookAuthError as exc:
            self._log_refusal(provider, request, exc)
            return error_response(403, "forbidden", "callback credentials do not match")
        except WebhookPayloadError as exc:
            return error_response(400, "bad_callback", str(exc))
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message, headers=exc.headers)
        except ClientDisconnect:
            raise
        except Exception as exc:
            log.error("unhandled error on %s callback %s", provider, redact(request.url.path),
                      exc_info=exc)  # fmt: skip
            return error_response(500, "internal", "internal error")
        return JSONResponse(body)

    def _log_refusal(self, provider: str, request: Request, exc: WebhookAuthError) -> None:
        # The path may carry the TimeToChat secret and the query the ByteHand key: neither is
        # logged, only the cause our check names (which never quotes what was given).
        unlogged = self._refusals.admit((provider, str(exc)), time.monotonic())
        if unlogged is not None:
            log.warning(
                "%s callback refused (403): %s; from %s%s",
                provider,
                exc,
                request.client and request.client.host,
                f"; {unlogged} more refused for this cause since the last line" if unlogged else "",
            )


_ERROR_SCHEMA: Final = {"$ref": "#/components/schemas/ErrorResponse"}


def _operation(
    name: str, summary: str, description: str, answer: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    answered = {"application/json": {"schema": answer}}
    return {
        "tags": ["webhooks"],
        "summary": summary,
        "description": description,
        "operationId": name,
        "responses": {
            "200": {"description": "Durable in the inbox (or ignored)", "content": answered},
            **{
                str(status): {
                    "description": error["description"],
                    "content": {"application/json": {"schema": _ERROR_SCHEMA}},
                }
                for status, error in WEBHOOK_ERRORS.items()
            },
        },
        **fields,
    }


def webhook_paths() -> dict[str, Any]:
    """The OpenAPI path items of the callbacks the edge answers."""
    return {
        "/webhooks/bytehand": {
            "get": _operation(
                "bytehand_callback",
                "ByteHand callback",
                "A status of a message we sent, or an incoming SMS; answered once it is in the "
                "inbox.",
                {
                    "type": "object",
                    "properties": {
                        "ok": {"type": "boolean"},
                        "result": {"enum": ["accepted", "ignored"]},
                    },
                    "required": ["ok", "result"],
                },
                parameters=query_parameters(ByteHandCallback),
            )
        },
        "/webhooks/timetochat/{secret}": {
            "post": _operation(
                "timetochat_push",
                "TimeToChat Push_CRA",
                "Status reports (SENT, RECEIVED, ERROR), incoming SMS and answers; answered once "
                "they are in the inbox.",
                {
                    "type": "object",
                    "properties": {
                        "ok": {"type": "boolean"},
                        "results": {
                            "type": "object",
                            "properties": {"accepted": {"type": "integer", "minimum": 0}},
                            "required": ["accepted"],
                        },
                    },
                    "required": ["ok", "results"],
                },
                parameters=[
                    {"name": "secret", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                **request_body(PushCra),
            )
        },
    }
