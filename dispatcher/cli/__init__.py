"""The ``dispatcher`` command."""

from dispatcher.cli.main import main

__all__ = ["main"]
