"""Process hooks: logging once Celery has set it up; the schema at head and the providers'
configuration logged before the first task (:mod:`dispatcher.startup`); fresh pools in every
forked process; Celery's task counters (``celery_task_<event>_total{name}``) added up
fleet-wide in Redis.

Celery configures logging from ``--loglevel`` in the worker and beat main processes, then sends
``after_setup_logger``: there ``DISPATCHER_LOG_LEVEL`` (if set) overrides it and every record is
redacted from then on (:mod:`dispatcher.logs`). Forked pool processes inherit both.
"""

from __future__ import annotations

from typing import Any

from celery.signals import (
    after_setup_logger,
    after_task_publish,
    beat_init,
    celeryd_after_setup,
    task_failure,
    task_prerun,
    task_received,
    task_retry,
    task_revoked,
    task_success,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)

from dispatcher import runtime, startup
from dispatcher.config import load_settings
from dispatcher.logs import configure_logging


@after_setup_logger.connect
def _dispatcher_logging(**_: Any) -> None:
    configure_logging(load_settings().log_level)


@worker_process_init.connect
def _fresh_runtime_after_fork(**_: Any) -> None:
    # Sockets inherited from the parent would be shared by two processes: drop, don't close.
    runtime.reset()


@celeryd_after_setup.connect  # the worker's main process, logging set up, nothing consumed yet
def _prepare_worker(**_: Any) -> None:
    startup.prepare(runtime.current(), "worker")


@beat_init.connect
def _fresh_runtime_for_beat(**_: Any) -> None:
    runtime.reset()
    startup.prepare(runtime.current(), "beat")


@worker_process_shutdown.connect  # a prefork pool process
@worker_shutdown.connect  # the worker itself (a thread pool runs its tasks there)
def _close_runtime(**_: Any) -> None:
    runtime.current().close()


def _count(event: str, name: str | None) -> None:
    if name:
        runtime.current().meter.task(event, name)


@after_task_publish.connect  # in whichever process publishes: beat, web, CLI, workers
def _task_sent(sender: str | None = None, **_: Any) -> None:
    _count("sent", sender)


@task_received.connect
def _task_received(request: Any = None, **_: Any) -> None:
    _count("received", getattr(request, "name", None))


@task_prerun.connect
def _task_started(task: Any = None, **_: Any) -> None:
    _count("started", getattr(task, "name", None))


@task_success.connect
def _task_succeeded(sender: Any = None, **_: Any) -> None:
    _count("succeeded", getattr(sender, "name", None))


@task_failure.connect
def _task_failed(sender: Any = None, **_: Any) -> None:
    _count("failed", getattr(sender, "name", None))


@task_retry.connect
def _task_retried(sender: Any = None, **_: Any) -> None:
    _count("retried", getattr(sender, "name", None))


@task_revoked.connect  # expired ticks too: a backlog no worker read in time
def _task_revoked(sender: Any = None, **_: Any) -> None:
    _count("revoked", getattr(sender, "name", None))
