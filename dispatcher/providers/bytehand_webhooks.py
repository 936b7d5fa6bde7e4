"""ByteHand callbacks ("handler" URL): GET query parameters in, a typed value out, no I/O.

ByteHand signs nothing: a call proves itself with our client ``id`` and the last eight characters
of our key, both compared in constant time. The same status may arrive more than once and late
(ByteHand repeats unanswered calls for 48 h), so consumers apply them monotonically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from dispatcher.config import Secret
from dispatcher.errors import WebhookAuthError, WebhookPayloadError
from dispatcher.providers.base import secrets_match
from dispatcher.providers.bytehand import map_state, parse_timestamp
from dispatcher.states import MessageState

__all__ = ["IncomingSms", "StatusCallback", "parse_callback"]


@dataclasses.dataclass(frozen=True)
class StatusCallback:
    """``action=outgoingStatus``: a state change of a message we sent."""

    message_id: str
    provider_state: str
    state: MessageState
    error_code: int
    updated_at: datetime


@dataclasses.dataclass(frozen=True)
class IncomingSms:
    """``action=incomingSms``: a message a subscriber sent to us."""

    message_id: str
    to: str
    sender: str
    text: str
    posted_at: datetime


def _field(query: Mapping[str, str], name: str) -> str:
    value = query.get(name)
    if value is None or value == "":
        raise WebhookPayloadError(f"missing {name}")
    return value


def _time(query: Mapping[str, str], name: str) -> datetime:
    try:
        return parse_timestamp(_field(query, name))
    except ValueError as exc:
        raise WebhookPayloadError(f"{name} is not yyyy-MM-dd HH:mm:ss") from exc


def _status(query: Mapping[str, str]) -> StatusCallback:
    provider_state = _field(query, "description")
    try:
        error_code = int(_field(query, "error_code"))
    except ValueError as exc:
        raise WebhookPayloadError("error_code is not an integer") from exc
    return StatusCallback(
        message_id=_field(query, "message"),
        provider_state=provider_state,
        state=map_state(provider_state),
        error_code=error_code,
        updated_at=_time(query, "updated_at"),
    )


def _incoming(query: Mapping[str, str]) -> IncomingSms:
    if "text" not in query:  # present but empty is a legitimate (empty) SMS
        raise WebhookPayloadError("missing text")
    return IncomingSms(
        message_id=_field(query, "message"),
        to=_field(query, "to"),
        sender=_field(query, "from"),
        text=query["text"],
        posted_at=_time(query, "posted_at"),
    )


def parse_callback(
    query: Mapping[str, str], *, client_id: str, key: Secret
) -> StatusCallback | IncomingSms:
    """Authenticate and parse one callback.

    Credentials are checked before anything else so a forged call learns nothing about our
    parsing. Raises :class:`WebhookAuthError` (answer 403) or :class:`WebhookPayloadError`
    (answer 400; ByteHand will repeat it, which is right for a payload we could not read).
    """
    if not (client_id and key):
        raise WebhookAuthError("DISPATCHER_BYTEHAND_ID or _KEY is unset: every one is refused")
    id_ok = secrets_match(query.get("id", ""), client_id)
    key_ok = secrets_match(query.get("key", ""), key.reveal()[-8:])
    if not (id_ok and key_ok):
        raise WebhookAuthError("ByteHand callback with the wrong id or key")
    action = query.get("action")
    if action == "outgoingStatus":
        return _status(query)
    if action == "incomingSms":
        return _incoming(query)
    raise WebhookPayloadError(f"unsupported ByteHand action {action!r}")
