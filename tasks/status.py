"""Polling and sweeping tasks."""

from __future__ import annotations

from dispatcher import pipeline, runtime
from dispatcher.constants import POLL_S, PROVIDERS, QUEUE_STATUS
from tasks.retry import RETRY_ON_INFRASTRUCTURE
from workers.app import app

POLL_CHUNK = 5
"""Polls per task: small, so a poll task never holds a worker for long."""


@app.task(name="dispatcher.poll_due", **RETRY_ON_INFRASTRUCTURE)
def poll_due() -> int:
    """Lease messages silent past ``next_poll_at`` and enqueue their polls."""
    current = runtime.current()
    # No more than half a tick's budget per provider: polls wait for sends' spare slots.
    per_tick = int(current.settings.dispatch.calls_per_second * POLL_S / 2)
    leased = 0
    for provider in PROVIDERS:
        ids = pipeline.claim_polls(current, provider, limit=per_tick)
        for start in range(0, len(ids), POLL_CHUNK):
            poll_messages.apply_async(
                (provider, ids[start : start + POLL_CHUNK]), queue=QUEUE_STATUS
            )
        leased += len(ids)
    return leased


@app.task(name="dispatcher.poll_messages", **RETRY_ON_INFRASTRUCTURE)
def poll_messages(provider: str, message_ids: list[int]) -> int:
    """Poll a few messages of one provider through the shared limiter."""
    return pipeline.poll(runtime.current(), provider, message_ids)


@app.task(name="dispatcher.sweep", **RETRY_ON_INFRASTRUCTURE)
def sweep() -> tuple[int, int]:
    """Stuck sends become in doubt; queued work whose broker message was lost is released."""
    return pipeline.sweep(runtime.current())
