"""The fair-sharing policy: one tick of budget per account, dealt over campaigns by weight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.fairshare import Demand, account_room, deal

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("calls_per_tick", "in_flight", "per_call", "expected"),
    [
        (20, 0, 1, 20),  # an idle account: one tick of budget
        (20, 5, 1, 15),  # five messages still on the broker
        (20, 25, 1, 0),  # more on the broker than a tick: nothing more
        (20, 150, 100, 18),  # a half batch in flight still takes a call
        (20, 2000, 100, 0),
    ],
)
def test_account_room(calls_per_tick: int, in_flight: int, per_call: int, expected: int) -> None:
    """An account's queued calls never exceed one tick of its budget."""
    room = account_room(
        calls_per_tick=calls_per_tick, messages_in_flight=in_flight, per_call=per_call
    )
    assert room == expected


@pytest.mark.parametrize(
    ("room", "demands", "expected"),
    [
        # Two equal campaigns split evenly.
        (20, [Demand(1, "normal", 100), Demand(2, "normal", 100)], {1: 10, 2: 10}),
        # Priorities: high 4, normal 2, low 1.
        (14, [Demand(1, "high", 100), Demand(2, "normal", 100), Demand(3, "low", 100)],
         {1: 8, 2: 4, 3: 2}),
        (20, [Demand(1, "high", 100), Demand(2, "low", 100)], {1: 16, 2: 4}),
        # What one campaign cannot use goes to the others.
        (20, [Demand(1, "high", 3), Demand(2, "low", 100)], {1: 3, 2: 17}),
        # Nobody gets more than it wants, even with room to spare.
        (20, [Demand(1, "normal", 2), Demand(2, "normal", 5)], {1: 2, 2: 5}),
        # No room, or nothing to send.
        (0, [Demand(1, "normal", 10)], {1: 0}),
        (20, [Demand(1, "normal", 0)], {1: 0}),
        (20, [], {}),
        # A low campaign still gets its turn beside many high ones.
        (9, [Demand(1, "high", 99), Demand(2, "high", 99), Demand(3, "low", 99)],
         {1: 4, 2: 4, 3: 1}),
    ],
)  # fmt: skip
def test_deal(room: int, demands: list[Demand], expected: dict[int, int]) -> None:
    """Calls are dealt by priority weight, capped by what each campaign wants."""
    assert deal(NOW, room, demands) == expected


def test_deal_rotates_the_odd_call() -> None:
    """An odd call between equal campaigns goes to each in turn, tick after tick."""
    demands = [Demand(1, "normal", 100), Demand(2, "normal", 100)]
    winners = {
        campaign_id
        for tick in range(2)
        for campaign_id, calls in deal(NOW + timedelta(seconds=tick), 1, demands).items()
        if calls
    }
    assert winners == {1, 2}
