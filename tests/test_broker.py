"""The broker: Redis by default, RabbitMQ with quorum queues when ``BROKER_URL`` names it."""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlsplit

import amqp
import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.message import Message

from dispatcher.constants import QUEUE_SEND_TIMETOCHAT
from dispatcher.embedded import EmbeddedRedis
from tests.rabbitmq import rabbitmq_vhost
from workers import broker
from workers.app import QUEUES, broker_conf


def test_redis_queues_are_read_by_priority() -> None:
    """On Redis the queues are plain lists, read in the order a worker lists them."""
    conf = broker_conf("redis://127.0.0.1:6379/0")
    assert conf["broker_transport_options"]["queue_order_strategy"] == "priority"
    assert all(not queue.queue_arguments for queue in conf["task_queues"])


def test_amqp_queues_are_quorum_queues() -> None:
    """On RabbitMQ every queue is a quorum queue, consumed without global QoS."""
    conf = broker_conf("amqp://guest:guest@127.0.0.1:5672/x")
    assert [queue.name for queue in conf["task_queues"]] == list(QUEUES)
    assert all(q.queue_arguments == {"x-queue-type": "quorum"} for q in conf["task_queues"])
    assert conf["worker_detect_quorum_queues"] is True


def test_rabbitmq_declares_quorum_queues() -> None:
    """The real broker takes the declarations, and holds the queue as a quorum queue (a
    classic declaration of the same name is refused as inequivalent)."""
    with rabbitmq_vhost() as url, Connection(url) as connection:
        channel = connection.channel()
        for queue in broker_conf(url)["task_queues"]:
            queue(channel).declare()
        with pytest.raises(amqp.exceptions.PreconditionFailed, match="x-queue-type"):
            connection.channel().queue_declare(
                QUEUE_SEND_TIMETOCHAT, durable=True, auto_delete=False
            )


def test_redis_urls_name_our_transport_under_their_own_scheme() -> None:
    """Once the app is created, ``redis://`` and ``rediss://`` mean :mod:`workers.broker`'s
    transport, and the URL reads as before (logs, Flower's choice of client by scheme)."""
    for url in ("redis://:secret@127.0.0.1:6379/5", "rediss://:secret@127.0.0.1:6380/2"):
        connection = Connection(url)
        assert connection.transport_cls == urlsplit(url).scheme
        assert connection.get_transport_cls() is broker.Transport
        assert connection.as_uri(include_password=True) == url
    assert Connection("rediss://127.0.0.1:6380/0").ssl  # kombu's TLS defaults for rediss://


@pytest.mark.processes
@pytest.mark.parametrize(
    ("transport", "survives"),
    [("workers.broker:Transport", True), ("kombu.transport.redis:Transport", False)],
)
def test_worker_connection_closes_after_redis_went_away(
    tmp_path: Path, transport: str, survives: bool
) -> None:
    """Celery 5.7's handling of a lost connection, without Celery: ``collect()`` then
    ``close()``, with Redis gone, a task running (delivered, not acknowledged), the task
    channel waiting on BRPOP and a control channel (the worker's pidbox) listening. kombu's
    own transport raises ``AttributeError``, which Celery takes for an unrecoverable error (the
    worker exits: the stalled Redis restarts of docs/reliability.md); ours closes, and Celery
    reconnects. The second case fails once kombu no longer needs the repair."""
    running: list[Message] = []
    with EmbeddedRedis(tmp_path / "redis") as server:
        connection = Connection(server.url, transport=transport)
        tasks = connection.default_channel
        queue = Queue("q", Exchange("q"), "q", channel=tasks)
        queue.declare()
        Producer(tasks).publish({"task": 1}, exchange="q", routing_key="q")
        Consumer(tasks, [queue], callbacks=[lambda _, message: running.append(message)]).consume()
        control = Queue("ctl", Exchange("ctl", type="fanout"), auto_delete=True)
        Consumer(connection.channel(), [control], no_ack=True).consume()
        # The task arrives (not acknowledged: running), then BRPOP waits for the next one and
        # the control channel listens, until the loop has nothing more to read.
        with contextlib.suppress(TimeoutError):
            for _ in range(10):
                connection.drain_events(timeout=0.3)
        assert len(running) == 1
    connection.collect(socket_timeout=5)
    if survives:
        connection.close()
    else:
        with pytest.raises(AttributeError, match="hostname"):
            connection.close()
