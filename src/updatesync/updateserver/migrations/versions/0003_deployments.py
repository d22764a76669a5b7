"""Target groups, deployments (approvals), dead deployments and hidden updates: what a
replica receives with GetDeployments and what an upstream serves with it.

Also: the deployment counter beside the change counter, the deployment anchor of each
upstream, and whether a downstream server is a replica. Every store gets WSUS's two
built-in target groups.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ALL_COMPUTERS = "a0a08746-4dbe-4a37-9adf-9e7652c0b421"
UNASSIGNED_COMPUTERS = "b73ca6ed-5727-47f3-84de-015e03f6a88a"


def upgrade() -> None:
    groups = op.create_table(
        "target_group",
        sa.Column("target_group_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("is_builtin", sa.Boolean, nullable=False),
        sa.Column("parent_group_id", sa.String(36)),
    )
    op.bulk_insert(
        groups,
        [
            {
                "target_group_id": ALL_COMPUTERS,
                "name": "All Computers",
                "is_builtin": True,
                "parent_group_id": None,
            },
            {
                "target_group_id": UNASSIGNED_COMPUTERS,
                "name": "Unassigned Computers",
                "is_builtin": True,
                "parent_group_id": ALL_COMPUTERS,
            },
        ],
    )
    op.create_table(
        "deployment",
        sa.Column("deployment_id", sa.String(36), primary_key=True),
        sa.Column("update_id", sa.String(36), nullable=False),
        sa.Column("revision_number", sa.Integer, nullable=False),
        sa.Column("target_group_id", sa.String(36), nullable=False),
        sa.Column("action", sa.Integer, nullable=False),
        sa.Column("admin_name", sa.Text),
        sa.Column("deadline", sa.String(40), nullable=False),
        sa.Column("is_assigned", sa.Boolean, nullable=False),
        sa.Column("go_live_time", sa.String(40), nullable=False),
        sa.Column("download_priority", sa.Integer, nullable=False),
        sa.Column("change_number", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(["target_group_id"], ["target_group.target_group_id"]),
    )
    op.create_index("ix_deployment_change_number", "deployment", ["change_number"])
    op.create_index("ix_deployment_update", "deployment", ["update_id", "target_group_id"])
    op.create_table(
        "dead_deployment",
        sa.Column("deployment_id", sa.String(36), primary_key=True),
        sa.Column("change_number", sa.Integer, nullable=False),
    )
    op.create_index("ix_dead_deployment_change_number", "dead_deployment", ["change_number"])
    op.create_table(
        "hidden_update",
        sa.Column("update_id", sa.String(36), primary_key=True),
    )
    with op.batch_alter_table("store_state") as batch:
        batch.add_column(
            sa.Column("deployment_counter", sa.Integer, nullable=False, server_default="0")
        )
    with op.batch_alter_table("upstream_state") as batch:
        batch.add_column(sa.Column("deployment_anchor", sa.Text))
    with op.batch_alter_table("downstream_server") as batch:
        batch.add_column(
            sa.Column("is_replica", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("downstream_server") as batch:
        batch.drop_column("is_replica")
    with op.batch_alter_table("upstream_state") as batch:
        batch.drop_column("deployment_anchor")
    with op.batch_alter_table("store_state") as batch:
        batch.drop_column("deployment_counter")
    for table in ("hidden_update", "dead_deployment", "deployment", "target_group"):
        op.drop_table(table)
