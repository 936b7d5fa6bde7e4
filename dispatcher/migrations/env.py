"""Alembic environment: runs on the connection handed over by ``dispatcher.db.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from dispatcher.db import include_object
from dispatcher.models import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # `alembic` CLI use: -x url=... or sqlalchemy.url
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database as: alembic -x url=DATABASE_URL ...")
    with create_engine(url).begin() as own_connection:
        context.configure(
            connection=own_connection,
            target_metadata=Base.metadata,
            include_object=include_object(own_connection.dialect.name),
        )
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=include_object(connection.dialect.name),
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
