"""What the server-to-server protocol needs: identity, downstream servers, upstream state,
and where each content file can be downloaded.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_identity",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("server_id", sa.String(36), nullable=False),
        sa.Column("cookie_key", sa.String(88), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "downstream_server",
        sa.Column("account_guid", sa.String(36), primary_key=True),
        sa.Column("account_name", sa.Text, nullable=False),
        sa.Column("address", sa.Text),
        sa.Column("protocol_version", sa.String(16)),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sync_anchor", sa.Text),
    )
    op.create_table(
        "upstream_state",
        sa.Column("upstream_url", sa.Text, primary_key=True),
        sa.Column("config_anchor", sa.Text),
        sa.Column("config_list_anchor", sa.Text),
        sa.Column("update_list_anchor", sa.Text),
        sa.Column("filter_key", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "file_url",
        sa.Column("digest", sa.String(44), primary_key=True),
        sa.Column("mu_url", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("file_url", "upstream_state", "downstream_server", "server_identity"):
        op.drop_table(table)
