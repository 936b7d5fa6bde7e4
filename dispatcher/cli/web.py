"""``dispatcher web``: serve the webhooks, JSON API and console with uvicorn."""

from __future__ import annotations

import click

__all__ = ["web"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def web(host: str, port: int) -> None:
    """Serve the web app (dispatcher.web.asgi:app).

    Settings are read first, so a bad one is one line of error, not a server that never starts.
    """
    import uvicorn

    from dispatcher.config import load_settings

    load_settings()
    uvicorn.run("dispatcher.web.asgi:app", host=host, port=port)
