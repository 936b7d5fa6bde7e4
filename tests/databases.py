"""Migrated test databases without running the migrations for every test.

Migrating costs 0.05-0.1 s on SQLite and about 0.3 s on PostgreSQL; with some 170 tests on
each, that was most of the store tests' time. So each test session (each pytest-xdist worker)
migrates once:

* SQLite: a template file, copied for every test (a new file: nothing to clean).
* PostgreSQL: one schema per worker, emptied before every test (``DELETE`` children first,
  sequences restarted: ids start at 1 again, as in a new schema; ``DELETE`` of a few rows is
  three times quicker than ``TRUNCATE``, which makes new files for every table). A test that
  left the schema at another revision (a migration test going down), or a connection holding
  a lock past the ``lock_timeout``, gets a new schema, migrated, instead: never a half-clean
  one.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import sqlalchemy
from sqlalchemy import text

from dispatcher.db import make_engine, migrate
from dispatcher.models import Base

__all__ = ["PostgresSchemas", "SqliteTemplate"]


class SqliteTemplate:
    """A migrated SQLite file, copied to each test's directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "template.db"
        engine = make_engine(f"sqlite:///{self.path}")
        migrate(engine)
        with engine.connect() as connection:  # everything into the main file: it is copied alone
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()

    def copy_to(self, directory: Path) -> str:
        """A migrated, empty database file in ``directory``; its URL."""
        target = directory / "dispatcher.db"
        shutil.copyfile(self.path, target)
        return f"sqlite:///{target}"


def schema_url(admin_url: str, schema: str) -> str:
    return f"{admin_url}?options=-csearch_path%3D{schema}"


class PostgresSchemas:
    """This session's reusable migrated schema, and every schema it created (dropped at end)."""

    def __init__(self, admin_url: str) -> None:
        self.admin = sqlalchemy.create_engine(admin_url)
        self.admin_url = admin_url
        self.created: list[str] = []
        self._fresh()

    def _fresh(self) -> None:
        """A new migrated schema; what emptying it takes, worked out once."""
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.created.append(schema)
        self.url = schema_url(self.admin_url, schema)
        self.engine = make_engine(self.url)
        migrate(self.engine)
        with self.engine.connect() as connection:
            self.revision = connection.execute(text("SELECT version_num FROM alembic_version"))
            self.revision = self.revision.scalar_one()
            tables = set(
                connection.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                        "AND tablename <> 'alembic_version'"
                    )
                ).scalars()
            )
            sequences = connection.execute(
                text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
            ).scalars()
            # Children before parents (the models' order); tables the models lack, first.
            ordered = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name in tables]
            ordered = sorted(tables - set(ordered)) + ordered
            self._delete = "".join(f'DELETE FROM "{name}";' for name in ordered) + "".join(
                f'ALTER SEQUENCE "{name}" RESTART;' for name in sequences
            )

    def _emptied(self) -> bool:
        """Delete every row and restart the ids; False when the schema cannot be reused."""
        try:
            with self.engine.begin() as connection:
                connection.execute(text("SET LOCAL lock_timeout = '5s'"))
                revision = connection.execute(text("SELECT version_num FROM alembic_version"))
                if revision.scalars().all() != [self.revision]:
                    return False
                connection.exec_driver_sql(self._delete)
            return True
        except sqlalchemy.exc.DBAPIError:
            return False

    def empty(self) -> str:
        """The URL of a migrated schema with no rows (a new one if that one is unusable)."""
        if not self._emptied():
            self.engine.dispose()
            self._fresh()
        return self.url

    def drop_all(self) -> None:
        """Drop every schema this session created (best effort: a stuck one is left)."""
        self.engine.dispose()
        for schema in self.created:
            try:
                with self.admin.begin() as connection:
                    connection.execute(text("SET LOCAL lock_timeout = '5s'"))
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            except sqlalchemy.exc.DBAPIError:
                continue
        self.admin.dispose()
