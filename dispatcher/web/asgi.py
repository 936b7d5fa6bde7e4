"""The process's app for ``uvicorn dispatcher.web.asgi:app`` (the Procfile's ``web``).

Built lazily, on the first ASGI event (uvicorn's lifespan start-up), from
:func:`dispatcher.runtime.current`: importing this module reads no settings and opens nothing,
and a bad setting still fails at start-up rather than on the first request. Building it brings
the schema to head and logs the providers' configuration (:mod:`dispatcher.startup`).
Importing it also installs secret redaction on every log record (:mod:`dispatcher.logs`);
building the app applies ``DISPATCHER_LOG_LEVEL``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from dispatcher import runtime, startup
from dispatcher.logs import LOG_FORMAT, configure_logging, install_log_redaction
from dispatcher.web.app import create_app

__all__ = ["app"]


def _kick_feeder(campaign_id: int) -> None:
    """Feed a campaign that just got work now, not at the next beat tick."""
    from tasks import tick

    tick.apply_async(expires=30)


def _log_like_uvicorn() -> None:
    """uvicorn configures only its own loggers: the app's records follow its ``--log-level``
    on stderr instead of being dropped (INFO) or printed bare (WARNING)."""
    if not logging.getLogger().handlers:
        level = logging.getLogger("uvicorn.error").getEffectiveLevel()
        logging.basicConfig(format=LOG_FORMAT, level=level)


class _LazyApp:
    """An ASGI app that builds the real one on first use."""

    def __init__(self) -> None:
        self._app: FastAPI | None = None

    def get(self) -> FastAPI:
        """The real app, built on the first call (single-threaded event loop: no race)."""
        if self._app is None:
            current = runtime.current()
            _log_like_uvicorn()
            configure_logging(current.settings.log_level)
            startup.prepare(current, "web")
            self._app = create_app(current, on_start=_kick_feeder)
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.get()(scope, receive, send)


install_log_redaction()
app = _LazyApp()
