"""campaign priority

A campaign's share of its provider account's budget beside the other campaigns running on the
same account: ``high``, ``normal`` (existing campaigns) or ``low`` (see dispatcher.fairshare).

Revision ID: 0013
Revises: 0010
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("priority", sa.String(10), nullable=False, server_default="normal")
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("priority")
