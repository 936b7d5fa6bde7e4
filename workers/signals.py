"""Process hooks: logging once Celery has set it up; the schema at head and the providers'
configuration logged before the first task (:mod:`dispatcher.startup`); fresh pools in every
forked process.

Celery configures logging from ``--loglevel`` in the worker and beat main processes, then sends
``after_setup_logger``: there ``DISPATCHER_LOG_LEVEL`` (if set) overrides it and every record is
redacted from then on (:mod:`dispatcher.logs`). Forked pool processes inherit both.
"""

from __future__ import annotations

from typing import Any

from celery.signals import (
    after_setup_logger,
    beat_init,
    celeryd_after_setup,
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
