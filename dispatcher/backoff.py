"""Retry and polling schedules: pure functions of the attempt number and a random source.

Backoff is exponential with full jitter (AWS architecture blog, "Exponential Backoff And
Jitter"): ``uniform(0, min(cap, base * 2**attempt))``. Full jitter spreads a burst of failures
over the whole interval, so a recovering provider is not hit by a synchronized wave of retries.
A provider's own ``retry_after`` is a floor.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import InterfaceError, OperationalError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from dispatcher.config import DispatchSettings
from dispatcher.errors import ProviderUnavailable, RateLimiterUnavailable

__all__ = ["next_poll_at", "poll_deadline", "recording_retry", "retry_delay", "short_retry"]

log = logging.getLogger(__name__)


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


def recording_retry(
    settings: DispatchSettings, *, sleep: Callable[[float], None] = time.sleep
) -> Retrying:
    """In-process retries for writing a provider's answer to the database.

    Once a provider has answered, the answer exists only in this process: a redelivered task
    claims nothing (its rows are no longer ``queued``), so retrying the task would lose it.
    The database being unreachable or busy is retried (a lost connection, a locked SQLite, a
    failover), with jittered waits up to 2 s, for ``record_patience_s`` in all.
    """
    return Retrying(
        retry=retry_if_exception_type((OperationalError, InterfaceError)),
        wait=wait_random_exponential(multiplier=0.05, max=2.0),
        stop=stop_after_delay(settings.record_patience_s),
        sleep=sleep,
        before_sleep=_log_recording_retry,
        reraise=True,
    )


def _log_recording_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning("recording a provider's answer failed (%s); retrying", type(error).__name__)
