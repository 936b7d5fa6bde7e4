"""The fleet's Prometheus metrics, assembled at scrape time (``GET /metrics`` on the web app).

Counters come from the Redis hashes every process adds to (:mod:`dispatcher.meter`), gauges
from the database and the broker at the moment of the scrape::

    dispatcher_provider_calls_total{provider,kind,outcome}  kind: send, poll, token, check
                                     outcome: ok, throttled, refused, error, unavailable, no_answer
    dispatcher_limiter_wait_seconds{provider}               histogram: the wait for a call's turn
    dispatcher_callbacks_total{provider,result}             result: accepted, refused, malformed,
                                                            error (our answer to the webhook call)
    celery_task_<event>_total{name}                         sent, received, started, succeeded,
                                                            failed, retried, revoked
    dispatcher_messages{provider,state}                     gauge, every state of every provider
    dispatcher_in_doubt{provider}                           gauge
    dispatcher_campaigns{state}                             gauge
    dispatcher_queue_length{queue}                          gauge: messages waiting on the broker
                                                            (Redis only: not with BROKER_URL)

The parsing of the Redis hashes is pure (:func:`counter_samples`, :func:`histogram_buckets`);
the collector is a thin shell around it. One source down (Redis or the database) leaves its
families out of the scrape instead of failing it, and says so in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from dispatcher.constants import PROVIDERS, QUEUES
from dispatcher.meter import (
    CALLBACKS,
    LIMITER_WAIT_BUCKETS,
    PROVIDER_CALLS,
    TASK_EVENTS,
    TASKS,
    limiter_wait_key,
)
from dispatcher.models import Campaign, Message
from dispatcher.runtime import Runtime
from dispatcher.states import CampaignState, MessageState

__all__ = ["FleetCollector", "counter_samples", "histogram_buckets", "render_metrics"]

log = logging.getLogger(__name__)

_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)
"""Kombu's Redis transport keeps a queue's prioritised messages in ``<queue>\\x06\\x16<n>``
lists besides ``<queue>`` itself (priority 0)."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def counter_samples(
    raw: Mapping[bytes, bytes] | Mapping[str, str], arity: int
) -> Iterator[tuple[list[str], float]]:
    """``(label values, count)`` from a counter hash; fields of the wrong shape are skipped."""
    for field, value in raw.items():
        labels = _text(field).split("|")
        if len(labels) == arity:
            yield labels, float(_text(value))


def histogram_buckets(
    raw: Mapping[bytes, bytes] | Mapping[str, str],
) -> tuple[list[tuple[str, float]], float]:
    """Cumulative ``(le, count)`` buckets ending with ``+Inf``, and the sum, from the
    per-bucket counts :meth:`dispatcher.meter.Meter.limiter_wait` keeps."""
    counts = {_text(k): float(_text(v)) for k, v in raw.items()}
    buckets: list[tuple[str, float]] = []
    running = 0.0
    for bound in LIMITER_WAIT_BUCKETS:
        running += counts.get(str(bound), 0.0)
        buckets.append((str(bound), running))
    buckets.append(("+Inf", counts.get("count", running + counts.get("+Inf", 0.0))))
    return buckets, counts.get("sum", 0.0)


