"""The fair-sharing policy: one tick of budget per account, dealt over campaigns by weight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.fairshare import Demand, deal, interleave

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


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
        # Shares count what is on the broker: high has its 16, low gets its 4.
        (20, [Demand(1, "high", 100, 16), Demand(2, "low", 100, 0)], {1: 0, 2: 4}),
        # One tick's budget at most on the broker, even when a campaign is over its share.
        (20, [Demand(1, "normal", 100, 15), Demand(2, "normal", 100, 0)], {1: 0, 2: 5}),
        (20, [Demand(1, "normal", 100, 25), Demand(2, "normal", 100, 0)], {1: 0, 2: 0}),
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


@pytest.mark.parametrize(
    ("work", "expected"),
    [
        ({1: ["a", "b"], 2: ["x", "y"]}, [(1, "a"), (2, "x"), (1, "b"), (2, "y")]),
        # Four to one: the smaller share sits in the middle, not at the end.
        (
            {1: ["a", "b", "c", "d"], 2: ["x"]},
            [(1, "a"), (1, "b"), (2, "x"), (1, "c"), (1, "d")],
        ),
        ({1: ["a"], 2: []}, [(1, "a")]),
        ({}, []),
    ],
)
def test_interleave(work: dict[int, list[str]], expected: list[tuple[int, str]]) -> None:
    """A tick's tasks alternate between campaigns in proportion, in each one's own order."""
    assert interleave(work) == expected
