"""TimeToChat's SMPP connector: PDUs, receipts and MOs (pure), the link, and the gateway."""

from dispatcher.smpp.messages import IncomingSms, Receipt, build_submit, parse_deliver
from dispatcher.smpp.pdu import Command, Framer, Pdu, PduError, Status, Tag, decode, encode

__all__ = [
    "Command",
    "Framer",
    "IncomingSms",
    "Pdu",
    "PduError",
    "Receipt",
    "Status",
    "Tag",
    "build_submit",
    "decode",
    "encode",
    "parse_deliver",
]
