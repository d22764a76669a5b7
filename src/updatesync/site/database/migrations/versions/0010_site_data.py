"""Site data replicated upward: what a parent site holds of the sites below it.

A parent site pulls from each child the site data ConfigMgr replicates up the hierarchy:
the status messages after the last one it holds, and the child's current picture of itself
and of the sites below it (sync status, SMS_SUPSyncStatus rows, raised alerts). This
revision adds:

- to `status_message`: `source_site` (the child site a replicated message was pulled from;
  NULL for a message sent at this site), `source_record_id` (its RecordID there; unique per
  child, so a page applied twice adds nothing) and `received_at` (when it arrived here);
- `site_data`: per site whose data this site holds by replication, the child it came
  through, when the data was current at its own site (`as_of`), when it arrived here, and
  the last picture (sync status, SUP sync status rows, raised alerts) as the provider's JSON,
  and whether the child already judged it stale (`stale_below`: a grandchild it could not
  reach);
- `site_data_link`: per child site pulled from, the last of its RecordIDs held here and the
  link's last check, success, failures in a row and error.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("status_message") as batch:
        batch.add_column(sa.Column("source_site", sa.String(8)))
        batch.add_column(sa.Column("source_record_id", sa.BigInteger))
        batch.add_column(sa.Column("received_at", sa.DateTime(timezone=True)))
    op.create_index(
        "uq_status_message_source",
        "status_message",
        ["source_site", "source_record_id"],
        unique=True,
    )
    op.create_table(
        "site_data",
        sa.Column("site_code", sa.String(8), primary_key=True),
        sa.Column("via_site", sa.String(8), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sync_status", sa.JSON),
        sa.Column("sup_sync_status", sa.JSON, nullable=False),
        sa.Column("alerts", sa.JSON, nullable=False),
        sa.Column("stale_below", sa.Boolean, nullable=False),
    )
    op.create_table(
        "site_data_link",
        sa.Column("child_site_code", sa.String(8), primary_key=True),
        sa.Column("last_record_id", sa.BigInteger, nullable=False),
        sa.Column("last_check_time", sa.DateTime(timezone=True)),
        sa.Column("last_success_time", sa.DateTime(timezone=True)),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("last_error_text", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("site_data_link")
    op.drop_table("site_data")
    op.drop_index("uq_status_message_source", table_name="status_message")
    with op.batch_alter_table("status_message") as batch:
        batch.drop_column("received_at")
        batch.drop_column("source_record_id")
        batch.drop_column("source_site")
