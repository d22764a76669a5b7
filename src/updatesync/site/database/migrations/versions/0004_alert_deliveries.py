"""Alert webhook delivery state moves into the site database.

Before, the alert watcher kept what each webhook had had in a SQLite file of its own
(`alerting.sqlite` in the site's data folder, tables `webhook`, `baseline`, `delivery`).
Here are the same three, named for the site database:

- `alert_webhook`: per webhook URL, consecutive refusals, the next attempt, the last error,
  and `claimed_until` (a delivery pass in progress, so that two processes sharing the
  database never send the same events at once);
- `alert_webhook_baseline`: when a webhook was first used with this database (the epoch);
- `alert_delivery`: one row per webhook and alert event, written before it is sent.

An old `alerting.sqlite` is read into these tables once, when the alert watcher first sends
(`site/watch/webhooks.py`), then renamed `alerting.sqlite.migrated`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_webhook",
        sa.Column("url", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "alert_webhook_baseline",
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("epoch", sa.String(64), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("url", "epoch", name="pk_alert_webhook_baseline"),
    )
    op.create_table(
        "alert_delivery",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("epoch", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.Integer, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("happened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("url", "epoch", "alert_id", "event", name="uq_alert_delivery_event"),
    )
    op.create_index("ix_alert_delivery_pending", "alert_delivery", ["url", "state", "seq"])


def downgrade() -> None:
    op.drop_table("alert_delivery")
    op.drop_table("alert_webhook_baseline")
    op.drop_table("alert_webhook")
