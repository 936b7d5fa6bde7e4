"""Process hooks: every forked worker process builds its own engine, Redis and HTTP pools."""

from __future__ import annotations

from typing import Any

from celery.signals import beat_init, worker_process_init, worker_process_shutdown

from dispatcher import runtime


@worker_process_init.connect
def _fresh_runtime_after_fork(**_: Any) -> None:
    # Sockets inherited from the parent would be shared by two processes: drop, don't close.
    runtime.reset()


@beat_init.connect
def _fresh_runtime_for_beat(**_: Any) -> None:
    runtime.reset()


@worker_process_shutdown.connect
def _close_runtime(**_: Any) -> None:
    runtime.current().close()
