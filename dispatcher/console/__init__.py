"""The marketing console: server-rendered pages over the same use cases as the CLI and API.

``install(app)`` adds the routes under ``/console`` (:mod:`dispatcher.console.routes`), the
static files (``/console/static``, package data: no CDN) and the sign-in redirect.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

from dispatcher.console.render import HEADERS, STATIC_DIR
from dispatcher.console.routes import SignInNeeded, router, sign_in_needed

__all__ = ["install"]


def _home() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=303, headers=dict(HEADERS))


def install(app: FastAPI) -> None:
    """Serve the console on ``app``; ``/`` leads to it."""
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.add_exception_handler(SignInNeeded, sign_in_needed)
    app.add_api_route("/", _home, methods=["GET"], include_in_schema=False)
