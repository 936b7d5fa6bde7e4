"""SMPP 3.4 PDUs as bytes: the subset the TimeToChat connector speaks, no I/O.

A PDU is a 16-octet header (length, command id, status, sequence) followed by the command's
mandatory parameters in a fixed order (C-octet strings ending in NUL, integers, and the
``short_message`` octets sized by ``sm_length``), then optional TLVs (tag, length, value).
:func:`encode` and :func:`decode` convert one PDU; :class:`Framer` cuts a byte stream into
PDUs. Only the commands the connector supports have a body layout here: the gateway can not
even build ``submit_multi``, ``data_sm``, ``query_sm``, ``cancel_sm`` or ``replace_sm``.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from collections.abc import Iterator, Mapping
from typing import Final, Literal

from dispatcher.errors import DispatcherError

__all__ = [
    "HEADER",
    "Command",
    "Framer",
    "Pdu",
    "PduError",
    "Status",
    "Tag",
    "decode",
    "encode",
]

HEADER: Final = struct.Struct(">IIII")
MAX_PDU_LENGTH: Final = 64 * 1024
"""Larger frames are refused: the longest legal submit_sm is far below this."""


class PduError(DispatcherError):
    """Bytes that are not a PDU we understand (bad length, truncated body)."""


class Command(enum.IntEnum):
    """Command ids of SMPP 3.4 (§5.1.2) that the link handles."""

    GENERIC_NACK = 0x80000000
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005


class Status(enum.IntEnum):
    """command_status values (§5.1.3) the TimeToChat connector documents or we answer with."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RSYSERR = 0x08
    ESME_RINVDSTADR = 0x0B
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RCANCELFAIL = 0x11
    ESME_RREPLACEFAIL = 0x13
    ESME_RMSGQFUL = 0x14
    ESME_RSUBMITFAIL = 0x45
    ESME_RQUERYFAIL = 0x67
    ESME_RTHROTTLED = 0x58
    ESME_RINVEXPIRY = 0x62
    ESME_RX_T_APPN = 0x64
    ESME_RDELIVERYFAILURE = 0xFE


class Tag(enum.IntEnum):
    """Optional parameter tags (§5.3.2) we write or read."""

    USER_MESSAGE_REFERENCE = 0x0204
    SAR_MSG_REF_NUM = 0x020C
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    RECEIPTED_MESSAGE_ID = 0x001E
    MESSAGE_PAYLOAD = 0x0424
    MESSAGE_STATE = 0x0427
    NETWORK_ERROR_CODE = 0x0423


Kind = Literal["cstring", "int1", "int2", "int4", "octets"]

_SM_FIELDS: Final[tuple[tuple[str, Kind], ...]] = (
    ("service_type", "cstring"),
    ("source_addr_ton", "int1"),
    ("source_addr_npi", "int1"),
    ("source_addr", "cstring"),
    ("dest_addr_ton", "int1"),
    ("dest_addr_npi", "int1"),
    ("destination_addr", "cstring"),
    ("esm_class", "int1"),
    ("protocol_id", "int1"),
    ("priority_flag", "int1"),
    ("schedule_delivery_time", "cstring"),
    ("validity_period", "cstring"),
    ("registered_delivery", "int1"),
    ("replace_if_present_flag", "int1"),
    ("data_coding", "int1"),
    ("sm_default_msg_id", "int1"),
    ("short_message", "octets"),
)
_BIND_FIELDS: Final[tuple[tuple[str, Kind], ...]] = (
    ("system_id", "cstring"),
    ("password", "cstring"),
    ("system_type", "cstring"),
    ("interface_version", "int1"),
    ("addr_ton", "int1"),
    ("addr_npi", "int1"),
    ("address_range", "cstring"),
)

LAYOUTS: Final[Mapping[Command, tuple[tuple[str, Kind], ...]]] = {
    Command.BIND_TRANSCEIVER: _BIND_FIELDS,
    Command.BIND_TRANSCEIVER_RESP: (("system_id", "cstring"),),
    Command.SUBMIT_SM: _SM_FIELDS,
    Command.SUBMIT_SM_RESP: (("message_id", "cstring"),),
    Command.DELIVER_SM: _SM_FIELDS,
    Command.DELIVER_SM_RESP: (("message_id", "cstring"),),
}
"""Mandatory parameters per command, in wire order; commands absent here have no body."""

Value = int | str | bytes
_SIZES: Final = {"int1": 1, "int2": 2, "int4": 4}
_KNOWN: Final = frozenset(int(c) for c in Command)


