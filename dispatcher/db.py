"""Engines and sessions, SQLite (embedded default, WAL) and PostgreSQL alike.

Engines are created per process and after a fork (see ``workers.signals``): a connection pool
inherited across ``fork()`` shares sockets between processes and corrupts both.

Every process migrates at start (:mod:`dispatcher.startup`), so a fleet started at once on a
fresh database runs :func:`migrate` several times together: one takes the lock and migrates,
the others wait for it and find the schema at head. The lock is a transaction-level advisory
lock on PostgreSQL (per schema: tests run many schemas side by side), an exclusive ``flock`` on
a file beside the database on SQLite.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "HEAD_REVISION",
    "at_head",
    "include_object",
    "is_postgres",
    "make_engine",
    "migrate",
    "session_scope",
]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD_REVISION = "0014"
"""The newest migration (``tests/test_store.py`` checks it is Alembic's head): a process that
finds its database there has nothing to migrate and does not import Alembic (~12 MB resident,
mako with it, for every ``dispatcher`` command and worker)."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock on ``<database>.migrate.lock`` (none for an in-memory database)."""
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    path = Path(database).with_name(Path(database).name + ".migrate.lock")
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _postgres_lock(connection: Connection) -> None:
    """Hold the schema's migration lock until this transaction ends."""
    connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('dispatcher.migrate.' || current_schema()))")
    )


def include_object(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's autogenerate filter for a database of ``dialect``: a constraint or index of
    the models declared for some dialects only (``ddl_if(dialect=...)``: the foreign key of
    ``messages.campaign_id``, kept by triggers on PostgreSQL) is compared on those only."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        condition = getattr(obj, "_ddl_if", None)
        if reflected or condition is None or condition.dialect is None:
            return True
        wanted = condition.dialect
        return dialect in ({wanted} if isinstance(wanted, str) else set(wanted))

    return include


def at_head(engine: Engine) -> bool:
    """Whether the schema is already at :data:`HEAD_REVISION` (revisions only move forward
    while processes run, so no lock is needed to find that nothing is to be done)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        versions = connection.execute(text("SELECT version_num FROM alembic_version"))
        return versions.scalars().all() == [HEAD_REVISION]


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent, one process at a time)."""
    if at_head(engine):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if is_postgres(engine):
        with engine.begin() as connection:
            _postgres_lock(connection)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return
    with _sqlite_file_lock(engine), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
