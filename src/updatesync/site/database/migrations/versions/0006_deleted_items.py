"""Deleted configuration items, for database replication.

`deleted_item`: one row per update whose CI this site deleted (an expired update older than
the Updates Cleanup Age, or a deletion replicated from the parent), with the replication
sequence number of the deletion, so a child site replicates it like any other change and
deletes the CI too. A CI written again (the update came back) drops its row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deleted_item",
        sa.Column("update_id", sa.String(36), primary_key=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replication_seq", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_deleted_item_replication_seq", "deleted_item", ["replication_seq"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_deleted_item_replication_seq", table_name="deleted_item")
    op.drop_table("deleted_item")