def _layout(command: int) -> tuple[tuple[str, Kind], ...]:
    return LAYOUTS.get(Command(command), ()) if command in _KNOWN else ()


@dataclasses.dataclass(frozen=True)
class Pdu:
    """One PDU. ``params`` are the mandatory parameters by name (missing ones encode as zero or
    empty); ``tlvs`` the optional ones by tag, as raw octets."""

    command: int
    sequence: int
    status: int = 0
    params: Mapping[str, Value] = dataclasses.field(default_factory=dict)
    tlvs: Mapping[int, bytes] = dataclasses.field(default_factory=dict)

    @property
    def is_response(self) -> bool:
        return bool(self.command & 0x80000000)

    def text(self, name: str) -> str:
        """A C-octet string parameter (ASCII by the standard; Latin-1 never fails to decode)."""
        value = self.params.get(name, "")
        return value.decode("latin-1") if isinstance(value, bytes) else str(value)

    def number(self, name: str) -> int:
        value = self.params.get(name, 0)
        return value if isinstance(value, int) else 0

    def octets(self, name: str) -> bytes:
        value = self.params.get(name, b"")
        return value if isinstance(value, bytes) else str(value).encode("latin-1")


def _encode_field(kind: Kind, value: Value | None) -> bytes:
    if kind == "cstring":
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value or "")
        return text.encode("latin-1") + b"\x00"
    if kind == "octets":
        data = value if isinstance(value, bytes) else str(value or "").encode("latin-1")
        if len(data) > 254:
            raise PduError(f"short_message of {len(data)} octets: use message_payload")
        return bytes([len(data)]) + data
    number = int(value or 0)
    return number.to_bytes(_SIZES[kind], "big")


def encode(pdu: Pdu) -> bytes:
    """The PDU's bytes. A response with an error status carries no body (§3.2)."""
    body = bytearray()
    if not (pdu.is_response and pdu.status):
        for name, kind in _layout(pdu.command):
            body += _encode_field(kind, pdu.params.get(name))
        for tag, value in pdu.tlvs.items():
            body += struct.pack(">HH", tag, len(value)) + value
    length = HEADER.size + len(body)
    return HEADER.pack(length, pdu.command, pdu.status, pdu.sequence) + bytes(body)


def _read_cstring(body: bytes, offset: int) -> tuple[bytes, int]:
    end = body.find(b"\x00", offset)
    if end < 0:
        raise PduError("C-octet string without its NUL")
    return body[offset:end], end + 1


def decode(frame: bytes) -> Pdu:
    """One whole PDU (as cut by :class:`Framer`) into a :class:`Pdu`."""
    if len(frame) < HEADER.size:
        raise PduError(f"PDU of {len(frame)} octets is shorter than its header")
    length, command, status, sequence = HEADER.unpack_from(frame)
    if length != len(frame):
        raise PduError(f"command_length {length} but {len(frame)} octets")
    body = frame[HEADER.size :]
    params: dict[str, Value] = {}
    offset = 0
    for name, kind in _layout(command):
        if offset >= len(body):
            break  # an error response, or a bind_resp without system_id: no body
        if kind == "cstring":
            raw, offset = _read_cstring(body, offset)
            params[name] = raw.decode("latin-1")
        elif kind == "octets":
            size = body[offset]
            params[name] = body[offset + 1 : offset + 1 + size]
            offset += 1 + size
        else:
            size = _SIZES[kind]
            params[name] = int.from_bytes(body[offset : offset + size], "big")
            offset += size
    tlvs: dict[int, bytes] = {}
    while offset + 4 <= len(body):
        tag, size = struct.unpack_from(">HH", body, offset)
        tlvs[tag] = body[offset + 4 : offset + 4 + size]
        offset += 4 + size
    if offset > len(body):
        raise PduError("truncated optional parameter")
    return Pdu(command, sequence, status, params, tlvs)


class Framer:
    """Cuts the bytes read from a link into whole PDUs."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Add what was read; yield every PDU now complete."""
        self._buffer += data
        while len(self._buffer) >= 4:
            length = int.from_bytes(self._buffer[:4], "big")
            if length < HEADER.size or length > MAX_PDU_LENGTH:
                raise PduError(f"command_length {length} is not a PDU's")
            if len(self._buffer) < length:
                return
            frame = bytes(self._buffer[:length])
            del self._buffer[:length]
            yield frame
