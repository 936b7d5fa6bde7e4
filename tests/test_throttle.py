"""The log throttle: first occurrence at once, then one line per cause and period."""

from __future__ import annotations

from dispatcher.throttle import LogThrottle


def test_repeats_within_the_period_are_counted_not_logged() -> None:
    """Same cause: logged at 0, quiet at 10 and 30, logged at 61 saying 2 went unlogged."""
    throttle = LogThrottle(60)
    assert [throttle.admit("wrong key", now) for now in (0, 10, 30, 61, 62)] == [
        0,
        None,
        None,
        2,
        None,
    ]


def test_causes_are_throttled_separately() -> None:
    """A second cause within the first's period still gets its line."""
    throttle = LogThrottle(60)
    assert throttle.admit("wrong key", 0) == 0
    assert throttle.admit("no secret", 1) == 0
