"""The Redis lease that keeps one SMPP gateway per account."""

from __future__ import annotations

import time

import redis

from dispatcher.smpp.lease import Lease


def test_one_holder_at_a_time(redis_client: redis.Redis) -> None:
    """While one holds the lease, another cannot take it; the holder renews it."""
    first, second = Lease(redis_client, "k", 5), Lease(redis_client, "k", 5)
    assert first.hold()
    assert not second.hold()
    assert first.hold()


def test_lapsed_lease_is_taken_over(redis_client: redis.Redis) -> None:
    """A holder that stops renewing loses the lease after its ttl, and cannot renew it back."""
    first, second = Lease(redis_client, "k", 0.2), Lease(redis_client, "k", 5)
    assert first.hold()
    time.sleep(0.3)
    assert second.hold()
    assert not first.hold()


def test_release_frees_only_ones_own_lease(redis_client: redis.Redis) -> None:
    """release gives the lease back at once, but never releases another holder's."""
    first, second = Lease(redis_client, "k", 5), Lease(redis_client, "k", 5)
    assert first.hold()
    second.release()
    assert not second.hold()
    first.release()
    assert second.hold()
