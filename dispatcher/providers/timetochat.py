"""SFR TimeToChat ("MUG" API): pure request/response functions and a thin client.

Error codes and their classes: :mod:`dispatcher.providers.timetochat_errors`.

Numbers: ``to`` is sent as given (we hold E.164, ``+33...``); the spec accepts ``+<country code>``
for every destination, so converting French numbers to ``06``/``07`` would only add a failure mode.

States: NEW -> submitted, CRA_SMS_SENT -> sent, CRA_SMS_RECEIVED -> delivered, every CRA_SMS_*
error -> undeliverable. The operator-transient ones (OPFULL, OPERROR, OPFAILURE, FULLSIM,
LOTOFMSG) are final too: they are the final report of *that* message; whether to send a new one
is a campaign decision, not a poll's. ``SENT``/``RECEIVED``/``ERROR`` without the prefix (the
original names these states for its reports) are aliases: a history ending in ``ERROR`` is a
failure, not a message to poll for 48 h. An unlisted state counts as sent: not final.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, Self
from urllib.parse import quote

import httpx

from dispatcher.config import Secret
from dispatcher.constants import TIMETOCHAT
from dispatcher.errors import AccountBlocked
from dispatcher.providers.base import (
    CallGate,
    CallKind,
    decode_json,
    encode_json,
    no_gate,
    request,
)
from dispatcher.providers.timetochat_errors import (
    AUTHENTICATION_FAILED,
    NOT_FOUND,
    check_response,
    error_code,
    unreadable,
)
from dispatcher.providers.tokens import TokenStore
from dispatcher.states import MessageState, delivery_rank

__all__ = [
    "STATE_MAP",
    "TimeToChatClient",
    "TtcHistoryEntry",
    "TtcOutgoing",
    "TtcStatus",
    "build_message",
    "derive_state",
    "format_validity",
    "map_state",
    "parse_iso_time",
    "parse_send",
    "parse_status",
    "parse_token",
]

M = MessageState

_ERRORS: Final = (
    "ERROR",
    "OPINVALID",
    "BLACKLIST",
    "OPBLACKLIST",
    "INVALIDFROM",
    "WRONGNUMBER",
    "FALSENUMBER",
    "OPERROR",
    "OPFAILURE",
    "OPFULL",
    "COUNTRY",
    "FULLSIM",
    "LOTOFMSG",
    "REJECTED",
    "BLOCKED",
)

STATE_MAP: Final[Mapping[str, MessageState]] = {
    "NEW": M.SUBMITTED,
    "CRA_SMS_SENT": M.SENT,
    "CRA_SMS_RECEIVED": M.DELIVERED,
    "SENT": M.SENT,
    "RECEIVED": M.DELIVERED,
    "ERROR": M.UNDELIVERABLE,
    **{f"CRA_SMS_{name}": M.UNDELIVERABLE for name in _ERRORS},
}

_JSON: Final = {"Content-Type": "application/json"}


@dataclasses.dataclass(frozen=True)
class TtcOutgoing:
    """One message to send. ``ext_ref`` (<= 150 chars) comes back in every report."""

    to: str
    sender: str
    text: str
    ext_ref: str | None
    validity: datetime | None
    unicode: bool
    flash: bool = False


@dataclasses.dataclass(frozen=True)
class TtcHistoryEntry:
    """One step of a message's history; ``part`` is ``"1/2"`` for a part of a long SMS."""

    date: datetime
    status: str
    part: str | None = None


@dataclasses.dataclass(frozen=True)
class TtcStatus:
    """A polled message. ``provider_state`` is the latest history status, ``state`` ours."""

    message_id: str
    to: str
    sender: str
    text: str
    ext_ref: str | None
    date: datetime | None
    history: tuple[TtcHistoryEntry, ...]
    provider_state: str
    state: MessageState


def map_state(provider_state: str) -> MessageState:
    """Our state for a TimeToChat state; an unlisted one is "sent" (not final)."""
    return STATE_MAP.get(provider_state, M.SENT)


