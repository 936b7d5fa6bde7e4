"""Names of Redis keys, Celery queues and default limits, in one place."""

from __future__ import annotations

from typing import Final

__all__ = [
    "BYTEHAND",
    "POLL_S",
    "PROVIDERS",
    "QUEUES",
    "QUEUE_DEFAULT",
    "QUEUE_SEND_BYTEHAND",
    "QUEUE_SEND_TIMETOCHAT",
    "QUEUE_STATUS",
    "SWEEP_S",
    "TICK_S",
    "TIMETOCHAT",
    "limiter_key",
    "metrics_key",
    "smpp_lease_key",
    "token_key",
    "token_lock_key",
]

BYTEHAND: Final = "bytehand"
TIMETOCHAT: Final = "timetochat"
PROVIDERS: Final = (BYTEHAND, TIMETOCHAT)

QUEUE_SEND_BYTEHAND: Final = "send.bytehand"
QUEUE_SEND_TIMETOCHAT: Final = "send.timetochat"
QUEUE_STATUS: Final = "status"
QUEUE_DEFAULT: Final = "default"
QUEUES: Final = (QUEUE_DEFAULT, QUEUE_SEND_TIMETOCHAT, QUEUE_STATUS, QUEUE_SEND_BYTEHAND)
"""Every queue, in the order workers read them (see ``broker_transport_options``): the queues
whose work per tick is bounded first, ByteHand's batches, which can outlast the fleet, last."""

REDIS_PREFIX: Final = "dispatcher"

TICK_S: Final = 1.0
"""Beat: start due campaigns and top up running ones."""
POLL_S: Final = 2.0
"""Beat: lease messages due for a status poll."""
SWEEP_S: Final = 10.0
"""Beat: in-doubt stuck sends, release work whose broker message was lost."""


def limiter_key(provider: str, account: str) -> str:
    """The budget of one provider account, shared by the whole fleet."""
    return f"{provider}:{account}"


def token_key(service_id: str) -> str:
    """Where the fleet caches the TimeToChat token of one service."""
    return f"{REDIS_PREFIX}:timetochat:token:{service_id}"


def token_lock_key(service_id: str) -> str:
    """The lock held by the one process refreshing a TimeToChat token."""
    return f"{REDIS_PREFIX}:timetochat:token-lock:{service_id}"


def metrics_key(family: str) -> str:
    """The Redis hash holding one metric family's fleet-wide counts (see dispatcher.meter)."""
    return f"{REDIS_PREFIX}:metrics:{family}"


def smpp_lease_key(account: str) -> str:
    """The lease that keeps one SMPP gateway per TimeToChat account across the fleet."""
    return f"{REDIS_PREFIX}:smpp:lease:{account}"
