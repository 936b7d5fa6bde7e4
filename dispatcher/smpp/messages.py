"""TimeToChat's submit_sm and deliver_sm, as plain functions: what we send, what comes back.

* **Out**: :func:`build_submit` turns a :class:`~dispatcher.providers.timetochat.TtcOutgoing`
  into the mandatory parameters and TLVs of a ``submit_sm``. GSM-7 text goes as the SMSC
  default alphabet (``data_coding`` 0x00, one octet per septet, the extension characters
  escaped); anything else as UCS-2 (``data_coding`` 0x08, as the connector requires). A message
  of one part goes in ``short_message``; a longer one whole in ``message_payload`` (which the
  connector documents for long messages, and which it then splits and counts as its own table
  says, the same count as our estimate). The validity is an absolute ``validity_period`` in UTC,
  and our ``ext_ref`` travels in the ``external_reference`` TLV, returned in every receipt.
* **In**: :func:`parse_deliver` reads a ``deliver_sm``: ``esm_class`` 0x04 is a delivery
  receipt (:class:`Receipt`, from the TLVs ``receipted_message_id``/``message_state`` first,
  the standard receipt text otherwise), 0x00 an incoming SMS (:class:`IncomingSms`).

The connector names ``external_reference`` but no SMPP 3.4 tag carries that name; its tag is a
provider setting (``[timetochat] smpp_external_reference_tag``, default 0x1400, the first of
the vendor-specific range).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from dispatcher.constants import TIMETOCHAT
from dispatcher.errors import (
    AccountBlocked,
    ProviderError,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
)
from dispatcher.providers.timetochat import TtcOutgoing
from dispatcher.smpp.pdu import Pdu, PduError, Status, Tag
from dispatcher.states import MessageState

__all__ = [
    "DEFAULT_REFERENCE_TAG",
    "IncomingSms",
    "Receipt",
    "build_submit",
    "decode_text",
    "encode_gsm7",
    "format_validity",
    "parse_deliver",
    "parse_receipt_text",
    "read_submit_resp",
]

DEFAULT_REFERENCE_TAG: Final = 0x1400

DATA_CODING_DEFAULT: Final = 0x00
DATA_CODING_LATIN1: Final = 0x03
DATA_CODING_UCS2: Final = 0x08
ESM_CLASS_RECEIPT: Final = 0x04
ESM_MESSAGE_TYPE_MASK: Final = 0x3C
TON_INTERNATIONAL: Final = 1
TON_NATIONAL: Final = 2
NPI_ISDN: Final = 1
REGISTERED_DELIVERY_FINAL: Final = 1
SHORT_MESSAGE_MAX: Final = 140
"""Octets of one SMS: more goes in ``message_payload``."""

_GSM7_TABLE: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_CODES: Final = {ch: code for code, ch in enumerate(_GSM7_TABLE) if ch != "\x1b"}
_GSM7_ESCAPED: Final = {
    "\x0c": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
    "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65,
}  # fmt: skip
_GSM7_UNESCAPED: Final = {code: ch for ch, code in _GSM7_ESCAPED.items()}

MESSAGE_STATES: Final[Mapping[int, tuple[str, MessageState | None]]] = {
    1: ("ENROUTE", MessageState.SENT),
    2: ("DELIVRD", MessageState.DELIVERED),
    3: ("EXPIRED", MessageState.EXPIRED),
    4: ("DELETED", MessageState.UNDELIVERABLE),
    5: ("UNDELIV", MessageState.UNDELIVERABLE),
    6: ("ACCEPTD", MessageState.SENT),
    7: ("UNKNOWN", None),
    8: ("REJECTD", MessageState.UNDELIVERABLE),
}
"""``message_state`` (§5.2.28) → its receipt ``stat`` word and our state. The provider's
UNKNOWN moves nothing: ours means "we gave up polling", a final word the provider did not say."""
STAT_STATES: Final[Mapping[str, MessageState | None]] = dict(MESSAGE_STATES.values())


def encode_gsm7(text: str) -> bytes:
    """GSM 03.38 text, one septet per octet (unpacked, as SMPP carries it)."""
    out = bytearray()
    for ch in text:
        if ch in _GSM7_ESCAPED:
            out += bytes((0x1B, _GSM7_ESCAPED[ch]))
        else:
            out.append(_GSM7_CODES[ch])
    return bytes(out)


def _decode_gsm7(data: bytes) -> str:
    chars: list[str] = []
    escaped = False
    for code in data:
        if escaped:
            chars.append(_GSM7_UNESCAPED.get(code, " "))
            escaped = False
        elif code == 0x1B:
            escaped = True
        else:
            chars.append(_GSM7_TABLE[code & 0x7F])
    return "".join(chars)


def decode_text(data: bytes, data_coding: int) -> str:
    """The text of a short_message or message_payload under its ``data_coding``."""
    coding = data_coding & 0x0F if data_coding & 0xF0 == 0xF0 else data_coding
    if coding == DATA_CODING_UCS2:
        return data.decode("utf-16-be", errors="replace")
    if coding == DATA_CODING_LATIN1:
        return data.decode("latin-1")
    return _decode_gsm7(data)


def format_validity(when: datetime) -> str:
    """An absolute ``validity_period`` in UTC (§7.1.1): ``YYMMDDhhmmsst00+``."""
    return when.astimezone(UTC).strftime("%y%m%d%H%M%S") + "000+"


def _address(number: str) -> tuple[int, str]:
    """(type of number, digits): ``+33...`` is international, ``06...``/``09...`` national."""
    if number.startswith("+"):
        return TON_INTERNATIONAL, number[1:]
    return TON_NATIONAL, number


def build_submit(
    message: TtcOutgoing, *, reference_tag: int = DEFAULT_REFERENCE_TAG
) -> tuple[dict[str, int | str | bytes], dict[int, bytes]]:
    """The ``submit_sm`` parameters and TLVs of one message."""
    if message.ext_ref is not None and len(message.ext_ref) > 150:
        raise ValueError("the external reference is limited to 150 characters")
    coding = DATA_CODING_UCS2 if message.unicode else DATA_CODING_DEFAULT
    body = message.text.encode("utf-16-be") if message.unicode else encode_gsm7(message.text)
    source_ton, source = _address(message.sender)
    dest_ton, destination = _address(message.to)
    params: dict[str, int | str | bytes] = {
        "source_addr_ton": source_ton,
        "source_addr_npi": NPI_ISDN,
        "source_addr": source,
        "dest_addr_ton": dest_ton,
        "dest_addr_npi": NPI_ISDN,
        "destination_addr": destination,
        "registered_delivery": REGISTERED_DELIVERY_FINAL,
        "data_coding": coding,
        "validity_period": format_validity(message.validity) if message.validity else "",
        "short_message": b"",
    }
    tlvs: dict[int, bytes] = {}
    if message.ext_ref:
        tlvs[reference_tag] = message.ext_ref.encode("ascii") + b"\x00"
    if len(body) <= SHORT_MESSAGE_MAX:
        params["short_message"] = body
    else:
        tlvs[Tag.MESSAGE_PAYLOAD] = body
    return params, tlvs


@dataclasses.dataclass(frozen=True)
class Receipt:
    """A delivery receipt: ``message_id`` is the one our submit_sm_resp gave."""

    message_id: str
    stat: str
    error: str
    state: MessageState | None
    ext_ref: str | None
    part: str


@dataclasses.dataclass(frozen=True)
class IncomingSms:
    """An MO: ``sender`` is the person who wrote, ``to`` our 09 number."""

    sender: str
    to: str
    text: str


_RECEIPT_FIELD: Final = re.compile(
    r"(id|sub|dlvrd|submit date|done date|stat|err|text):\s*(.*?)(?=\s+(?:id|sub|dlvrd|submit date"
    r"|done date|stat|err|text):|$)",
    re.IGNORECASE | re.DOTALL,
)


def parse_receipt_text(text: str) -> dict[str, str]:
    """The fields of the standard receipt text (SMPP 3.4 appendix B), keys lowercased."""
    return {key.lower(): value.strip() for key, value in _RECEIPT_FIELD.findall(text)}


def _cstring(value: bytes) -> str:
    return value.split(b"\x00", 1)[0].decode("latin-1")


def _number(value: bytes) -> int:
    return int.from_bytes(value, "big")


def _receipt(pdu: Pdu, reference_tag: int) -> Receipt:
    fields = parse_receipt_text(decode_text(pdu.octets("short_message"), DATA_CODING_LATIN1))
    message_id = (
        _cstring(pdu.tlvs[Tag.RECEIPTED_MESSAGE_ID])
        if Tag.RECEIPTED_MESSAGE_ID in pdu.tlvs
        else fields.get("id", "")
    )
    if not message_id:
        raise PduError("delivery receipt without a message id")
    if Tag.MESSAGE_STATE in pdu.tlvs:
        stat, state = MESSAGE_STATES.get(_number(pdu.tlvs[Tag.MESSAGE_STATE]), ("UNKNOWN", None))
    else:
        stat = fields.get("stat", "UNKNOWN").upper()
        state = STAT_STATES.get(stat)
    reference = pdu.tlvs.get(reference_tag)
    part = ""
    if Tag.SAR_SEGMENT_SEQNUM in pdu.tlvs and Tag.SAR_TOTAL_SEGMENTS in pdu.tlvs:
        seqnum = _number(pdu.tlvs[Tag.SAR_SEGMENT_SEQNUM])
        part = f"{seqnum}/{_number(pdu.tlvs[Tag.SAR_TOTAL_SEGMENTS])}"
    return Receipt(
        message_id=message_id,
        stat=stat,
        error=fields.get("err", ""),
        state=state,
        ext_ref=_cstring(reference) or None if reference is not None else None,
        part=part,
    )


def parse_deliver(pdu: Pdu, *, reference_tag: int = DEFAULT_REFERENCE_TAG) -> Receipt | IncomingSms:
    """A deliver_sm: a receipt (``esm_class`` 0x04) or an incoming SMS (0x00)."""
    if pdu.number("esm_class") & ESM_MESSAGE_TYPE_MASK == ESM_CLASS_RECEIPT:
        return _receipt(pdu, reference_tag)
    payload = pdu.tlvs.get(Tag.MESSAGE_PAYLOAD)
    data = payload if payload is not None else pdu.octets("short_message")
    sender_ton = pdu.number("source_addr_ton")
    sender = pdu.text("source_addr")
    return IncomingSms(
        sender=f"+{sender}" if sender_ton == TON_INTERNATIONAL else sender,
        to=pdu.text("destination_addr"),
        text=decode_text(data, pdu.number("data_coding")),
    )


_REJECTING: Final = frozenset(
    {Status.ESME_RSUBMITFAIL, Status.ESME_RQUERYFAIL, Status.ESME_RINVDSTADR,
     Status.ESME_RINVMSGLEN, Status.ESME_RINVEXPIRY}
)  # fmt: skip
_BLOCKING: Final = frozenset({Status.ESME_RINVBNDSTS, Status.ESME_RBINDFAIL})


def read_submit_resp(pdu: Pdu) -> str | ProviderError:
    """A submit_sm_resp: the provider's message id, or what its status means for the recipient.

    ESME_RSUBMITFAIL is the connector's answer to a well-formed message it will not send (a
    forbidden sender, the monthly limit) and ESME_RQUERYFAIL to a malformed one: both final.
    ESME_RTHROTTLED is a refusal of our limiter's making: retried after a pause. Anything else
    (queue full, system error) is transient.
    """
    if pdu.status == Status.ESME_ROK:
        message_id = pdu.text("message_id")
        if message_id:
            return message_id
        return ProviderUnavailable("submit_sm_resp without message_id", provider=TIMETOCHAT)
    code = Status(pdu.status).name if pdu.status in Status._value2member_map_ else hex(pdu.status)
    if pdu.status == Status.ESME_RTHROTTLED:
        return ProviderThrottled(
            "too many requests", provider=TIMETOCHAT, code=code, retry_after=1.0
        )
    if pdu.status in _REJECTING:
        return ProviderRejected("submit_sm refused", provider=TIMETOCHAT, code=code)
    if pdu.status in _BLOCKING:
        return AccountBlocked("the link is not bound", provider=TIMETOCHAT, code=code)
    return ProviderUnavailable("submit_sm failed", provider=TIMETOCHAT, code=code)
