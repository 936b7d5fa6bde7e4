"""``dispatcher campaign ...``: create, start, pause, watch and settle campaigns."""

from __future__ import annotations

import click


@click.group()
def campaign() -> None:
    """Create and operate campaigns."""
