"""Fair sharing: how many provider calls each running campaign may put on the broker this tick.

Two rules keep every account at its own budget, whatever the number of accounts and campaigns:

* **Per account, about one tick of budget on the broker.** The feeder tops an account's queued
  work up to what its limiter lets through in the next tick and a half, never more. A send
  queue that holds seconds of one account's work makes every worker thread wait on that
  account's limiter while another account's queue waits behind it (workers read the queues
  in order); a queue that holds about one tick empties every tick, and a send that gets no
  slot within :data:`SEND_PATIENCE_S` gives its recipients back to the feeder, so every queue
  is read every tick.
* **Per campaign, a weighted round-robin of that tick.** An account's free calls are dealt out
  one at a time over its campaigns (smooth weighted round-robin: ``high`` gets four calls for
  ``normal``'s two and ``low``'s one), skipping a campaign that has nothing more to send, so
  campaigns on one account share its budget evenly, or by priority, and none is starved.

Plain functions of their inputs and ``now`` (which rotates who is dealt first, so the remainder
of an uneven split does not always go to the same campaign).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from dispatcher.constants import TICK_S

__all__ = [
    "FEED_HORIZON_TICKS",
    "PRIORITIES",
    "PRIORITY_WEIGHTS",
    "SEND_PATIENCE_S",
    "Demand",
    "account_room",
    "deal",
]

PRIORITY_WEIGHTS: Final = {"high": 4, "normal": 2, "low": 1}
"""A campaign's share of its account's budget relative to the other campaigns on it."""

PRIORITIES: Final = tuple(PRIORITY_WEIGHTS)

FEED_HORIZON_TICKS: Final = 1.5
"""How much of an account's budget the feeder keeps queued, in ticks: a little more than one,
since the beat's tick comes late under load and an account whose queue ran dry before it
lost the difference (18.0 TimeToChat sends/s with exactly one tick)."""

SEND_PATIENCE_S: Final = TICK_S / 2
"""The longest a send waits for its account's slot before handing its recipients back to the
feeder and its worker thread to the next task (perhaps another account's)."""


@dataclasses.dataclass(frozen=True)
class Demand:
    """One running campaign of an account: its priority and how many calls it could make now."""

    campaign_id: int
    priority: str
    calls_wanted: int


def account_room(*, calls_per_tick: int, messages_in_flight: int, per_call: int) -> int:
    """Calls an account may have queued now: one tick of budget less what is already on the
    broker (``queued`` or ``sending`` messages, ``per_call`` of them to a call)."""
    calls_in_flight = math.ceil(messages_in_flight / per_call)
    return max(0, calls_per_tick - calls_in_flight)


def deal(now: datetime, room: int, demands: Sequence[Demand]) -> dict[int, int]:
    """Deal ``room`` calls over the campaigns by priority weight: calls granted per campaign id.

    A campaign never gets more than it wants; what it leaves goes to the others. The order of
    equal claims rotates with the second of ``now``.
    """
    wanting = sorted((d for d in demands if d.calls_wanted > 0), key=lambda d: d.campaign_id)
    granted = {d.campaign_id: 0 for d in demands}
    if not wanting:
        return granted
    shift = int(now.timestamp()) % len(wanting)
    wanting = wanting[shift:] + wanting[:shift]
    credit = {d.campaign_id: 0 for d in wanting}
    for _ in range(room):
        open_ = [d for d in wanting if granted[d.campaign_id] < d.calls_wanted]
        if not open_:
            break
        total = sum(PRIORITY_WEIGHTS[d.priority] for d in open_)
        for demand in open_:
            credit[demand.campaign_id] += PRIORITY_WEIGHTS[demand.priority]
        chosen = max(open_, key=lambda d: credit[d.campaign_id])  # first of equals wins
        credit[chosen.campaign_id] -= total
        granted[chosen.campaign_id] += 1
    return granted
