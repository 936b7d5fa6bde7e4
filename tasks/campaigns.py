"""The beat tick that starts due campaigns and feeds running ones, and the operator actions
ops run from Flower (a task's *apply*, or ``POST /api/task/async-apply/dispatcher.retry_failed``
with ``{"args": [campaign_id]}``), the same as ``dispatcher campaign ...`` and the JSON API."""

from __future__ import annotations

import functools

from celery import Task

from dispatcher import campaigns, pipeline, prestart, runtime
from tasks.retry import RETRY_ON_INFRASTRUCTURE
from tasks.send import enqueue
from workers.app import app


@app.task(name="dispatcher.tick", bind=True, **RETRY_ON_INFRASTRUCTURE)
def tick(self: Task) -> dict[int, int]:
    """Start due campaigns, top up each running campaign's window, finish finished ones.

    A tick redelivered by the broker (RabbitMQ returns a dead worker's messages at once) may
    have died between claiming a window and enqueueing it: it first enqueues what is queued.
    """
    if (self.request.delivery_info or {}).get("redelivered"):
        pipeline.refeed_queued(runtime.current(), enqueue)
    return pipeline.feed(runtime.current(), enqueue)


@app.task(name="dispatcher.retry_failed", **RETRY_ON_INFRASTRUCTURE)
def retry_failed(campaign_id: int) -> int:
    """Re-queue the campaign's recipients that failed for transient reasons."""
    return pipeline.operate(runtime.current(), campaigns.retry_failed, campaign_id)


@app.task(name="dispatcher.pause", **RETRY_ON_INFRASTRUCTURE)
def pause(campaign_id: int) -> None:
    """Stop feeding the campaign."""
    pipeline.operate(runtime.current(), campaigns.pause, campaign_id)


@app.task(name="dispatcher.resume", **RETRY_ON_INFRASTRUCTURE)
def resume(campaign_id: int) -> None:
    """Feed the paused campaign again, after the pre-start checks (as the CLI and the API)."""
    current = runtime.current()
    pipeline.operate(current, functools.partial(prestart.resume_checked, current), campaign_id)
