"""Celery tasks: thin shells over :mod:`dispatcher.pipeline`. No business logic here."""

from tasks.campaigns import tick
from tasks.send import send_bytehand_batch, send_timetochat
from tasks.status import poll_due, poll_messages, sweep

__all__ = ["poll_due", "poll_messages", "send_bytehand_batch", "send_timetochat", "sweep", "tick"]
