"""ByteHand HTTP API: pure request/response functions and a thin client around them.

Every call carries ``id`` and ``key`` in the query string (that is ByteHand's only auth), so the
``httpx`` logger must stay above INFO in production: it logs request URLs.

Error codes and their classes: :mod:`dispatcher.providers.bytehand_errors`.

Message states: NEW -> submitted, ACCEPTED -> sent, DELIVERED -> delivered, EXPIRED -> expired,
UNDELIVERABLE / REJECTED / DELETED -> undeliverable (DELETED: the provider dropped it before
delivery, which for the recipient is the same outcome). UNKNOWN -> sent: not final; our poller
turns a message still silent at its deadline into ``unknown``. A state outside the table is
treated as sent (not final) rather than failing the poll.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Final, Literal, Self

import httpx

from dispatcher.config import Secret
from dispatcher.constants import BYTEHAND
from dispatcher.errors import ProviderError, SendInDoubt
from dispatcher.providers.base import CallGate, CallKind, encode_json, no_gate, request
from dispatcher.providers.bytehand_errors import (
    check_response,
    error_for_code,
    error_object,
    result_status,
    unreadable,
)
from dispatcher.states import MessageState

__all__ = [
    "STATE_MAP",
    "BatchItemResult",
    "ByteHandClient",
    "ByteHandDetails",
    "ByteHandStatus",
    "OutgoingSms",
    "Signature",
    "SignatureState",
    "format_send_after",
    "map_state",
    "parse_balance",
    "parse_details",
    "parse_send",
    "parse_send_multi",
    "parse_signature",
    "parse_signatures",
    "parse_status",
    "parse_timestamp",
]

M = MessageState
SignatureState = Literal["NEW", "ACCEPTED", "REJECTED"]

STATE_MAP: Final[Mapping[str, MessageState]] = {
    "NEW": M.SUBMITTED,
    "ACCEPTED": M.SENT,
    "DELIVERED": M.DELIVERED,
    "EXPIRED": M.EXPIRED,
    "DELETED": M.UNDELIVERABLE,
    "UNDELIVERABLE": M.UNDELIVERABLE,
    "REJECTED": M.UNDELIVERABLE,
    "UNKNOWN": M.SENT,
}


@dataclasses.dataclass(frozen=True)
class OutgoingSms:
    """One message of a ``send_multi`` batch."""

    to: str
    sender: str
    text: str


@dataclasses.dataclass(frozen=True)
class BatchItemResult:
    """The outcome of one batch item: a message id, or the error that item ended in."""

    message_id: str | None
    error: ProviderError | None


@dataclasses.dataclass(frozen=True)
class ByteHandStatus:
    """A polled status: ByteHand's own word and what it means for us."""

    provider_state: str
    state: MessageState


@dataclasses.dataclass(frozen=True)
class ByteHandDetails:
    """``/details``: the status plus timing, parts and cost (roubles)."""

    provider_state: str
    state: MessageState
    posted_at: datetime | None
    updated_at: datetime | None
    parts: int
    cost: Decimal


@dataclasses.dataclass(frozen=True)
class Signature:
    """A registered sender name; only ACCEPTED ones may be used as ``from``."""

    id: str
    text: str
    description: str
    created_at: datetime | None
    state: str


def map_state(provider_state: str) -> MessageState:
    """Our state for a ByteHand state; an unlisted one is "sent" (not final, see above)."""
    return STATE_MAP.get(provider_state, M.SENT)


