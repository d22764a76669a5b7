"""The consistency audit of each software update point against its upstream.

After each sync of a SUP the sync manager reads the audit its update server ran at the end
of that sync (the digest of its revision set against its upstream's) and keeps the last
one per SUP in `sup_audit`: whether the SUP is proven equal to its upstream, differs from
it (6707) or could not be checked, both digests and counts, and when.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sup_audit",
        sa.Column("site_code", sa.String(8), nullable=False),
        sa.Column("wsus_server_name", sa.String(255), nullable=False),
        sa.Column("upstream_server", sa.String(255), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("own_digest", sa.String(64)),
        sa.Column("own_count", sa.Integer),
        sa.Column("upstream_digest", sa.String(64)),
        sa.Column("upstream_count", sa.Integer),
        sa.Column("reason", sa.Text),
        sa.PrimaryKeyConstraint("site_code", "wsus_server_name", name="pk_sup_audit"),
    )


def downgrade() -> None:
    op.drop_table("sup_audit")
