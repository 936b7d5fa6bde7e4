"""Send tasks. Arguments are ids only: nothing secret, readable in Flower."""

from __future__ import annotations

from dispatcher import pipeline, runtime
from dispatcher.constants import BYTEHAND, QUEUE_SEND_BYTEHAND, QUEUE_SEND_TIMETOCHAT, TIMETOCHAT
from tasks.retry import RETRY_ON_INFRASTRUCTURE
from workers.app import app


@app.task(name="dispatcher.send_bytehand_batch", **RETRY_ON_INFRASTRUCTURE)
def send_bytehand_batch(campaign_id: int, message_ids: list[int]) -> int:
    """One ByteHand ``send_multi`` call for up to ``batch_size`` recipients."""
    return pipeline.send_bytehand_batch(runtime.current(), campaign_id, message_ids)


@app.task(name="dispatcher.send_timetochat", **RETRY_ON_INFRASTRUCTURE)
def send_timetochat(campaign_id: int, message_id: int) -> int:
    """One TimeToChat message."""
    return pipeline.send_timetochat(runtime.current(), campaign_id, message_id)


def enqueue(provider: str, campaign_id: int, batches: list[list[int]]) -> None:
    """Hand claimed work to the broker: one task per batch (ByteHand) or recipient.

    Under the SMPP transport TimeToChat's queued rows are the SMPP gateway's work: it reads them
    from the database, so nothing goes on the broker.
    """
    if provider == TIMETOCHAT and runtime.current().settings.timetochat.transport == "smpp":
        return
    for batch in batches:
        if provider == BYTEHAND:
            send_bytehand_batch.apply_async((campaign_id, batch), queue=QUEUE_SEND_BYTEHAND)
        else:
            for message_id in batch:
                send_timetochat.apply_async((campaign_id, message_id), queue=QUEUE_SEND_TIMETOCHAT)
