"""TimeToChat Push_CRA: the POSTed JSON in, a list of typed events out, no I/O.

One POST carries ``{"status_report": {"username": <service id>, "sms": [...]}}`` with one item
per event. Push_CRA is unsigned: the ``username`` must be our service id, and the web layer also
checks a shared secret in the callback URL path (:func:`~dispatcher.providers.base.
check_webhook_secret`). Event types::

    SENT      taken by the operator             -> sent
    RECEIVED  on the handset                    -> delivered
    ERROR     delivery failed                   -> undeliverable
    INCOMING  an MO (``info`` is its text, no call_id)      -> no state
    ANSWERED  a reply to one of ours (``info`` is the reply) -> no state

``info`` sits in the ``status_list`` entry of the event's type (as in the original's examples);
a top-level ``info`` is accepted too.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Final, Literal, cast, get_args

from dispatcher.errors import WebhookAuthError, WebhookPayloadError
from dispatcher.providers.base import secrets_match
from dispatcher.providers.timetochat import parse_iso_time
from dispatcher.states import MessageState

__all__ = ["PUSH_STATE_MAP", "PushEvent", "PushStatus", "parse_push_cra"]

PushStatus = Literal["SENT", "RECEIVED", "INCOMING", "ANSWERED", "ERROR"]

PUSH_STATE_MAP: Final[Mapping[PushStatus, MessageState]] = {
    "SENT": MessageState.SENT,
    "RECEIVED": MessageState.DELIVERED,
    "ERROR": MessageState.UNDELIVERABLE,
}


@dataclasses.dataclass(frozen=True)
class PushEvent:
    """One Push_CRA item.

    ``call_id`` is the provider's message id (``None`` for an MO); ``ext_ref`` is the
    ``ref_externe`` we sent as ``extRef``, which settles sends that were in doubt. ``state`` is set
    for SENT, RECEIVED and ERROR; ``info`` holds the text of an MO or a reply.
    """

    call_id: str | None
    ext_ref: str | None
    to: str
    sender: str
    date: datetime
    status: PushStatus
    state: MessageState | None
    info: str | None


def _optional(item: Mapping[str, object], key: str) -> str | None:
    value = item.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise WebhookPayloadError(f"{key} is not a string")
    return value


def _required(item: Mapping[str, object], key: str) -> str:
    value = _optional(item, key)
    if value is None:
        raise WebhookPayloadError(f"sms item without {key}")
    return value


def _info(item: Mapping[str, object], status: str) -> str | None:
    entries = item.get("status_list")
    if entries is not None and not isinstance(entries, list):
        raise WebhookPayloadError("status_list is not a list")
    for entry in reversed(entries or []):
        if isinstance(entry, dict) and entry.get("type") == status:
            info = _optional(entry, "info")
            if info is not None:
                return info
    return _optional(item, "info")


def _event(item: object) -> PushEvent:
    if not isinstance(item, dict):
        raise WebhookPayloadError("sms item is not an object")
    status = _required(item, "status")
    if status not in get_args(PushStatus):
        raise WebhookPayloadError(f"unknown Push_CRA status {status!r}")
    push_status = cast(PushStatus, status)
    try:
        date = parse_iso_time(item.get("date"))
    except ValueError as exc:
        raise WebhookPayloadError("date is not an ISO 8601 time with a zone") from exc
    return PushEvent(
        call_id=_optional(item, "call_id"),
        ext_ref=_optional(item, "ref_externe"),
        to=_required(item, "to"),
        sender=_required(item, "from"),
        date=date,
        status=push_status,
        state=PUSH_STATE_MAP.get(push_status),
        info=_info(item, push_status),
    )


def parse_push_cra(body: bytes, *, service_id: str) -> list[PushEvent]:
    """Authenticate and parse one Push_CRA POST; every item, in order.

    A ``username`` other than ``service_id`` raises :class:`WebhookAuthError`; anything we cannot
    read raises :class:`WebhookPayloadError` (the whole POST: a partly applied report would be
    repeated anyway).
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError("Push_CRA body is not JSON") from exc
    report = data.get("status_report") if isinstance(data, dict) else None
    if not isinstance(report, dict):
        raise WebhookPayloadError("no status_report object")
    username = report.get("username")
    if not isinstance(username, str) or not secrets_match(username, service_id):
        raise WebhookAuthError("Push_CRA for another service, or without a username")
    items = report.get("sms")
    if not isinstance(items, list):
        raise WebhookPayloadError("status_report.sms is not a list")
    return [_event(item) for item in items]
