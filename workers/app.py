"""The Celery application: broker, queues, routing, reliability settings and beat schedule.

Reliability choices, each against a known failure of Celery on Redis:

* ``acks_late`` + ``task_reject_on_worker_lost``: a task whose worker dies is redelivered, and
  the database claims make the redelivery harmless (it finds its rows no longer ``queued``).
  Workers run a pool of threads (sends wait on the network, see ``dispatcher.fleet``), so a
  crash takes the whole process: its unacknowledged messages come back after the visibility
  timeout, and long before that the sweeper releases their ``queued`` rows to be fed again.
* ``worker_prefetch_multiplier = 1``: a worker holds one send per thread, so a killed worker
  strands a few batches, not dozens, and the fleet shares work evenly.
* ``visibility_timeout`` of an hour, longer than any task: a slow task is not redelivered to a
  second worker while the first still runs it. A killed worker's tasks are not waited for:
  the sweeper releases rows ``queued`` longer than ``queued_timeout_s`` (15 s) to be fed again,
  safe because a row leaves ``queued`` by one conditional UPDATE (docs/architecture.md).
* Queues read by priority on Redis: ``default`` (the 1 s tick), ``send.timetochat``,
  ``status`` (polls), then ``send.bytehand``. Each queue but the last holds at most a tick of
  bounded work (the feeder queues one tick of each account's budget, polls are bounded per
  tick), so it empties every tick and the last always gets the threads left; put first, a
  ByteHand backlog the fleet could not empty kept every thread, and a TimeToChat campaign
  beside it made 0.6 sends/s (see :mod:`dispatcher.fairshare`).
* ``BROKER_URL=amqp://...`` (RabbitMQ): quorum queues (replicated, durable, redelivered the
  moment a consumer's connection drops, so a killed worker's tasks return at once), no global
  QoS (quorum queues refuse it: ``worker_detect_quorum_queues``). AMQP has no queue order: a
  worker consumes its queues round-robin. Results and everything else stay on Redis.
* Redis transport of our own (:mod:`workers.broker`): kombu's, except that a worker whose
  connection to Redis drops while it runs tasks reconnects; with kombu's own, Celery 5.7 met an
  ``AttributeError`` while closing the broken connection and the worker exited, so a Redis
  restart could leave no worker at all.
* No ETA or countdown tasks for scheduling: start times, backoffs and polls live in the database
  (``start_at``, ``not_before``, ``next_poll_at``) and the beat ticks below move what is due.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from kombu.entity import Queue

from dispatcher.config import AMQP_SCHEMES, load_settings
from dispatcher.constants import (
    POLL_S,
    QUEUE_DEFAULT,
    QUEUE_SEND_BYTEHAND,
    QUEUE_SEND_TIMETOCHAT,
    QUEUE_STATUS,
    SWEEP_S,
    TICK_S,
)
from dispatcher.runtime import redis_url_for
from workers import broker as broker_transport

__all__ = ["app", "broker_conf", "create_app"]

QUEUES = (QUEUE_SEND_BYTEHAND, QUEUE_SEND_TIMETOCHAT, QUEUE_STATUS, QUEUE_DEFAULT)
QUORUM = {"x-queue-type": "quorum"}


def broker_conf(broker_url: str) -> dict[str, Any]:
    """The settings that depend on the broker: queue types and transport options."""
    if urlsplit(broker_url).scheme in AMQP_SCHEMES:
        return {
            "task_queues": [Queue(name, queue_arguments=QUORUM) for name in QUEUES],
            "worker_detect_quorum_queues": True,
            "broker_transport_options": {},
        }
    return {
        "task_queues": [Queue(name) for name in QUEUES],
        # Queues are read in the order a worker lists them (constants.QUEUES, the Procfile):
        # the quick beat work first, then the queues bounded per tick, the ByteHand batches
        # last, so no backlog holds back the tick, another account or the polls.
        "broker_transport_options": {
            "visibility_timeout": 3600,
            "queue_order_strategy": "priority",
        },
    }


def create_app() -> Celery:
    """The app for this process's settings: ``BROKER_URL``, else ``REDIS_URL`` or the
    embedded Redis, which also keeps the results."""
    broker_transport.install()
    settings = load_settings()
    url = redis_url_for(settings)
    broker = settings.broker_url or url
    celery = Celery("dispatcher", broker=broker, backend=url, include=["tasks"])
    celery.conf.update(
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        task_ignore_result=True,
        result_expires=3600,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        result_backend_transport_options={"visibility_timeout": 3600},
        task_default_queue=QUEUE_DEFAULT,
        task_routes={
            "dispatcher.send_bytehand_batch": {"queue": QUEUE_SEND_BYTEHAND},
            "dispatcher.send_timetochat": {"queue": QUEUE_SEND_TIMETOCHAT},
            "dispatcher.poll_messages": {"queue": QUEUE_STATUS},
        },
        beat_schedule={
            "tick": {"task": "dispatcher.tick", "schedule": TICK_S, "options": {"expires": 5}},
            "poll-due": {
                "task": "dispatcher.poll_due",
                "schedule": POLL_S,
                "options": {"expires": 10},
            },
            "sweep": {"task": "dispatcher.sweep", "schedule": SWEEP_S, "options": {"expires": 30}},
        },
        **broker_conf(broker),
    )
    return celery


app = create_app()
