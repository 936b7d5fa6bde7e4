"""Fleet-wide counters, kept in Redis by every process and read by one scrape of ``/metrics``.

Workers are separate processes on separate machines, restarted at will; Prometheus would have
to find and scrape each of them, and their in-process counters would die with them. Every
process already shares one Redis, so each event is one ``HINCRBY`` on a hash per metric family
(field = the label values joined by ``|``), and the web app reads the totals at scrape time
(:mod:`dispatcher.metrics`): N processes on M machines add up by construction.

Counting is best effort: a Redis error never fails the call or the task being counted (it is
logged, at most once a minute). The labels are ours (providers, call kinds, outcomes, task
names), never a phone number or a campaign id.

The write side has one seam per family: :class:`MeteredGate` wraps each provider's call gate
(every HTTP request to a provider passes it), :meth:`Meter.limiter_wait` is the limiter's
``on_wait`` hook, the web app's webhook edge counts its answers and ``workers.signals``
counts Celery tasks.

Webhook answers come thousands per second: a Redis round trip each (from a thread, the event
loop must not block) cost a fifth of the web process's CPU. They are added up in memory and
written by :meth:`Meter.flush`, which the web app calls every :data:`FLUSH_EVERY_S` and before
each scrape; a crash loses at most that long of them.
"""

from __future__ import annotations

import bisect
import collections
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import redis

from dispatcher.constants import metrics_key
from dispatcher.errors import ProviderUnavailable, SendInDoubt
from dispatcher.providers.base import NEVER_LEFT, CallGate, CallKind

__all__ = [
    "CALLBACKS",
    "LIMITER_WAIT_BUCKETS",
    "PROVIDER_CALLS",
    "TASKS",
    "TASK_EVENTS",
    "CallOutcome",
    "Meter",
    "MeteredGate",
    "call_outcome",
    "label_field",
    "limiter_wait_key",
]

log = logging.getLogger(__name__)

PROVIDER_CALLS: Final = metrics_key("provider_calls")
"""Fields ``provider|kind|outcome``."""
CALLBACKS: Final = metrics_key("callbacks")
"""Fields ``provider|result``."""
TASKS: Final = metrics_key("celery_tasks")
"""Fields ``event|task name``."""

TASK_EVENTS: Final = ("sent", "received", "started", "succeeded", "failed", "retried", "revoked")
"""Celery's usual task counters, each exposed as ``celery_task_<event>_total{name}``."""

LIMITER_WAIT_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Upper bounds (seconds) of the limiter wait histogram; a wait above the last is ``+Inf``."""

_KIND_LABELS: Final[dict[str, str]] = {"account": "check"}
"""Call kinds whose label differs from their name: account calls check balance and senders."""

_WARN_EVERY_S = 60.0

FLUSH_EVERY_S: Final = 0.5
"""How often the web app writes the webhook answers it counted in memory."""


def limiter_wait_key(provider: str) -> str:
    """The hash of one provider's limiter wait histogram: bucket counts, ``sum``, ``count``."""
    return metrics_key(f"limiter_wait:{provider}")


def label_field(*values: str) -> str:
    """A hash field from label values (ours: none contains ``|``)."""
    return "|".join(values)


def call_outcome(status_code: int) -> str:
    """The outcome label of a provider call that got an HTTP answer."""
    if 200 <= status_code < 300:
        return "ok"
    if status_code == 429:
        return "throttled"
    if status_code >= 500:
        return "error"
    return "refused"


class Meter:
    """Increments the fleet's counters in Redis; never raises."""

    def __init__(self, client: redis.Redis[Any]) -> None:
        self.client = client
        self._warned_at = -_WARN_EVERY_S
        self._pending: collections.Counter[str] = collections.Counter()
        self._pending_lock = threading.Lock()

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning("metrics: counter not recorded in Redis (%s)", exc)

    def _increment(self, key: str, field: str) -> None:
        try:
            self.client.hincrby(key, field, 1)
        except redis.RedisError as exc:
            self._failed(exc)

    def provider_call(self, provider: str, kind: CallKind, outcome: str) -> None:
        """One HTTP request to a provider, by what it was for and how it ended."""
        label = _KIND_LABELS.get(kind, kind)
        self._increment(PROVIDER_CALLS, label_field(provider, label, outcome))

    def callback(self, provider: str, result: str) -> None:
        """One webhook call from a provider, by our answer: counted in memory until
        :meth:`flush` (no I/O: the event loop calls it)."""
        with self._pending_lock:
            self._pending[label_field(provider, result)] += 1

    def flush(self) -> None:
        """Write the webhook answers counted since the last flush (kept for the next one if
        Redis refuses them)."""
        with self._pending_lock:
            pending, self._pending = self._pending, collections.Counter()
        if not pending:
            return
        try:
            pipe = self.client.pipeline(transaction=True)  # all or none: safe to keep on error
            for field, count in pending.items():
                pipe.hincrby(CALLBACKS, field, count)
            pipe.execute()
        except redis.RedisError as exc:
            with self._pending_lock:
                self._pending.update(pending)
            self._failed(exc)

    def task(self, event: str, name: str) -> None:
        """One Celery task event (``TASK_EVENTS``) of the task ``name``."""
        self._increment(TASKS, label_field(event, name))

    def limiter_wait(self, provider: str, seconds: float) -> None:
        """How long a call waited for its turn in the provider's budget."""
        index = bisect.bisect_left(LIMITER_WAIT_BUCKETS, seconds)
        bucket = str(LIMITER_WAIT_BUCKETS[index]) if index < len(LIMITER_WAIT_BUCKETS) else "+Inf"
        key = limiter_wait_key(provider)
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hincrby(key, bucket, 1)
            pipe.hincrby(key, "count", 1)
            pipe.hincrbyfloat(key, "sum", seconds)
            pipe.execute()
        except redis.RedisError as exc:
            self._failed(exc)


class CallOutcome:
    """Handed by the metered gate to the request inside it, which reports the HTTP status."""

    def __init__(self) -> None:
        self.outcome = "error"  # neither an answer nor a transport error: a bug on our side

    def answered(self, status_code: int) -> None:
        self.outcome = call_outcome(status_code)


class MeteredGate:
    """One provider's call gate (its limiter), counting every call it lets through.

    A call the limiter refuses to grant was never made and is not counted. A transport error
    is ``unavailable`` when the request never left, ``no_answer`` when it may have arrived.
    """

    def __init__(self, gate: CallGate, meter: Meter, provider: str) -> None:
        self.gate = gate
        self.meter = meter
        self.provider = provider

    @contextmanager
    def __call__(self, kind: CallKind) -> Iterator[CallOutcome]:
        call = CallOutcome()
        granted = False
        try:
            with self.gate(kind):
                granted = True
                try:
                    yield call
                except SendInDoubt:
                    call.outcome = "no_answer"
                    raise
                except ProviderUnavailable as exc:
                    left = not isinstance(exc.__cause__, NEVER_LEFT)
                    call.outcome = "no_answer" if left else "unavailable"
                    raise
        finally:
            if granted:  # counted once the slot is given back: Redis time is not the call's
                self.meter.provider_call(self.provider, kind, call.outcome)
