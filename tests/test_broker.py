"""The broker: Redis by default, RabbitMQ with quorum queues when ``BROKER_URL`` names it."""

from __future__ import annotations

import amqp
import pytest
from kombu import Connection

from dispatcher.constants import QUEUE_SEND_TIMETOCHAT
from tests.rabbitmq import rabbitmq_vhost
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
