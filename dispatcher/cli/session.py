"""The one database transaction an operator command runs in, importable without the heavy
libraries (``dispatcher --help`` loads every command group)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["open_session"]


@contextmanager
def open_session() -> Iterator[Session]:
    """One transaction on the migrated database of this process's settings."""
    from dispatcher import startup
    from dispatcher.db import session_scope
    from dispatcher.runtime import current

    runtime = current()
    startup.prepare(runtime, "cli", quiet=True)
    with session_scope(runtime.sessions) as session:
        yield session
