"""audience care

Suppressions gain an id, a scope (``*`` or ``<provider>:<account>``), a source and the reply
text, unique per (phone, scope); campaigns keep their quiet-hours rules (``send_rules``);
messages keep the file's ``timezone`` cell, and those already sent are indexed by phone (a
ByteHand reply finds the message it answers; a partial index, so a campaign's bulk insert does
not pay for it); inbound messages keep what
their text meant (``intent``) and are indexed by arrival (``dispatcher replies --since``) and
by the message they answer (the ``reply`` column of exports).

Revision ID: 0007
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "suppressions_new",
        sa.Column("id", _ID, nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("reply_text", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("phone", "scope", name="uq_suppressions_phone_scope"),
    )
    op.execute(
        "INSERT INTO suppressions_new (phone, scope, source, reason, created_at) "
        "SELECT phone, '*', 'import', reason, created_at FROM suppressions"
    )
    op.drop_table("suppressions")
    op.rename_table("suppressions_new", "suppressions")
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("send_rules", sa.JSON(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_messages_phone_sent",
        "messages",
        ["phone"],
        unique=False,
        sqlite_where=sa.text("submitted_at IS NOT NULL"),
        postgresql_where=sa.text("submitted_at IS NOT NULL"),
    )
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(
            sa.Column("intent", sa.String(length=10), nullable=False, server_default="reply")
        )
    op.create_index(
        op.f("ix_inbound_messages_received_at"), "inbound_messages", ["received_at"], unique=False
    )
    op.create_index(
        op.f("ix_inbound_messages_reply_to_id"), "inbound_messages", ["reply_to_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_inbound_messages_reply_to_id"), table_name="inbound_messages")
    op.drop_index(op.f("ix_inbound_messages_received_at"), table_name="inbound_messages")
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("intent")
    op.drop_index("ix_messages_phone_sent", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("timezone")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("send_rules")
    op.create_table(
        "suppressions_old",
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone"),
    )
    op.execute(
        "INSERT INTO suppressions_old (phone, reason, created_at) "
        "SELECT phone, MIN(reason), MIN(created_at) FROM suppressions GROUP BY phone"
    )
    op.drop_table("suppressions")
    op.rename_table("suppressions_old", "suppressions")
