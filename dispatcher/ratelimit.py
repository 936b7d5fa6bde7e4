"""The fleet-wide limiter: N provider calls per second per account, shared by every process.

Strategy: a moving window (exact: never more than N entries in any window, unlike the fixed
window that lets 2N through around a boundary) kept in one Redis sorted set per account, built on
``limits``' Redis storage (connection, key prefix) and rate items, with two changes to its moving
window, made in a storage subclass:

* **One clock.** ``limits`` stamps entries with each caller's ``time.time()``, so hosts whose
  clocks differ by 100 ms would each see a different window. Our scripts stamp entries with the
  Redis server's ``TIME`` instead: every worker on every machine is judged by the same clock, and
  host clock skew does not matter at all.
* **Stamped when the call is over, not when it is granted.** The provider counts a call when it
  arrives, somewhere between our grant and its answer; a process descheduled for 60 ms between
  the two (two cores, eight processes) made a grant-time stamp too early, and a fixed guard band
  was either too small for that or too costly. So a granted call holds its slot *in flight*
  (scored in the future, so it counts) until its answer is back, and is then re-stamped with the
  completion time, which is never earlier than the provider's arrival stamp. Any two calls N
  apart therefore arrive at least a window apart, whatever the jitter. The cost is the call's
  own latency per slot (a few ms). A process killed mid-call leaves its slot in flight until
  ``hold_s`` (the longest a call can last) has passed: safe, since the call may have arrived.

A send may also **reserve a slot that frees soon** (within its patience): the slot is held in
flight from now, and the caller learns when it becomes its own. It claims its recipients shortly
before that moment, so the claim (a database write, slow under load) no longer lies between a
slot freeing and the call that uses it: at 20 calls/s every millisecond there is lost from the
account's budget once a second.

Priorities share one set: sends (and token requests, which sends need) may fill the whole
window; polls and account calls only take a slot while ``reserve`` slots stay free, so a campaign
in full flow is not slowed by polling, and a poll that has waited ``promote_after`` competes as a
send, so polls always progress. A Redis error grants nothing (fail closed); a Redis error when
re-stamping is logged and leaves the slot held until ``hold_s``, which is safe too.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage

from dispatcher.constants import REDIS_CLIENT_OPTIONS
from dispatcher.errors import RateLimiterUnavailable
from dispatcher.providers.base import CallKind

__all__ = ["FleetLimiter", "Reservation", "ServerClockRedisStorage"]

log = logging.getLogger(__name__)

_ACQUIRE = """
local limit = tonumber(ARGV[1])
local window_us = tonumber(ARGV[2])
local hold_us = tonumber(ARGV[3])
local ahead_us = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window_us)
local count = redis.call('ZCARD', KEYS[1])
local wait = 0
if count >= limit then
    local blocking = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
    wait = tonumber(blocking[2]) + window_us - now
    if wait > ahead_us then
        return {0, wait}
    end
end
redis.call('ZADD', KEYS[1], now + wait + hold_us, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil((wait + hold_us + window_us) / 1000) + 1000)
return {1, wait}
"""

_IN_USE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[1]), '+inf')
"""

_RELEASE = """
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

_COMPLETE = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'XX', tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[1])
return 1
"""


