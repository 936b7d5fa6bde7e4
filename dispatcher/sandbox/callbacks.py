"""Callbacks (ByteHand handler GETs, TimeToChat Push_CRA POSTs) sent from a background thread.

A receiver must answer 200 within the policy's timeout; anything else is retried with
exponential backoff until the deadline, counted from the first attempt. The fault switch may
delay, reorder (random extra delay) and duplicate callbacks, as the real providers may.

Delivery runs on one thread's event loop: ``policy.workers`` coroutines, each with its own
keep-alive connections (:mod:`dispatcher.sandbox.http1`) and one request in flight, take
attempts from a queue the scheduler's thread fills. A provider calls back over a handful of
connections; a thread pool of httpx clients cost ten times the CPU per callback and, sharing
the GIL with the simulated API, capped the simulator below what our web app absorbs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from dispatcher.sandbox.config import CallbackPolicy
from dispatcher.sandbox.faults import FaultSwitch
from dispatcher.sandbox.http1 import Client, ExchangeFailed
from dispatcher.sandbox.scheduler import Scheduler

__all__ = ["Callback", "CallbackSender", "retry_delay"]

log = logging.getLogger(__name__)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop where it is installed (not on Windows): less CPU per callback."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


@dataclasses.dataclass(frozen=True)
class Callback:
    """One notification: a GET with query ``params`` or a POST of ``json_body``."""

    url: str
    method: Literal["GET", "POST"]
    params: tuple[tuple[str, str], ...] = ()
    json_body: Any = None


@dataclasses.dataclass(frozen=True)
class _Attempt:
    callback: Callback
    generation: int
    first_at: float
    attempt: int  # 0 for the first


def retry_delay(attempt: int, policy: CallbackPolicy) -> float:
    """Seconds before retry number ``attempt`` (1 for the first retry)."""
    return float(min(policy.retry_max_s, policy.retry_base_s * 2 ** (attempt - 1)))


class CallbackSender:
    """Delivers callbacks over ``policy.workers`` connections, timed by the simulator's
    scheduler."""

    def __init__(self, policy: CallbackPolicy, faults: FaultSwitch, scheduler: Scheduler) -> None:
        self._policy = policy
        self._faults = faults
        self._scheduler = scheduler
        self._lock = threading.Lock()
        self._counts = {"queued": 0, "attempts": 0, "delivered": 0, "given_up": 0}
        self._generation = 0  # bumped by reset: retries of older callbacks are dropped
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._queue: asyncio.Queue[_Attempt | None] = asyncio.Queue()  # None: a worker stops

    def start(self) -> None:
        """Start the delivery thread and its workers."""
        loop = _loop_factory()()
        self._queue = asyncio.Queue()  # bound to the loop at first use, on the loop's thread
        self._thread = threading.Thread(
            target=self._run, args=(loop,), name="sandbox-callbacks", daemon=True
        )
        self._loop = loop
        self._thread.start()

    def stop(self) -> None:
        """Finish attempts in flight (each bounded by the timeout), drop the rest."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(self._drain)
        thread.join()

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
        """Hand an attempt to the workers (called on the scheduler's thread)."""
        loop = self._loop
        if loop is None or generation != self._generation:
            return
        first = time.monotonic() if first_at is None else first_at
        job = _Attempt(callback, generation, first, attempt)
        try:
            loop.call_soon_threadsafe(self._queue.put_nowait, job)
        except RuntimeError:  # the loop closed meanwhile: dropped with the simulator
            return

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        await asyncio.gather(*(self._work() for _ in range(self._policy.workers)))

    def _drain(self) -> None:
        """Drop the attempts not started, then stop each worker after its current one."""
        while not self._queue.empty():
            self._queue.get_nowait()
        for _ in range(self._policy.workers):
            self._queue.put_nowait(None)

    async def _work(self) -> None:
        client = Client(self._policy.timeout_s)
        try:
            while (job := await self._queue.get()) is not None:
                if job.generation == self._generation:
                    await self._attempt(client, job)
        finally:
            await client.aclose()

    async def _attempt(self, client: Client, job: _Attempt) -> None:
        callback = job.callback
        self._bump("attempts")
        try:
            status = await client.request(
                callback.method,
                callback.url,
                callback.params,
                callback.json_body if callback.method == "POST" else None,
            )
        except ExchangeFailed as exc:
            log.debug("callback to %s failed: %s", callback.url, exc)
            status = None
        except Exception:  # a callback we cannot encode: retrying would fail the same way
            log.exception("callback to %s cannot be sent", callback.url)
            return
        if status == 200:
            self._bump("delivered")
            return
        delay = retry_delay(job.attempt + 1, self._policy)
        if time.monotonic() + delay - job.first_at > self._policy.deadline_s:
            self._bump("given_up")
            log.info("callback to %s given up after %d attempts", callback.url, job.attempt + 1)
            return
        self._scheduler.call_later(
            delay,
            functools.partial(
                self._submit, callback, job.generation, job.first_at, job.attempt + 1
            ),
        )
