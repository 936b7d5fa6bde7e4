"""Retry and polling schedules."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.backoff import next_poll_at, poll_deadline, retry_delay


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 2.0), (2, 4.0), (3, 8.0), (10, 300.0)])
def test_retry_delay_is_full_jitter_under_the_ceiling(attempt: int, ceiling: float) -> None:
    """Delays spread over [0, min(cap, base*2^(n-1))]."""
    rand = random.Random(7)
    delays = [retry_delay(attempt, base_s=2, cap_s=300, rand=rand) for _ in range(500)]
    assert max(delays) <= ceiling
    assert min(delays) < ceiling * 0.1
    assert max(delays) > ceiling * 0.9


def test_retry_after_is_a_floor() -> None:
    """The provider's own Retry-After is never undercut."""
    assert retry_delay(1, base_s=1, cap_s=1, retry_after=30, rand=random.Random(1)) == 30


def test_poll_interval_doubles_up_to_ceiling() -> None:
    """Polling backs off per message and stops growing at the ceiling."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    first, ceiling = timedelta(seconds=60), timedelta(seconds=300)
    gaps = [next_poll_at(now, n, first=first, ceiling=ceiling) - now for n in range(5)]
    assert [g.total_seconds() for g in gaps] == [60, 120, 240, 300, 300]


def test_poll_deadline_is_validity_or_default() -> None:
    """Silence becomes final at the validity date when sooner than the default."""
    sent = datetime(2026, 1, 1, tzinfo=UTC)
    two_days = timedelta(hours=48)
    assert poll_deadline(sent, None, default=two_days) == sent + two_days
    soon = sent + timedelta(hours=1)
    assert poll_deadline(sent, soon, default=two_days) == soon
    assert poll_deadline(sent, sent + timedelta(days=9), default=two_days) == sent + two_days