class ServerClockRedisStorage(RedisStorage):
    """``limits``' Redis storage with a moving window stamped by the Redis server clock, whose
    entries are held in flight until the call they granted is over."""

    def __init__(self, uri: str, *, guard_s: float, hold_s: float, **options: Any) -> None:
        super().__init__(uri, key_prefix="dispatcher:limit", **options)
        self.guard_s = guard_s
        self.hold_s = hold_s
        connection = self.get_connection()
        self._acquire_script = connection.register_script(_ACQUIRE.encode())
        self._complete_script = connection.register_script(_COMPLETE.encode())
        self._release_script = connection.register_script(_RELEASE.encode())
        self._in_use_script = connection.register_script(_IN_USE.encode())

    def acquire_with_wait(
        self, key: str, limit: int, expiry: float, ahead_s: float = 0.0
    ) -> tuple[str | None, float]:
        """Take the next slot if it is free within ``ahead_s``: ``(ticket, seconds until it is
        the caller's)``; else ``(None, seconds until the blocking entry leaves the window)``.

        A slot is free when fewer than ``limit`` entries are in flight or ended within the
        window. One taken ahead is held in flight from now, so each later caller is matched
        with a later blocking entry: no two slots are granted for the same freed place.
        """
        ticket = secrets.token_hex(8)
        window_us = int((expiry + self.guard_s) * 1_000_000)
        granted, wait_us = self._acquire_script(
            keys=[self.prefixed_key(key)],
            args=[
                limit,
                window_us,
                int(self.hold_s * 1_000_000),
                ticket,
                int(ahead_s * 1_000_000),
            ],
        )
        return (ticket if granted else None), int(wait_us) / 1_000_000

    def complete(self, key: str, ticket: str) -> None:
        """Re-stamp a granted entry with the time its call ended."""
        self._complete_script(keys=[self.prefixed_key(key)], args=[ticket])

    def release(self, key: str, ticket: str) -> None:
        """Give back a granted entry whose call was never made."""
        self._release_script(keys=[self.prefixed_key(key)], args=[ticket])

    def in_use(self, key: str, expiry: float) -> int:
        """Entries in flight or ended within the last ``expiry`` seconds (read only)."""
        window_us = int((expiry + self.guard_s) * 1_000_000)
        return int(self._in_use_script(keys=[self.prefixed_key(key)], args=[window_us]))


