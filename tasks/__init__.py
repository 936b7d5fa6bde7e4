"""Celery tasks: thin shells over :mod:`dispatcher.pipeline`. No business logic here.

Every task is declared on :data:`workers.app.app` (``@app.task``), never ``shared_task``: a
module that imports a task to send it (the CLI's and the web app's kick of the feeder) gets it
bound to our broker, not to Celery's default app and its ``amqp://localhost``.
"""

from tasks.campaigns import tick
from tasks.send import send_bytehand_batch, send_timetochat
from tasks.status import poll_due, poll_messages, sweep

__all__ = ["poll_due", "poll_messages", "send_bytehand_batch", "send_timetochat", "sweep", "tick"]
