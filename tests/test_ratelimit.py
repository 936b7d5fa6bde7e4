"""The fleet-wide limiter, against a real Redis, with several real processes."""

from __future__ import annotations

import multiprocessing
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dispatcher.config import load_settings
from dispatcher.embedded import free_port
from dispatcher.errors import RateLimiterUnavailable
from dispatcher.providers.base import CallKind
from dispatcher.ratelimit import FleetLimiter
from dispatcher.runtime import Runtime

# Every test here times Redis answers against the clock: run alone, after the parallel run.
pytestmark = pytest.mark.serial


def max_in_any_window(stamps: list[float], window: float = 1.0) -> int:
    """The most stamps inside any half-open window of ``window`` seconds."""
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _hammer(redis_url: str, key: str, seconds: float, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    limiter = FleetLimiter(redis_url, key, calls_per_second=20)
    stamps = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        with limiter("send"):
            stamps.append(time.time())
    queue.put(stamps)


def test_max_in_any_window_counts_sliding_windows() -> None:
    """The checker itself: 21 stamps spread over 1.05 s never put 21 in one second."""
    assert max_in_any_window([i * 0.05 for i in range(21)]) == 20
    assert max_in_any_window([0.0, 0.5, 0.99, 1.0]) == 3


@pytest.mark.processes
def test_four_processes_share_one_budget(redis_client: redis.Redis, redis_url: str) -> None:
    """Four processes hammering one account get 20/s between them, never 21 in a second."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_hammer, args=(redis_url, "bytehand:fleet", 4.0, queue))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    stamps = [stamp for _ in workers for stamp in queue.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=10)
    assert max_in_any_window(stamps) <= 20
    duration = max(stamps) - min(stamps)
    assert len(stamps) / duration >= 18.5, f"only {len(stamps)} calls in {duration:.2f} s"


def _granted(limiter: FleetLimiter, kind: CallKind, waited_s: float = 0.0) -> bool:
    """One attempt whose call, if granted, is over at once."""
    ticket, _ = limiter.try_acquire(kind, waited_s)
    if ticket is not None:
        limiter.complete(ticket)
    return ticket is not None


def test_accounts_do_not_share_budgets(redis_client: redis.Redis, redis_url: str) -> None:
    """Each account has its own 20 slots."""
    one = FleetLimiter(redis_url, "bytehand:a", calls_per_second=20)
    two = FleetLimiter(redis_url, "bytehand:b", calls_per_second=20)
    assert all(_granted(one, "send") for _ in range(20))
    assert not _granted(one, "send")
    assert _granted(two, "send")


def test_polls_leave_room_for_sends(redis_client: redis.Redis, redis_url: str) -> None:
    """Polls stop at limit - reserve; sends still get the reserved slots; the wait is known."""
    limiter = FleetLimiter(redis_url, "timetochat:s", calls_per_second=20, reserve=4)
    granted = [_granted(limiter, "poll") for _ in range(20)]
    assert granted.count(True) == 16
    assert all(_granted(limiter, "send") for _ in range(4))
    ticket, wait = limiter.try_acquire("send")
    assert ticket is None
    assert 0.9 < wait <= 1.05


def test_starved_poll_is_promoted(redis_client: redis.Redis, redis_url: str) -> None:
    """A poll that has waited long enough competes with sends."""
    limiter = FleetLimiter(redis_url, "k", calls_per_second=20, reserve=4, promote_after_s=5)
    for _ in range(16):
        _granted(limiter, "send")
    assert not _granted(limiter, "poll", waited_s=1.0)
    assert _granted(limiter, "poll", waited_s=6.0)


def test_a_call_holds_its_slot_until_its_answer(redis_client: redis.Redis, redis_url: str) -> None:
    """The window of a slow call starts when it ends: the provider may have counted it late."""
    limiter = FleetLimiter(redis_url, "slow", calls_per_second=2, guard_s=0.0)
    with limiter("send"):
        assert _granted(limiter, "send")
        time.sleep(1.2)  # the first call is still in flight, the second ended long ago
        assert _granted(limiter, "send")
        assert not _granted(limiter, "send")
    ticket, wait = limiter.try_acquire("send")
    assert ticket is None
    assert 0.7 < wait <= 1.0  # the slow call's slot frees one second after it ended


def test_a_call_never_ended_frees_its_slot_after_hold(
    redis_client: redis.Redis, redis_url: str
) -> None:
    """A process killed mid-call leaves its slot held for the longest a call can last."""
    limiter = FleetLimiter(redis_url, "killed", calls_per_second=1, hold_s=0.5, guard_s=0.0)
    assert limiter.try_acquire("send")[0] is not None  # never completed
    ticket, wait = limiter.try_acquire("send")
    assert ticket is None
    assert 1.3 < wait <= 1.5
    time.sleep(wait)
    assert _granted(limiter, "send")


def test_redis_down_fails_closed() -> None:
    """No Redis, no call: the limiter raises rather than letting calls through."""
    limiter = FleetLimiter(f"redis://127.0.0.1:{free_port()}/0", "k", calls_per_second=20)
    with pytest.raises(RateLimiterUnavailable), limiter("send"):
        pytest.fail("a call was let through")


def _entries(redis_client: redis.Redis, key: str) -> int:
    return int(redis_client.zcard(f"dispatcher:limit:{key}"))


def test_a_reserved_slot_is_spent_by_the_next_send(
    redis_client: redis.Redis, redis_url: str
) -> None:
    """Reserved before the claim, the slot is the one the send then uses: one entry, not two;
    any other call through the reservation (a token request) takes a turn of its own."""
    limiter = FleetLimiter(redis_url, "reserved", calls_per_second=20)
    with limiter.reserved("send", patience_s=0.5) as reservation:
        assert reservation is not None
        assert _entries(redis_client, "reserved") == 1
        with reservation.gate("token"):
            assert _entries(redis_client, "reserved") == 2
        with reservation.gate("send"):
            assert _entries(redis_client, "reserved") == 2
        with reservation.gate("send"):  # a second send waits for a slot of its own
            assert _entries(redis_client, "reserved") == 3
    assert _entries(redis_client, "reserved") == 3


def test_a_slot_freeing_within_the_patience_is_reserved_ahead(
    redis_client: redis.Redis, redis_url: str
) -> None:
    """The block is entered ``lead_s`` before the slot frees and the send waits for the rest;
    the send leaves no earlier than one window after the call it replaces ended."""
    limiter = FleetLimiter(redis_url, "ahead", calls_per_second=1, guard_s=0.0)
    ended = time.monotonic()
    limiter.complete(limiter.wait_turn("send"))
    with limiter.reserved("send", patience_s=1.5, lead_s=0.3) as reservation:
        entered = time.monotonic()
        assert reservation is not None
        assert 0.9 - 0.3 <= entered - ended < 1.0 - 0.3 + 0.1
        with reservation.gate("send"):
            assert time.monotonic() - ended >= 1.0
    assert _entries(redis_client, "ahead") == 2  # the first call's and the reserved one


def test_slots_reserved_ahead_are_never_granted_twice(
    redis_client: redis.Redis, redis_url: str
) -> None:
    """Each caller reserving ahead is matched with a later freed slot: at most ``limit``
    calls start in any window, however many reserve at once."""
    limiter = FleetLimiter(redis_url, "ahead:many", calls_per_second=5, guard_s=0.0)
    for _ in range(5):
        limiter.complete(limiter.wait_turn("send"))
    starts = []
    for _ in range(12):
        ticket, wait = limiter.try_acquire("send", ahead_s=1.5)
        if ticket is not None:
            starts.append(time.monotonic() + wait)
    assert len(starts) == 5  # the five slots the window frees within 1.5 s; the rest refused
    assert max_in_any_window(sorted(starts)) <= 5
    assert min(starts) - time.monotonic() > 0.8


def test_an_unspent_reservation_is_given_back(redis_client: redis.Redis, redis_url: str) -> None:
    """Nothing to send after all (a redelivered task): the slot is free again at once."""
    limiter = FleetLimiter(redis_url, "unspent", calls_per_second=1)
    with limiter.reserved("send", patience_s=0.5):
        assert limiter.try_acquire("send")[0] is None
    assert _granted(limiter, "send")


def test_a_reservation_with_patience_gives_up_on_a_full_account(
    redis_client: redis.Redis, redis_url: str
) -> None:
    """No slot within the patience: ``False`` soon, nothing held, instead of a long wait."""
    limiter = FleetLimiter(redis_url, "patient", calls_per_second=1)
    limiter.complete(limiter.wait_turn("send"))
    started = time.monotonic()
    with limiter.reserved("send", patience_s=0.2) as reservation:
        assert reservation is None
    assert time.monotonic() - started < 0.6
    assert _entries(redis_client, "patient") == 1


def test_reserving_without_redis_fails_closed_before_the_claim() -> None:
    """No Redis: the reservation itself is refused, so no recipient is claimed for a call."""
    limiter = FleetLimiter(f"redis://127.0.0.1:{free_port()}/0", "k", calls_per_second=20)
    with pytest.raises(RateLimiterUnavailable), limiter.reserved("send", patience_s=0.5):
        pytest.fail("work was claimed without a slot")


@pytest.fixture
def silent_redis_url() -> Iterator[str]:
    """A Redis address that accepts connections and never answers (a hung server)."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete in the backlog; nothing is ever read or answered
    try:
        yield f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
    finally:
        silent.close()


def test_a_redis_that_stops_answering_fails_closed_within_seconds(silent_redis_url: str) -> None:
    """A hung Redis makes the limiter raise within seconds instead of hanging a thread."""
    started = time.monotonic()
    limiter = FleetLimiter(silent_redis_url, "silent", calls_per_second=20)
    with pytest.raises(RateLimiterUnavailable):
        limiter.try_acquire("send")
    assert time.monotonic() - started < 10


def test_the_runtime_redis_client_times_out(silent_redis_url: str, tmp_path: Path) -> None:
    """The runtime's client (the token cache's) gives up on a hung Redis within seconds."""
    runtime = Runtime(
        load_settings({"REDIS_URL": silent_redis_url, "DISPATCHER_STATE_DIR": str(tmp_path)})
    )
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        runtime.redis.ping()
    assert time.monotonic() - started < 10
    runtime.close()


def test_in_use_counts_the_current_window(redis_client: redis.Redis, redis_url: str) -> None:
    """What the console shows: calls in flight or ended within the last second, of the limit."""
    limiter = FleetLimiter(redis_url, "console:acct", calls_per_second=20)
    assert limiter.in_use() == (0, 20)
    tickets = [limiter.wait_turn("send") for _ in range(3)]
    limiter.complete(tickets[0])
    assert limiter.in_use() == (3, 20)
    time.sleep(1.1)
    assert limiter.in_use() == (2, 20)
