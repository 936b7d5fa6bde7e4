"""FastAPI web app: provider webhooks, the JSON API, the console and a health check.

Build one with :func:`create_app`; uvicorn serves :data:`dispatcher.web.asgi.app`.
"""

from __future__ import annotations

from dispatcher.web.app import create_app
from dispatcher.web.state import OnStart

__all__ = ["OnStart", "create_app"]