class FleetLimiter:
    """Waits for a turn in one provider account's budget; used as the clients' call gate:
    ``with limiter("send"): <one HTTP request>``."""

    def __init__(
        self,
        redis_url: str,
        key: str,
        *,
        calls_per_second: int,
        hold_s: float = 60.0,
        guard_s: float = 0.01,
        reserve: int = 4,
        promote_after_s: float = 5.0,
        max_wait_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        """``on_wait(seconds)`` learns how long each granted call waited for its turn."""
        self.key = key
        self.storage = ServerClockRedisStorage(
            redis_url, guard_s=guard_s, hold_s=hold_s, **REDIS_CLIENT_OPTIONS
        )
        self.full = RateLimitItemPerSecond(calls_per_second)
        self.background = RateLimitItemPerSecond(max(1, calls_per_second - reserve))
        self.promote_after_s = promote_after_s
        self.max_wait_s = max_wait_s
        self.sleep = sleep
        self.on_wait = on_wait

    def try_acquire(
        self, kind: CallKind, waited_s: float = 0.0, ahead_s: float = 0.0
    ) -> tuple[str | None, float]:
        """One attempt, never waiting: ``(ticket, seconds until the slot is the caller's)``, at
        most ``ahead_s``; or ``(None, seconds until a slot may free)``."""
        urgent = kind in ("send", "token") or waited_s >= self.promote_after_s
        item = self.full if urgent else self.background
        try:
            return self.storage.acquire_with_wait(self.key, item.amount, item.get_expiry(), ahead_s)
        except redis.RedisError as exc:
            raise RateLimiterUnavailable(f"rate limiter unreachable: {exc}") from exc

    def in_use(self) -> tuple[int, int]:
        """``(calls counted in the current window, the limit)``: what the console shows."""
        try:
            used = self.storage.in_use(self.key, self.full.get_expiry())
        except redis.RedisError as exc:
            raise RateLimiterUnavailable(f"rate limiter unreachable: {exc}") from exc
        return used, self.full.amount

    def complete(self, ticket: str) -> None:
        """The call granted by ``ticket`` is over: its slot counts from now for one window."""
        try:
            self.storage.complete(self.key, ticket)
        except redis.RedisError as exc:
            # The call happened: raising would lose its answer. The slot stays held (safe).
            log.warning("rate limiter: call end not recorded (%s); slot held until expiry", exc)

    def wait_turn(self, kind: CallKind) -> str:
        """Block until this process may make one call of ``kind``; returns its ticket."""
        found = self._slot_within(kind, self.max_wait_s, ahead=False)
        if found is None:
            raise RateLimiterUnavailable(f"no call slot for {self.key} in {self.max_wait_s:.0f} s")
        return found[0]

    def _slot_within(
        self, kind: CallKind, patience_s: float, *, ahead: bool
    ) -> tuple[str, float] | None:
        """``(ticket, monotonic time the slot is the caller's)`` for a slot freeing within about
        ``patience_s``, else ``None``: a caller with other work to do gives its thread back
        instead of waiting on this account longer. ``ahead``: a slot freeing within what is left
        of the patience is taken at once, before it frees; otherwise only once it is free.
        Asked again until the patience is spent: a slot given back meanwhile frees one sooner."""
        started = time.monotonic()
        while True:
            waited = time.monotonic() - started
            ahead_s = max(0.0, patience_s - waited) if ahead else 0.0
            ticket, wait = self.try_acquire(kind, waited, ahead_s)
            if ticket is not None:
                self.on_wait(waited + wait)
                return ticket, time.monotonic() + wait
            if waited > patience_s:
                return None
            # Jitter spreads the waiting processes so they do not all retry at the same instant.
            self.sleep(min(max(wait, 0.002), 0.25) + random.uniform(0, 0.005))

    @contextmanager
    def reserved(
        self, kind: CallKind, *, patience_s: float, lead_s: float = 0.0
    ) -> Iterator[Reservation | None]:
        """A slot for one call, reserved *before* claiming the work to send with it.

        The wait for a turn can last a second; a process killed then used to leave recipients
        claimed (``sending``) but never sent, and so in doubt. Reserved first, they stay
        ``queued`` (fed again later) until the call is moments away. Unspent (nothing left to
        send), the slot is given back. If the limiter is down, :class:`RateLimiterUnavailable`
        is raised here, before anything is claimed: an outage costs time, never a recipient's
        attempt.

        A slot that frees within ``patience_s`` is taken at once, ahead of its time; ``None``
        is yielded if none does: the caller hands its work back rather than hold a worker
        thread on this account (see :mod:`dispatcher.fairshare`). The block is entered
        ``lead_s`` before the slot is the caller's: time to claim, so that the call leaves the
        moment its slot frees.
        """
        found = self._slot_within(kind, patience_s, ahead=True)
        if found is None:
            yield None
            return
        reservation = Reservation(self, *found)
        self.sleep(max(0.0, reservation.start - lead_s - time.monotonic()))
        try:
            yield reservation
        finally:
            if reservation.ticket is not None:
                try:
                    self.storage.release(self.key, reservation.ticket)
                except redis.RedisError as exc:
                    log.warning("rate limiter: unused slot not given back (%s)", exc)

    @contextmanager
    def turn(self, kind: CallKind) -> Iterator[None]:
        """Hold one slot for one provider call."""
        ticket = self.wait_turn(kind)
        try:
            yield
        finally:
            self.complete(ticket)

    __call__ = turn


class Reservation:
    """A slot of one account's budget that is the holder's from ``start`` (``time.monotonic``).

    Its :meth:`gate` is the call gate of the work it was reserved for: the first send through it
    waits for ``start`` and spends the slot; any other call (a token request before the send, a
    second send after a 401) takes a turn of its own.
    """

    def __init__(self, limiter: FleetLimiter, ticket: str, start: float) -> None:
        self.limiter = limiter
        self.ticket: str | None = ticket
        self.start = start

    @contextmanager
    def gate(self, kind: CallKind) -> Iterator[None]:
        """Like :meth:`FleetLimiter.turn`, spending the reserved slot on the first send."""
        if kind != "send" or self.ticket is None:
            with self.limiter.turn(kind):
                yield
            return
        ticket, self.ticket = self.ticket, None
        self.limiter.sleep(max(0.0, self.start - time.monotonic()))
        try:
            yield
        finally:
            self.limiter.complete(ticket)
