"""The beat tick that starts due campaigns and feeds running ones."""

from __future__ import annotations

from celery import shared_task

from dispatcher import pipeline, runtime
from tasks.retry import RETRY_ON_INFRASTRUCTURE
from tasks.send import enqueue


@shared_task(name="dispatcher.tick", **RETRY_ON_INFRASTRUCTURE)
def tick() -> dict[int, int]:
    """Start due campaigns, top up each running campaign's window, finish finished ones."""
    return pipeline.feed(runtime.current(), enqueue)
