"""The fleet-wide limiter: N provider calls per second per account, shared by every process.

Strategy: ``limits``' moving window (exact: never more than N entries in any window, unlike the
fixed window that lets 2N through around a boundary), on Redis, with two changes made in a
storage subclass:

* **One clock.** ``limits`` stamps entries with each caller's ``time.time()``, so hosts whose
  clocks differ by 100 ms would each see a different window. Our script stamps entries with the
  Redis server's ``TIME`` instead: every worker on every machine is judged by the same clock, and
  host clock skew does not matter at all.
* **A guard band.** A call granted at ``t`` reaches the provider a few milliseconds later, and not
  always the same few. The window is therefore ``1 s + guard`` (default 40 ms): any two grants
  ``N`` apart are at least that far apart, so jitter below the guard cannot put ``N + 1`` calls in
  one second *as the provider counts them*. At 20/s the guard costs 4% of the budget.

Priorities share one list: sends (and token requests, which sends need) may fill the whole
window; polls and account calls only take a slot while ``reserve`` slots stay free, so a campaign
in full flow is not slowed by polling, and a poll that has waited ``promote_after`` competes as a
send, so polls always progress. A Redis error grants nothing (fail closed).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import redis
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage

from dispatcher.errors import RateLimiterUnavailable
from dispatcher.providers.base import CallKind

__all__ = ["FleetLimiter", "ServerClockRedisStorage"]

_ACQUIRE = """
local limit = tonumber(ARGV[1])
local window_us = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local entry = redis.call('LINDEX', KEYS[1], limit - 1)
if entry and tonumber(entry) > now - window_us then
    return {0, tonumber(entry) + window_us - now}
end
redis.call('LPUSH', KEYS[1], t[1] .. string.format('%06d', tonumber(t[2])))
redis.call('LTRIM', KEYS[1], 0, capacity - 1)
redis.call('PEXPIRE', KEYS[1], math.ceil(window_us / 1000) + 1000)
return {1, 0}
"""


class ServerClockRedisStorage(RedisStorage):
    """``limits``' Redis storage whose moving window is stamped by the Redis server clock."""

    def __init__(self, uri: str, *, guard_s: float, capacity: int, **options: Any) -> None:
        super().__init__(uri, key_prefix="dispatcher:limit", **options)
        self.guard_s = guard_s
        self.capacity = capacity
        self._acquire_script = self.get_connection().register_script(_ACQUIRE.encode())

    def acquire_with_wait(self, key: str, limit: int, expiry: float) -> tuple[bool, float]:
        """Take one slot if fewer than ``limit`` were taken in the window; else say how long
        until the oldest counted entry leaves it."""
        window_us = int((expiry + self.guard_s) * 1_000_000)
        granted, wait_us = self._acquire_script(
            keys=[self.prefixed_key(key)], args=[limit, window_us, self.capacity]
        )
        return bool(granted), int(wait_us) / 1_000_000

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount != 1:
            raise ValueError("the fleet limiter grants one call at a time")
        return self.acquire_with_wait(key, limit, expiry)[0]


class FleetLimiter:
    """Waits for a turn in one provider account's budget; used as the clients' call gate."""

    def __init__(
        self,
        redis_url: str,
        key: str,
        *,
        calls_per_second: int,
        guard_s: float = 0.04,
        reserve: int = 4,
        promote_after_s: float = 5.0,
        max_wait_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.key = key
        self.storage = ServerClockRedisStorage(
            redis_url, guard_s=guard_s, capacity=calls_per_second
        )
        self.full = RateLimitItemPerSecond(calls_per_second)
        self.background = RateLimitItemPerSecond(max(1, calls_per_second - reserve))
        self.promote_after_s = promote_after_s
        self.max_wait_s = max_wait_s
        self.sleep = sleep

    def try_acquire(self, kind: CallKind, waited_s: float = 0.0) -> tuple[bool, float]:
        """One attempt: ``(granted, seconds until a slot may free)``. Never waits."""
        urgent = kind in ("send", "token") or waited_s >= self.promote_after_s
        item = self.full if urgent else self.background
        try:
            return self.storage.acquire_with_wait(self.key, item.amount, item.get_expiry())
        except redis.RedisError as exc:
            raise RateLimiterUnavailable(f"rate limiter unreachable: {exc}") from exc

    def wait_turn(self, kind: CallKind) -> None:
        """Block until this process may make one call of ``kind``."""
        started = time.monotonic()
        while True:
            waited = time.monotonic() - started
            granted, wait = self.try_acquire(kind, waited)
            if granted:
                return
            if waited > self.max_wait_s:
                raise RateLimiterUnavailable(f"no call slot for {self.key} in {waited:.0f} s")
            # Jitter spreads the waiting processes so they do not all retry at the same instant.
            self.sleep(min(max(wait, 0.002), 0.25) + random.uniform(0, 0.01))

    __call__ = wait_turn
