"""The sliding-window arithmetic, on a fake clock."""

from __future__ import annotations

import pytest

from dispatcher.sandbox.ratewindow import SlidingWindowLimiter, max_in_window, rates_over_overlap


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("timestamps", "expected"),
    [
        ([], 0),
        ([1.0], 1),
        ([1.0, 1.5, 1.99], 3),
        ([1.0, 2.0, 3.0], 1),  # exactly one width apart: never in the same half-open window
        ([0.0, 0.5, 1.2, 1.4, 1.45], 4),
        ([0.0] * 5 + [0.999] * 3, 8),
    ],
)
def test_max_in_window(timestamps: list[float], expected: int) -> None:
    """The busiest half-open one-second window is counted exactly."""
    assert max_in_window(timestamps, 1.0) == expected


def test_limit_refuses_the_21st_call_in_a_second() -> None:
    """Twenty calls pass, the twenty-first within the same second is refused."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(20, 1.0, clock)
    assert all(limiter.admit("a") is not None for _ in range(20))
    clock.now += 0.999
    assert limiter.admit("a") is None


def test_window_slides_rather_than_resetting() -> None:
    """Slots free up one by one as their calls leave the window, not at a second boundary."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, 1.0, clock)
    assert limiter.admit("a") == 100.0
    clock.now = 100.6
    assert limiter.admit("a") == 100.6
    clock.now = 101.0  # the first call leaves the window exactly now
    assert limiter.admit("a") == 101.0
    clock.now = 101.5
    assert limiter.admit("a") is None  # 100.6 and 101.0 still inside
    clock.now = 101.6
    assert limiter.admit("a") == 101.6


def test_refused_calls_take_no_slot() -> None:
    """Hammering while refused does not push the next free slot further away."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 1.0, clock)
    assert limiter.admit("a") is not None
    for step in range(9):
        clock.now = 100.1 + step * 0.1
        assert limiter.admit("a") is None
    clock.now = 101.0
    assert limiter.admit("a") is not None


def test_accounts_have_separate_budgets() -> None:
    """One account's burst does not spend another's budget."""
    limiter = SlidingWindowLimiter(1, 1.0, FakeClock())
    assert limiter.admit("a") is not None
    assert limiter.admit("b") is not None
    assert limiter.admit("a") is None


def test_served_calls_never_exceed_the_limit_in_any_window() -> None:
    """Whatever the arrival pattern, the served timestamps respect the limit."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter(20, 1.0, clock)
    served = []
    for i in range(2000):
        clock.now = 100.0 + (i * 7919 % 1000) / 997 + i * 0.003
        at = limiter.admit("a")
        if at is not None:
            served.append(at)
    assert max_in_window(sorted(served), 1.0) == 20


@pytest.mark.parametrize(
    ("streams", "seconds", "rates"),
    [
        # b runs from 2 to 6: a's four acceptances then, b's two.
        ({"a": [0, 1, 2, 3, 4, 5, 6, 7], "b": [2, 4, 6]}, 4.0, {"a": 1.0, "b": 0.5}),
        # Never at the same time: no overlap, no rate.
        ({"a": [0, 1], "b": [2, 3]}, 0.0, {"a": 0.0, "b": 0.0}),
        ({"a": [0, 1], "b": []}, 0.0, {"a": 0.0, "b": 0.0}),
    ],
)
def test_rates_over_overlap(
    streams: dict[str, list[float]], seconds: float, rates: dict[str, float]
) -> None:
    """Each stream's rate counts only the seconds when every stream was running."""
    assert rates_over_overlap(streams) == (seconds, rates)
