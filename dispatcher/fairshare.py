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
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final, TypeVar

from dispatcher.constants import TICK_S

__all__ = [
    "CLAIM_LEAD_S",
    "FEED_HORIZON_TICKS",
    "PRIORITIES",
    "PRIORITY_WEIGHTS",
    "SEND_PATIENCE_S",
    "Demand",
    "deal",
    "interleave",
]

T = TypeVar("T")

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

CLAIM_LEAD_S: Final = 0.1
"""How long before its reserved slot frees a send claims its recipients. The claim (a write,
waiting its turn on SQLite behind the other sends' results and the callbacks) then overlaps the
wait, and the call leaves as the slot frees: claimed inside the slot, each claim's latency was
lost from the account's budget, down to 18.1 TimeToChat sends/s beside a large ByteHand
campaign. A worker killed in this lead leaves its claimed recipients in doubt, so it is short."""


@dataclasses.dataclass(frozen=True)
class Demand:
    """One running campaign of an account: its priority, how many more calls it could make now
    and how many of its calls are already on the broker."""

    campaign_id: int
    priority: str
    calls_wanted: int
    calls_in_flight: int = 0


def deal(now: datetime, budget: int, demands: Sequence[Demand]) -> dict[int, int]:
    """Calls each campaign may add to the broker: calls granted per campaign id.

    ``budget`` (the account's calls for the next tick) is dealt over the campaigns by priority
    weight, each share counting what the campaign already has on the broker, so the split holds
    however little room a tick has (dealing only the room left anew each tick favoured the
    smaller weight). A campaign never gets more than it wants; what it leaves goes to the
    others; the account never has more than ``budget`` calls on the broker. The order of
    equal claims rotates with the second of ``now``.
    """
    capacity = {d.campaign_id: d.calls_in_flight + d.calls_wanted for d in demands}
    share = _weighted_shares(now, budget, demands, capacity)
    room = max(0, budget - sum(d.calls_in_flight for d in demands))
    granted = {d.campaign_id: max(0, share[d.campaign_id] - d.calls_in_flight) for d in demands}
    while sum(granted.values()) > room:  # a campaign over its share leaves less room
        largest = max(granted, key=lambda campaign_id: granted[campaign_id])
        granted[largest] -= 1
    return granted


def _weighted_shares(
    now: datetime, budget: int, demands: Sequence[Demand], capacity: Mapping[int, int]
) -> dict[int, int]:
    """Smooth weighted round-robin of ``budget`` units, none beyond a campaign's capacity."""
    ordered = sorted(demands, key=lambda d: d.campaign_id)
    share = {d.campaign_id: 0 for d in demands}
    if not ordered:
        return share
    shift = int(now.timestamp()) % len(ordered)
    ordered = ordered[shift:] + ordered[:shift]
    credit = {d.campaign_id: 0 for d in ordered}
    for _ in range(budget):
        open_ = [d for d in ordered if share[d.campaign_id] < capacity[d.campaign_id]]
        if not open_:
            break
        total = sum(PRIORITY_WEIGHTS[d.priority] for d in open_)
        for demand in open_:
            credit[demand.campaign_id] += PRIORITY_WEIGHTS[demand.priority]
        chosen = max(open_, key=lambda d: credit[d.campaign_id])  # first of equals wins
        credit[chosen.campaign_id] -= total
        share[chosen.campaign_id] += 1
    return share


def interleave(work: Mapping[int, Sequence[T]]) -> list[tuple[int, T]]:
    """Each campaign's tasks spread evenly through the tick's queue, in proportion to its share.

    Workers take a queue's tasks in order and the last of a tick may find the account's budget
    spent (and be handed back): enqueued one campaign after the other, the later campaign lost
    them every tick (11.9 against 6.9 sends/s for two equal campaigns).
    """
    placed = [
        ((index + 0.5) / len(tasks), campaign_id, task)
        for campaign_id, tasks in work.items()
        for index, task in enumerate(tasks)
    ]
    placed.sort(key=lambda item: (item[0], item[1]))
    return [(campaign_id, task) for _, campaign_id, task in placed]