class FleetCollector(Collector):
    """Reads the whole fleet's figures from Redis and the database on every scrape."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable[Metric]:
        try:
            yield from self._from_redis(self.runtime.redis)
        except redis.RedisError as exc:
            log.warning("metrics: Redis unreachable, counters left out of this scrape (%s)", exc)
        try:
            yield from self._from_database()
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable, gauges left out of this scrape (%s)", exc)

    def _from_redis(self, client: redis.Redis[Any]) -> list[Metric]:
        # Read everything first, so a Redis error yields none of these families, not half.
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(PROVIDER_CALLS)
        pipe.hgetall(CALLBACKS)
        pipe.hgetall(TASKS)
        for provider in PROVIDERS:
            pipe.hgetall(limiter_wait_key(provider))
        for queue in QUEUES:
            pipe.llen(queue)
            for step in _PRIORITY_STEPS:
                pipe.llen(f"{queue}{_PRIORITY_SEPARATOR}{step}")
        calls, callbacks, tasks, *rest = pipe.execute()
        waits, lengths = rest[: len(PROVIDERS)], rest[len(PROVIDERS) :]

        provider_calls = CounterMetricFamily(
            "dispatcher_provider_calls",
            "HTTP requests to providers, by what they were for and how they ended.",
            labels=["provider", "kind", "outcome"],
        )
        for labels, value in counter_samples(calls, 3):
            provider_calls.add_metric(labels, value)
        callback_calls = CounterMetricFamily(
            "dispatcher_callbacks",
            "Webhook calls from providers, by our answer.",
            labels=["provider", "result"],
        )
        for labels, value in counter_samples(callbacks, 2):
            callback_calls.add_metric(labels, value)
        task_families = {
            event: CounterMetricFamily(
                f"celery_task_{event}", f"Celery tasks {event}, by task name.", labels=["name"]
            )
            for event in TASK_EVENTS
        }
        for (event, name), value in counter_samples(tasks, 2):
            if event in task_families:
                task_families[event].add_metric([name], value)
        limiter_wait = HistogramMetricFamily(
            "dispatcher_limiter_wait_seconds",
            "Time a provider call waited for its turn in the fleet-wide budget.",
            labels=["provider"],
        )
        for provider, raw in zip(PROVIDERS, waits, strict=True):
            buckets, total = histogram_buckets(raw)
            limiter_wait.add_metric([provider], buckets, total)
        families = [provider_calls, limiter_wait, callback_calls, *task_families.values()]
        if self.runtime.settings.broker_url:
            return families  # the queues are not in this Redis: RabbitMQ's own metrics count them
        queue_length = GaugeMetricFamily(
            "dispatcher_queue_length", "Task messages waiting on the broker.", labels=["queue"]
        )
        per_queue = 1 + len(_PRIORITY_STEPS)
        for index, queue in enumerate(QUEUES):
            queue_length.add_metric(
                [queue], float(sum(lengths[index * per_queue : (index + 1) * per_queue]))
            )
        return [*families, queue_length]

    def _from_database(self) -> list[Metric]:
        with self.runtime.sessions() as session:
            by_state = session.execute(
                select(Campaign.provider, Message.state, func.count())
                .join(Campaign, Message.campaign_id == Campaign.id)
                .group_by(Campaign.provider, Message.state)
            ).all()
            campaign_rows = session.execute(
                select(Campaign.state, func.count()).group_by(Campaign.state)
            ).all()
        counts = {(provider, state): n for provider, state, n in by_state}
        messages = GaugeMetricFamily(
            "dispatcher_messages", "Messages by provider and state.", labels=["provider", "state"]
        )
        in_doubt = GaugeMetricFamily(
            "dispatcher_in_doubt",
            "Messages whose send may or may not have reached the provider: ops must settle them.",
            labels=["provider"],
        )
        for provider in PROVIDERS:
            for state in MessageState:
                messages.add_metric([provider, state.value], counts.get((provider, state), 0))
            in_doubt.add_metric([provider], counts.get((provider, MessageState.IN_DOUBT), 0))
        by_campaign_state = dict(campaign_rows)
        campaigns = GaugeMetricFamily(
            "dispatcher_campaigns", "Campaigns by state.", labels=["state"]
        )
        for campaign_state in CampaignState:
            campaigns.add_metric([campaign_state.value], by_campaign_state.get(campaign_state, 0))
        return [messages, in_doubt, campaigns]


def render_metrics(runtime: Runtime) -> bytes:
    """The Prometheus text exposition of the whole fleet, read now (this process's webhook
    counts written first, so a provider's call answered before the scrape is in it)."""
    runtime.meter.flush()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(runtime))
    return generate_latest(registry)
