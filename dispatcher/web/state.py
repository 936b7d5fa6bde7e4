"""What the app factory hands to its routes: the process runtime and the feeder kick.

They and the callback inbox live on ``app.state`` (set once by
:func:`dispatcher.web.app.create_app`), so routes take them through FastAPI dependencies and
tests can build as many apps as they need, each on its own database, without any global.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import cast

from fastapi import Request

from dispatcher.inbox import Inbox
from dispatcher.models import utcnow
from dispatcher.runtime import Runtime

__all__ = [
    "Clock",
    "OnStart",
    "get_clock",
    "get_inbox",
    "get_on_start",
    "get_runtime",
    "no_kick",
]

OnStart = Callable[[int], None]
"""``on_start(campaign_id)``: enqueue a feeder tick now instead of waiting for beat."""

Clock = Callable[[], datetime]


def no_kick(campaign_id: int) -> None:
    """The default :data:`OnStart`: do nothing; the next beat tick feeds the campaign."""


def get_runtime(request: Request) -> Runtime:
    """The runtime the app was built with."""
    return cast(Runtime, request.app.state.runtime)


def get_inbox(request: Request) -> Inbox:
    """The callback inbox of the app (started and stopped with it)."""
    return cast(Inbox, request.app.state.inbox)


def get_on_start(request: Request) -> OnStart:
    """The feeder kick the app was built with."""
    return cast(OnStart, request.app.state.on_start)


def get_clock(request: Request) -> Clock:
    """``now`` for the domain functions (aware UTC); replaceable in tests."""
    return cast(Clock, getattr(request.app.state, "clock", utcnow))
