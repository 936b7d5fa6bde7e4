"""Provider clients: ByteHand and SFR TimeToChat.

Pure request building and response/webhook parsing (no I/O, tested as tables) with thin clients
around an ``httpx.Client``. Every HTTP request passes a :data:`CallGate` first (the fleet-wide
20 calls/s budget), and every failure is one of :mod:`dispatcher.errors`.
"""

from __future__ import annotations

from dispatcher.providers.base import (
    CallGate,
    CallKind,
    build_http_client,
    check_webhook_secret,
    map_transport_errors,
    no_gate,
)
from dispatcher.providers.bytehand import (
    BatchItemResult,
    ByteHandClient,
    ByteHandDetails,
    ByteHandStatus,
    OutgoingSms,
    Signature,
)
from dispatcher.providers.bytehand_webhooks import IncomingSms, StatusCallback, parse_callback
from dispatcher.providers.timetochat import (
    TimeToChatClient,
    TtcHistoryEntry,
    TtcOutgoing,
    TtcStatus,
)
from dispatcher.providers.timetochat_webhooks import PushEvent, parse_push_cra
from dispatcher.providers.tokens import MemoryTokenStore, RedisTokenStore, TokenStore

__all__ = [
    "BatchItemResult",
    "ByteHandClient",
    "ByteHandDetails",
    "ByteHandStatus",
    "CallGate",
    "CallKind",
    "IncomingSms",
    "MemoryTokenStore",
    "OutgoingSms",
    "PushEvent",
    "RedisTokenStore",
    "Signature",
    "StatusCallback",
    "TimeToChatClient",
    "TokenStore",
    "TtcHistoryEntry",
    "TtcOutgoing",
    "TtcStatus",
    "build_http_client",
    "check_webhook_secret",
    "map_transport_errors",
    "no_gate",
    "parse_callback",
    "parse_push_cra",
]
