"""kombu's Redis transport, with one repair: a worker survives a Redis restart.

Celery 5.7 handles a lost broker connection in
``Consumer.on_connection_error_after_connected``: it ``collect()``s the connection, which
closes its channels and then detaches the transport (``transport.client = None``), and then
``close()``s the same connection. Closing a channel requeues the messages it delivered and
nobody acknowledged yet (our tasks are ``acks_late``: every task running in a thread). If the
first close of the task channel was cut short, a connection error raised by the BRPOP that was
waiting on it, or by another channel closed before it, the second close runs with the
transport detached, and requeueing the unacknowledged messages builds a Redis connection pool
from ``transport.client``, which is ``None`` now: ``AttributeError: 'NoneType' object has no
attribute 'hostname'``. That is no connection error, so Celery calls it an "Unrecoverable
error" and the worker process exits. It happened to 6 workers of 40 over 20 Redis restarts;
once to both workers of a stack, and nothing consumed again (docs/reliability.md).

The repair: a channel whose transport is detached has no broker to reach, which is a
connection error, like any other close of a channel on a dead broker. kombu ignores those while
closing, Celery goes on to reconnect, and the messages it could not requeue are the sweeper's
(their rows stay ``queued``; docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

import kombu.transport
import redis
from kombu.transport import redis as kombu_redis

__all__ = ["SCHEMES", "Channel", "DetachedTransportError", "Transport", "install"]

SCHEMES = ("redis", "rediss")
"""The broker URL schemes that name kombu's Redis transport, and ours once installed."""


class DetachedTransportError(redis.ConnectionError):
    """The channel's transport was closed: nothing left to connect to."""


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, which cannot reconnect once its transport is detached."""

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise DetachedTransportError("the broker connection was closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        return params


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel


def install() -> None:
    """Make ``redis://`` and ``rediss://`` broker URLs mean :class:`Transport` in this process.

    kombu picks a transport by the URL's scheme, through its table of aliases. Registered under
    the same names, rather than named as ``broker_transport``, nothing that reads the scheme
    changes: kombu's TLS defaults for ``rediss://``, the broker URL in logs, Flower's queue
    lengths (it chooses its client by the scheme of the URL kombu gives back).
    """
    for scheme in SCHEMES:
        kombu.transport.TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
        kombu.transport._transport_cache.pop(scheme, None)  # resolved before: resolve again
