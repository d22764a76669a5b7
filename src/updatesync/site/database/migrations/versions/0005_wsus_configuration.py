"""The WSUS configuration manager's tables.

- `wsus_subscription`: what the site's software update points are to sync (the products,
  classifications and languages of the hierarchy's criteria, ConfigMgr's
  CI_UpdateCategorySubscription), with a `version` that rises with every change: the
  database monitor drops a file into `WSUSMgr.box` for each new version, which wakes the
  WSUS configuration manager;
- `wsus_configuration`: per software update point, the configuration manager's state
  (WSUS_CONFIG_NONE .. WSUS_CONFIG_SUBSCRIPTION_PENDING, 0..4), when it was set, the error of
  a failed configuration (text and HRESULT), and the subscription version last applied.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wsus_subscription",
        sa.Column("site_code", sa.String(8), primary_key=True),
        sa.Column("products", sa.JSON, nullable=False),
        sa.Column("classifications", sa.JSON, nullable=False),
        sa.Column("languages", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "wsus_configuration",
        sa.Column("site_code", sa.String(8), nullable=False),
        sa.Column("wsus_server_name", sa.String(255), nullable=False),
        sa.Column("state", sa.Integer, nullable=False),
        sa.Column("state_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_code", sa.BigInteger),
        sa.Column("subscription_version", sa.Integer),
        sa.PrimaryKeyConstraint("site_code", "wsus_server_name", name="pk_wsus_configuration"),
    )


def downgrade() -> None:
    op.drop_table("wsus_configuration")
    op.drop_table("wsus_subscription")