def format_send_after(when: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in GMT; a naive datetime is refused, its zone would be a guess."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("send_after must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_timestamp(value: str) -> datetime:
    """ByteHand's ``yyyy-MM-dd HH:mm:ss[.f]`` in GMT, as an aware UTC datetime."""
    head, _, fraction = value.strip().partition(".")
    if fraction and not fraction.isdigit():
        raise ValueError(f"not a ByteHand timestamp: {value!r}")
    return datetime.strptime(head, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _description(data: object, *, send: bool) -> str:
    """The ``description`` of a ``{"status": 0, ...}`` answer: an id, a state, a balance."""
    if (
        not isinstance(data, dict)
        or result_status(data.get("status")) != 0
        or not isinstance(data.get("description"), str)
        or not data["description"]
    ):
        raise unreadable("no status 0 with a description", send=send)
    description: str = data["description"]
    return description


def parse_send(status_code: int, body: bytes) -> str:
    """The message id of a ``/send`` answer."""
    return _description(check_response(status_code, body, send=True), send=True)


def _batch_item(item: object) -> BatchItemResult:
    error = error_object(item)
    if error is not None:
        return BatchItemResult(None, error_for_code(*error, send=True))
    try:
        return BatchItemResult(_description(item, send=True), None)
    except SendInDoubt as exc:
        return BatchItemResult(None, exc)


def parse_send_multi(status_code: int, body: bytes, count: int) -> list[BatchItemResult]:
    """Per-item results of ``/send_multi``, in request order; one bad item fails only itself.

    A list of the wrong length cannot be matched to our items, so the whole batch is in doubt.
    """
    data = check_response(status_code, body, send=True)
    if not isinstance(data, list) or len(data) != count:
        raise unreadable(f"expected a list of {count} results", send=True)
    return [_batch_item(item) for item in data]


def parse_status(status_code: int, body: bytes) -> ByteHandStatus:
    """``/status``: the provider state and ours."""
    state = _description(check_response(status_code, body, send=False), send=False)
    return ByteHandStatus(state, map_state(state))


def _optional_time(data: Mapping[str, object], key: str) -> datetime | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return parse_timestamp(value)


def parse_details(status_code: int, body: bytes) -> ByteHandDetails:
    """``/details``: state, posted/updated times (GMT), parts and cost."""
    data = check_response(status_code, body, send=False)
    state = _description(data, send=False)
    assert isinstance(data, dict)  # _description checked it
    try:
        return ByteHandDetails(
            provider_state=state,
            state=map_state(state),
            posted_at=_optional_time(data, "posted_at"),
            updated_at=_optional_time(data, "updated_at"),
            parts=int(data["parts"]),
            cost=Decimal(str(data["cost"])),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise unreadable(f"details: {exc}", send=False) from exc


def parse_balance(status_code: int, body: bytes) -> Decimal:
    """``/balance``: the balance in roubles, exact."""
    value = _description(check_response(status_code, body, send=False), send=False)
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise unreadable("balance is not a number", send=False) from exc


def _signature(data: object) -> Signature:
    if not isinstance(data, dict):
        raise unreadable("signature is not an object", send=False)
    try:
        return Signature(
            id=str(data["id"]),
            text=str(data["text"]),
            description=str(data.get("description") or ""),
            created_at=_optional_time(data, "created_at"),
            state=str(data["state"]),
        )
    except (KeyError, ValueError) as exc:
        raise unreadable(f"signature: {exc}", send=False) from exc


def parse_signatures(status_code: int, body: bytes) -> list[Signature]:
    """``GET /signatures``: every sender name of the account."""
    data = check_response(status_code, body, send=False)
    if not isinstance(data, list):
        raise unreadable("signatures is not a list", send=False)
    return [_signature(item) for item in data]


def parse_signature(status_code: int, body: bytes) -> Signature:
    """``GET /signature``: one sender name."""
    return _signature(check_response(status_code, body, send=False))


class ByteHandClient:
    """ByteHand calls over a shared ``httpx.Client``; each call passes the gate first."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        key: Secret,
        http: httpx.Client,
        gate: CallGate = no_gate,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._client_id = client_id
        self._key = key
        self._http = http
        self._gate = gate

    def through(self, gate: CallGate) -> Self:
        """The same client, its calls passing ``gate`` (a reserved slot's) instead."""
        gated = copy.copy(self)
        gated._gate = gate
        return gated

    def _call(
        self,
        kind: CallKind,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        idempotent: bool = True,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        query = {"id": self._client_id, "key": self._key.reveal(), **(params or {})}
        response = request(
            self._http,
            self._gate,
            kind,
            method,
            f"{self._base}{path}",
            provider=BYTEHAND,
            idempotent=idempotent,
            params=query,
            content=content,
            headers=headers,
        )
        return response.status_code, response.content

    def send(self, to: str, sender: str, text: str, send_after: datetime | None = None) -> str:
        """Send one message; the provider's message id."""
        params = {"to": to, "from": sender, "text": text}
        if send_after is not None:
            params["send_after"] = format_send_after(send_after)
        return parse_send(*self._call("send", "GET", "/send", params, idempotent=False))

    def send_multi(
        self, items: Sequence[OutgoingSms], send_after: datetime | None = None
    ) -> list[BatchItemResult]:
        """Send a batch in one call; per-item results in request order.

        A batch-level failure (auth, throttling, a single error object) raises instead.
        """
        if not items:
            return []
        params = {} if send_after is None else {"send_after": format_send_after(send_after)}
        body = encode_json([{"to": i.to, "from": i.sender, "text": i.text} for i in items])
        answer = self._call(
            "send",
            "POST",
            "/send_multi",
            params,
            idempotent=False,
            content=body,
            headers={"Content-Type": "application/json; charset=UTF-8"},
        )
        return parse_send_multi(*answer, count=len(items))

    def status(self, message_id: str) -> ByteHandStatus:
        """The current state of one message."""
        return parse_status(*self._call("poll", "GET", "/status", {"message": message_id}))

    def details(self, message_id: str) -> ByteHandDetails:
        """State, times, parts and cost of one message."""
        return parse_details(*self._call("poll", "GET", "/details", {"message": message_id}))

    def balance(self) -> Decimal:
        """The account balance in roubles."""
        return parse_balance(*self._call("account", "GET", "/balance"))

    def signatures(self, state: SignatureState | None = None) -> list[Signature]:
        """Sender names, optionally only those in one moderation state."""
        params = {} if state is None else {"state": state}
        return parse_signatures(*self._call("account", "GET", "/signatures", params))

    def signature(self, signature_id: str) -> Signature:
        """One sender name."""
        return parse_signature(
            *self._call("account", "GET", "/signature", {"signature": signature_id})
        )

    def submit_signature(self, text: str, description: str) -> str:
        """Submit a sender name for moderation; its id. Not idempotent: a retry may duplicate."""
        params = {"text": text, "description": description}
        answer = self._call("account", "POST", "/signature", params, idempotent=False)
        return _description(check_response(*answer, send=True), send=True)

    def delete_signature(self, signature_id: str) -> None:
        """Delete a sender name. The answer is unspecified: any non-error answer is success."""
        status_code, body = self._call(
            "account", "DELETE", "/signature", {"signature": signature_id}
        )
        if not body.strip() and 200 <= status_code < 300:
            return
        check_response(status_code, body, send=False)
