"""Who holds a store's sync lock, readable from every host that shares the store's database.

A store on PostgreSQL may be served by update servers on several hosts, each with its own
data folder (and so its own `sync.lock` file). The one-sync-per-store lock is then also a
PostgreSQL advisory lock (`sync_lock.py`), and the holder writes who it is into this
one-row table for a refused sync on another host to name: the database session holding the
advisory lock (`backend_pid`), the process, its host, when it started and what it syncs
from. A row left by a killed holder is stale, not a lock: the advisory lock went with its
session, and the next holder writes its own row.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
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
        "sync_holder",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("backend_pid", sa.Integer, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("started_at", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_holder")
