"""The first schema of the update server's store.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revision",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("update_id", sa.String(36), nullable=False),
        sa.Column("revision_number", sa.Integer, nullable=False),
        sa.Column("update_type", sa.String(16), nullable=False),
        sa.Column("category_type", sa.String(32)),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("default_language", sa.String(16)),
        sa.Column("kb_article", sa.String(32)),
        sa.Column("security_bulletin", sa.String(64)),
        sa.Column("msrc_severity", sa.String(16)),
        sa.Column("creation_date", sa.String(40)),
        sa.Column("publication_state", sa.String(16), nullable=False),
        sa.Column("eula_id", sa.String(36)),
        sa.Column("detectoid_type", sa.String(64)),
        sa.Column("localized", sa.JSON, nullable=False),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("xml", sa.Text, nullable=False),
        sa.Column("change_number", sa.Integer, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("update_id", "revision_number", name="uq_revision_identity"),
    )
    op.create_index("ix_revision_change_number", "revision", ["change_number"])
    op.create_table(
        "revision_relation",
        sa.Column("update_id", sa.String(36), nullable=False),
        sa.Column("revision_number", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("group_no", sa.Integer, nullable=False),
        sa.Column("target_update_id", sa.String(36), nullable=False),
        sa.Column("target_revision", sa.Integer),
        sa.ForeignKeyConstraint(
            ["update_id", "revision_number"], ["revision.update_id", "revision.revision_number"]
        ),
    )
    op.create_index(
        "ix_revision_relation_revision", "revision_relation", ["update_id", "revision_number"]
    )
    op.create_index(
        "ix_revision_relation_target", "revision_relation", ["target_update_id", "kind"]
    )
    op.create_table(
        "update_item",
        sa.Column("update_id", sa.String(36), primary_key=True),
        sa.Column("latest_revision", sa.Integer, nullable=False),
        sa.Column("update_type", sa.String(16), nullable=False),
        sa.Column("category_type", sa.String(32)),
    )
    op.create_index("ix_update_item_type", "update_item", ["update_type"])
    state = op.create_table(
        "store_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("change_counter", sa.Integer, nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "change_counter": 0}])
    op.create_table(
        "subscription_category",
        sa.Column("update_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
    )
    op.create_table(
        "subscription_language",
        sa.Column("language", sa.String(16), primary_key=True),
    )
    op.create_table(
        "sync_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("new_revisions", sa.Integer, nullable=False),
        sa.Column("unchanged_revisions", sa.Integer, nullable=False),
        sa.Column("conflicting_revisions", sa.Integer, nullable=False),
        sa.Column("change_before", sa.Integer, nullable=False),
        sa.Column("change_after", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "sync_history",
        "subscription_language",
        "subscription_category",
        "store_state",
        "update_item",
        "revision_relation",
        "revision",
    ):
        op.drop_table(table)
