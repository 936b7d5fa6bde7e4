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
    "REDIS_CLIENT_OPTIONS",
    "REDIS_CONNECT_TIMEOUT_S",
    "REDIS_HEALTH_CHECK_S",
    "REDIS_READ_TIMEOUT_S",
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

REDIS_CONNECT_TIMEOUT_S: Final = 2.0
REDIS_READ_TIMEOUT_S: Final = 5.0
REDIS_HEALTH_CHECK_S: Final = 15
REDIS_CLIENT_OPTIONS: Final = {
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT_S,
    "socket_timeout": REDIS_READ_TIMEOUT_S,
    "health_check_interval": REDIS_HEALTH_CHECK_S,
}
"""Every Redis client of ours (runtime, token cache, limiter): a Redis that stops answering
without refusing must raise within seconds, not hang a thread (possibly one holding a
provider's answer). No command we send blocks on the server for long (the token lock polls)."""

TICK_S: Final = 1.0
"""Beat: start due campaigns and top up running ones."""
POLL_S: Final = 2.0
"""Beat: lease messages due for a status poll."""
SWEEP_S: Final = 5.0
"""Beat: in-doubt stuck sends, release work whose broker message was lost (or is held by a
dead worker): with ``queued_timeout_s`` it bounds how long a killed worker's recipients wait."""


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
