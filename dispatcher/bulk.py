"""Batch statements that stay cheap in Python on both databases.

A statement with one bound parameter per row (``IN (:p1, ..., :p500)``, a multi-row ``VALUES``)
is a new SQL string for every batch size: SQLAlchemy compiles it afresh and psycopg re-parses
its placeholders (in Python, uncached past a few kilobytes), which cost more than the database
work itself. On PostgreSQL these helpers bind one array per column instead (``= ANY(:ids)``,
``INSERT ... SELECT * FROM unnest(...)``): the SQL text is the same for every batch. SQLite has
no arrays, but its driver binds parameters in C, so it keeps the plain forms.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, ColumnElement, Table, any_, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

__all__ = ["insert_rows", "is_one_of"]


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def is_one_of(session: Session, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """``column IN values``, as ``column = ANY(:array)`` on PostgreSQL."""
    if _postgres(session):
        array = bindparam(None, list(values), type_=ARRAY(column.type))
        return column == any_(array)  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]


def _unnest_insert(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], tail: str
) -> list[Any]:
    dialect = session.get_bind().dialect
    names = list(rows[0])
    casts = []
    params: dict[str, list[Any]] = {}
    for position, name in enumerate(names):
        column = table.c[name]
        json_column = isinstance(column.type, JSON)
        sql_type = "json" if json_column else column.type.compile(dialect=dialect)
        casts.append(f"CAST(:c{position} AS {sql_type}[])")
        values = [row[name] for row in rows]
        params[f"c{position}"] = [json.dumps(v) for v in values] if json_column else values
    statement = (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"SELECT * FROM unnest({', '.join(casts)}) {tail}"
    )
    result = session.connection().execute(text(statement), params)
    return [row[0] for row in result] if result.returns_rows else []


def insert_rows(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    skip_conflicts: bool = False,
    returning: str | None = None,
) -> list[Any]:
    """Insert ``rows`` (same keys in each) in one statement; with ``returning``, that column of
    the rows actually inserted (with ``skip_conflicts``, those not already there)."""
    if not rows:
        return []
    if _postgres(session):
        tail = ("ON CONFLICT DO NOTHING " if skip_conflicts else "") + (
            f"RETURNING {returning}" if returning else ""
        )
        return _unnest_insert(session, table, rows, tail)
    statement = sqlite_insert(table)
    if skip_conflicts:
        statement = statement.on_conflict_do_nothing()
    if returning is None:
        session.connection().execute(statement, list(rows))
        return []
    result = session.connection().execute(statement.returning(table.c[returning]), list(rows))
    return [row[0] for row in result]