def format_validity(when: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC; a naive datetime is refused."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("validity must be timezone-aware")
    utc = when.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def parse_iso_time(value: object) -> datetime:
    """An ISO 8601 time with its zone (``...Z``); a naive or malformed one raises ValueError."""
    if not isinstance(value, str):
        raise ValueError("time is not a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"time without a zone: {value!r}")
    return parsed.astimezone(UTC)


def build_message(message: TtcOutgoing) -> dict[str, object]:
    """The JSON body of ``POST /messages``; optional fields only when set."""
    if message.ext_ref is not None and len(message.ext_ref) > 150:
        raise ValueError("extRef is limited to 150 characters")
    body: dict[str, object] = {"from": message.sender, "to": message.to, "text": message.text}
    if message.ext_ref is not None:
        body["extRef"] = message.ext_ref
    if message.validity is not None:
        body["validityDate"] = format_validity(message.validity)
    body["unicode"] = message.unicode
    body["flash"] = message.flash
    return body


def parse_token(status_code: int, body: bytes, retry_after: str | None = None) -> Secret:
    """The token of a ``POST /token`` answer. A refusal (400/401/403) means a bad account, and
    a 404 one that does not exist (no or a wrong service id)."""
    if status_code == 404:
        code = error_code(decode_json(body)) or NOT_FOUND
        raise AccountBlocked(f"no such service: HTTP {status_code}", provider=TIMETOCHAT, code=code)
    if status_code in (400, 401, 403):
        code = error_code(decode_json(body)) or AUTHENTICATION_FAILED
        raise AccountBlocked(f"token refused: HTTP {status_code}", provider=TIMETOCHAT, code=code)
    data = check_response(status_code, body, send=False, retry_after=retry_after)
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise unreadable("no token in the answer", send=False)
    return Secret(token)


def parse_send(status_code: int, body: bytes, retry_after: str | None = None) -> str:
    """The message id of a ``POST /messages`` answer. A 404 names no message: the service
    itself is unknown, which no recipient can fix."""
    if status_code == 404:
        code = error_code(decode_json(body)) or NOT_FOUND
        raise AccountBlocked(f"no such service: HTTP {status_code}", provider=TIMETOCHAT, code=code)
    data = check_response(status_code, body, send=True, retry_after=retry_after)
    message_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(message_id, str) or not message_id:
        raise unreadable("no message id", send=True)
    return message_id


def _part_index(part: str) -> tuple[int, int]:
    index, _, total = part.partition("/")
    number, count = int(index), int(total)
    if not 1 <= number <= count:
        raise ValueError(f"bad part {part!r}")
    return number, count


def derive_state(history: Sequence[TtcHistoryEntry]) -> MessageState:
    """One state for a message from its (possibly per-part) history.

    Each part is at its latest entry (entries without a part apply to every part). Any part in
    error -> undeliverable; else the least advanced part (so delivered only when all are).
    A part absent from the history is still only submitted.
    """
    if not history:
        return M.SUBMITTED
    ordered = sorted(enumerate(history), key=lambda pair: (pair[1].date, pair[0]))
    total = max((_part_index(e.part)[1] for e in history if e.part is not None), default=1)
    states: list[MessageState] = []
    for number in range(1, total + 1):
        relevant = [
            entry
            for _, entry in ordered
            if entry.part is None or _part_index(entry.part)[0] == number
        ]
        states.append(map_state(relevant[-1].status) if relevant else M.SUBMITTED)
    if M.UNDELIVERABLE in states:
        return M.UNDELIVERABLE
    return min(states, key=delivery_rank)


def _entry(item: object) -> TtcHistoryEntry:
    if not isinstance(item, dict) or not isinstance(item.get("status"), str):
        raise ValueError("history entry without a status")
    part = item.get("part")
    if part is not None and not isinstance(part, str):
        raise ValueError("part is not a string")
    return TtcHistoryEntry(parse_iso_time(item.get("date")), item["status"], part)


def _optional_str(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def parse_status(status_code: int, body: bytes, retry_after: str | None = None) -> TtcStatus:
    """A ``GET /messages/{id}`` answer, with one state derived from its history."""
    data = check_response(status_code, body, send=False, retry_after=retry_after)
    try:
        if not isinstance(data, dict) or not isinstance(data.get("history"), list):
            raise ValueError("no history list")
        history = tuple(_entry(item) for item in data["history"])
        state = derive_state(history)
        date = data.get("date")
        return TtcStatus(
            message_id=str(data["id"]),
            to=str(data.get("to", "")),
            sender=str(data.get("from", "")),
            text=str(data.get("text", "")),
            ext_ref=_optional_str(data, "extRef"),
            date=None if date is None else parse_iso_time(date),
            history=history,
            provider_state=history[-1].status if history else "NEW",
            state=state,
        )
    except (KeyError, ValueError) as exc:
        raise unreadable(f"status: {exc}", send=False) from exc


class TimeToChatClient:
    """TimeToChat calls with the fleet-shared token; each HTTP request passes the gate first.

    On a 401 the client discards the token it used (only if still cached), gets a fresh one and
    retries the call once; a second 401 raises :class:`CredentialsExpired`.
    """

    def __init__(
        self,
        base_url: str,
        service_id: str,
        password: Secret,
        http: httpx.Client,
        tokens: TokenStore,
        *,
        gate: CallGate = no_gate,
        token_lifetime: timedelta = timedelta(minutes=30),
        token_margin: timedelta = timedelta(minutes=2),
    ) -> None:
        if token_margin >= token_lifetime:
            raise ValueError("token_margin must be shorter than token_lifetime")
        self._service_url = f"{base_url.rstrip('/')}/services/{quote(service_id, safe='')}"
        self._password = password
        self._http = http
        self._tokens = tokens
        self._gate = gate
        self._ttl = token_lifetime - token_margin

    def through(self, gate: CallGate) -> Self:
        """The same client (and token store), its calls passing ``gate`` (a reserved slot's)."""
        gated = copy.copy(self)
        gated._gate = gate
        return gated

    def _fetch_token(self) -> Secret:
        response = request(
            self._http,
            self._gate,
            "token",
            "POST",
            f"{self._service_url}/token",
            provider=TIMETOCHAT,
            idempotent=True,
            content=encode_json({"password": self._password.reveal()}),
            headers=_JSON,
        )
        return parse_token(
            response.status_code, response.content, response.headers.get("Retry-After")
        )

    def _request(
        self,
        kind: CallKind,
        method: str,
        url: str,
        token: Secret,
        *,
        idempotent: bool,
        body: bytes | None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token.reveal()}"}
        if body is not None:
            headers.update(_JSON)
        return request(
            self._http,
            self._gate,
            kind,
            method,
            url,
            provider=TIMETOCHAT,
            idempotent=idempotent,
            content=body,
            headers=headers,
        )

    def _authorized(
        self, kind: CallKind, method: str, url: str, *, idempotent: bool, body: bytes | None
    ) -> httpx.Response:
        """One call, and on a 401 one more with a fresh token (a 401 accepted nothing)."""
        token = self._tokens.get(self._fetch_token, self._ttl)
        response = self._request(kind, method, url, token, idempotent=idempotent, body=body)
        if response.status_code == 401:
            self._tokens.discard(token)
            token = self._tokens.get(self._fetch_token, self._ttl)
            response = self._request(kind, method, url, token, idempotent=idempotent, body=body)
        return response

    def send(self, message: TtcOutgoing) -> str:
        """Send one message; the provider's message id."""
        body = encode_json(build_message(message))
        response = self._authorized(
            "send", "POST", f"{self._service_url}/messages", idempotent=False, body=body
        )
        return parse_send(
            response.status_code, response.content, response.headers.get("Retry-After")
        )

    def status(self, message_id: str) -> TtcStatus:
        """The message with its history and one derived state."""
        url = f"{self._service_url}/messages/{quote(message_id, safe='')}"
        response = self._authorized("poll", "GET", url, idempotent=True, body=None)
        return parse_status(
            response.status_code, response.content, response.headers.get("Retry-After")
        )
