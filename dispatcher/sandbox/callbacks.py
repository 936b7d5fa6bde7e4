"""Callbacks (ByteHand handler GETs, TimeToChat Push_CRA POSTs) sent from background threads.

A receiver must answer 200 within the policy's timeout; anything else is retried with
exponential backoff until the deadline, counted from the first attempt. The fault switch may
delay, reorder (random extra delay) and duplicate callbacks, as the real providers may.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import httpx

from dispatcher.sandbox.config import CallbackPolicy
from dispatcher.sandbox.faults import FaultSwitch
from dispatcher.sandbox.scheduler import Scheduler

__all__ = ["Callback", "CallbackSender", "retry_delay"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Callback:
    """One notification: a GET with query ``params`` or a POST of ``json_body``."""

    url: str
    method: Literal["GET", "POST"]
    params: tuple[tuple[str, str], ...] = ()
    json_body: Any = None


def retry_delay(attempt: int, policy: CallbackPolicy) -> float:
    """Seconds before retry number ``attempt`` (1 for the first retry)."""
    return float(min(policy.retry_max_s, policy.retry_base_s * 2 ** (attempt - 1)))


class CallbackSender:
    """Delivers callbacks on a small thread pool, timed by the simulator's scheduler."""

    def __init__(self, policy: CallbackPolicy, faults: FaultSwitch, scheduler: Scheduler) -> None:
        self._policy = policy
        self._faults = faults
        self._scheduler = scheduler
        self._lock = threading.Lock()
        self._counts = {"queued": 0, "attempts": 0, "delivered": 0, "given_up": 0}
        self._generation = 0  # bumped by reset: retries of older callbacks are dropped
        self._executor: ThreadPoolExecutor | None = None
        self._client: httpx.Client | None = None

    def start(self) -> None:
        """Open the HTTP client and the worker pool."""
        self._client = httpx.Client(timeout=self._policy.timeout_s)
        self._executor = ThreadPoolExecutor(self._policy.workers, "sandbox-callback")

    def stop(self) -> None:
        """Finish attempts in flight (each bounded by the timeout), drop the rest."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        if self._client is not None:
            self._client.close()
        self._executor = self._client = None

    def send(self, callback: Callback) -> None:
        """Queue ``callback`` (twice, if the duplicate fault strikes)."""
        faults = self._faults.current
        copies = 2 if self._faults.roll(faults.callback_duplicate_rate) else 1
        for _ in range(copies):
            delay = faults.callback_delay_s + self._faults.uniform(faults.callback_reorder_s)
            self._bump("queued")
            self._scheduler.call_later(
                delay, functools.partial(self._submit, callback, self._generation, None, 0)
            )

    def counts(self) -> dict[str, int]:
        """queued, attempts, delivered, given_up."""
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        """Zero the counters and drop retries of earlier callbacks (pending first attempts are
        dropped with the scheduler's calls)."""
        with self._lock:
            self._counts = dict.fromkeys(self._counts, 0)
            self._generation += 1

    def _bump(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _submit(
        self, callback: Callback, generation: int, first_at: float | None, attempt: int
    ) -> None:
        executor = self._executor
        if executor is None or generation != self._generation:
            return
        first = time.monotonic() if first_at is None else first_at
        try:
            executor.submit(self._attempt, callback, generation, first, attempt)
        except RuntimeError:  # shutting down: the callback is dropped with the simulator
            return

    def _attempt(self, callback: Callback, generation: int, first_at: float, attempt: int) -> None:
        client = self._client
        if client is None or generation != self._generation:
            return
        self._bump("attempts")
        try:
            response = client.request(
                callback.method,
                callback.url,
                params=callback.params or None,
                json=callback.json_body if callback.method == "POST" else None,
            )
            ok = response.status_code == 200
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: client closed meanwhile
            log.debug("callback to %s failed: %s", callback.url, exc)
            ok = False
        if ok:
            self._bump("delivered")
            return
        delay = retry_delay(attempt + 1, self._policy)
        if time.monotonic() + delay - first_at > self._policy.deadline_s:
            self._bump("given_up")
            log.info("callback to %s given up after %d attempts", callback.url, attempt + 1)
            return
        self._scheduler.call_later(
            delay, functools.partial(self._submit, callback, generation, first_at, attempt + 1)
        )
