"""Where the site's subscription came from: the digest of the hierarchy file's criteria last
applied (`wsus_subscription.file_digest`).

A site server writes the hierarchy file's criteria into its database at start. Once the
subscription can be changed while the hierarchy runs (the top-level site's SMS Provider, and
database replication to every child), a restart must not take back such a change: the file's
criteria are applied only when they differ from those the file gave last time. A database
from before this revision has no digest: the file's criteria are applied at the next start,
as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wsus_subscription") as batch:
        batch.add_column(sa.Column("file_digest", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("wsus_subscription") as batch:
        batch.drop_column("file_digest")
