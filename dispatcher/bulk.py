"""Batch statements that stay cheap in Python on both databases.

A statement with one bound parameter per row (``IN (:p1, ..., :p500)``, a multi-row ``VALUES``)
is a new SQL string for every batch size: SQLAlchemy compiles it afresh and psycopg re-parses
its placeholders (in Python, uncached past a few kilobytes), which cost more than the database
work itself. On PostgreSQL these helpers bind one value for the whole batch instead: an array
(``= ANY(:ids)``), or for inserts the rows as one JSON document (``INSERT ... SELECT ... FROM
json_to_recordset(:rows)``), which the C encoder of :mod:`json` writes at a few microseconds a
row, where binding an array per column made psycopg adapt every element in Python. The SQL
text is the same for every batch. SQLite has no arrays, but its driver binds parameters in C,
so it keeps the plain forms.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, any_, bindparam, text
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


def _json_value(value: object) -> str:
    """What :func:`json.dumps` cannot write itself: timestamps, as ISO 8601 with their zone."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"no JSON form for {type(value).__name__}")


def _recordset_insert(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], tail: str
) -> list[Any]:
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    names = [quote(name) for name in rows[0]]
    columns = ", ".join(f"{quote(n)} {table.c[n].type.compile(dialect=dialect)}" for n in rows[0])
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(names)}) "
        f"SELECT {', '.join(names)} FROM json_to_recordset(CAST(:rows AS json)) AS r({columns}) "
        f"{tail}"
    )
    document = json.dumps(rows, default=_json_value)
    result = connection.execute(text(statement), {"rows": document})
    return [row[0] for row in result] if result.returns_rows else []


def insert_rows(
    connection: Connection,
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
    if connection.dialect.name == "postgresql":
        tail = ("ON CONFLICT DO NOTHING " if skip_conflicts else "") + (
            f"RETURNING {returning}" if returning else ""
        )
        return _recordset_insert(connection, table, rows, tail)
    statement = sqlite_insert(table)
    if skip_conflicts:
        statement = statement.on_conflict_do_nothing()
    if returning is None:
        connection.execute(statement, list(rows))
        return []
    result = connection.execute(statement.returning(table.c[returning]), list(rows))
    return [row[0] for row in result]
