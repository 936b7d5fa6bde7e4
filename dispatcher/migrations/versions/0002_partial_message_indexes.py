"""partial message indexes

Only messages with a poll scheduled or a provider id are ever looked up through these two
indexes, and a campaign's pending messages have neither: indexing their NULLs cost ~2.5 s of
a million-row ingest on SQLite and no query ever read them. The lookups (``next_poll_at <=
:now``, ``provider_message_id = :id``) imply the ``IS NOT NULL`` predicate on both backends,
so the planners still use the indexes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_messages_state_poll", ["state", "next_poll_at"], "next_poll_at IS NOT NULL"),
    ("ix_messages_provider_id", ["provider_message_id"], "provider_message_id IS NOT NULL"),
)


def upgrade() -> None:
    for name, columns, predicate in _INDEXES:
        op.drop_index(name, table_name="messages")
        where = sa.text(predicate)
        op.create_index(name, "messages", columns, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name, columns, _predicate in _INDEXES:
        op.drop_index(name, table_name="messages")
        op.create_index(name, "messages", columns)
