"""Retry and polling schedules: pure functions of the attempt number and a random source.

Backoff is exponential with full jitter (AWS architecture blog, "Exponential Backoff And
Jitter"): ``uniform(0, min(cap, base * 2**attempt))``. Full jitter spreads a burst of failures
over the whole interval, so a recovering provider is not hit by a synchronized wave of retries.
A provider's own ``retry_after`` is a floor.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_random_exponential

from dispatcher.config import DispatchSettings
from dispatcher.errors import ProviderUnavailable, RateLimiterUnavailable

__all__ = ["next_poll_at", "poll_deadline", "retry_delay", "short_retry"]


def retry_delay(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    retry_after: float | None = None,
    rand: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
    ceiling = min(cap_s, base_s * 2 ** max(attempt - 1, 0))
    delay = (rand or random).uniform(0, ceiling)
    return max(delay, retry_after or 0.0)


def next_poll_at(now: datetime, polls: int, *, first: timedelta, ceiling: timedelta) -> datetime:
    """When to poll a silent message again: ``first``, then doubling, up to ``ceiling``."""
    gap: timedelta = min(first * 2**polls, ceiling)
    return now + gap


def poll_deadline(
    submitted_at: datetime, validity: datetime | None, *, default: timedelta
) -> datetime:
    """Past this, silence is final: the message's validity, or ``default`` after submission."""
    fallback = submitted_at + default
    return min(validity, fallback) if validity is not None else fallback


def short_retry(
    settings: DispatchSettings, *, sleep: Callable[[float], None] = time.sleep
) -> Retrying:
    """In-task retries for short transient failures, for calls that never reached the provider.

    Waits are jittered and the whole retry stops after ``short_wait_s``: a longer outage is
    handled by putting the recipient back to ``pending`` with a backoff instead of holding a
    worker. ``SendInDoubt`` is deliberately not retried.
    """
    return Retrying(
        retry=retry_if_exception_type((ProviderUnavailable, RateLimiterUnavailable)),
        wait=wait_random_exponential(multiplier=0.1, max=max(settings.short_wait_s / 2, 0.1)),
        stop=stop_after_delay(settings.short_wait_s),
        sleep=sleep,
        reraise=True,
    )
