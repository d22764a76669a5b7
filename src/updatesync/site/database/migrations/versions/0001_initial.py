"""The first schema of the site database.

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

MICROSOFT_UPDATE = "{C2D17964-BBDD-4339-B9F3-12D7205B39CC}"


def upgrade() -> None:
    op.create_table(
        "site_identity",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("site_code", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "update_sync_status",
        sa.Column("site_code", sa.String(8), primary_key=True),
        sa.Column("sync_now", sa.String(8)),
        sa.Column("sync_now_requested_at", sa.DateTime(timezone=True)),
        sa.Column("last_sync_state", sa.Integer),
        sa.Column("last_sync_state_time", sa.DateTime(timezone=True)),
        sa.Column("last_error_code", sa.BigInteger),
        sa.Column("last_error_text", sa.Text),
        sa.Column("last_successful_sync_time", sa.DateTime(timezone=True)),
        sa.Column("sync_catalog_version", sa.Integer),
    )
    source = op.create_table(
        "update_source",
        sa.Column("unique_id", sa.String(38), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("content_version", sa.Integer, nullable=False),
    )
    op.bulk_insert(
        source,
        [{"unique_id": MICROSOFT_UPDATE, "name": "Microsoft Update", "content_version": 0}],
    )
    op.create_table(
        "configuration_item",
        sa.Column("ci_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("update_id", sa.String(36), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("kb_article", sa.String(32)),
        sa.Column("bulletin", sa.String(64)),
        sa.Column("severity", sa.String(16)),
        sa.Column("creation_date", sa.String(40)),
        sa.Column("products", sa.JSON, nullable=False),
        sa.Column("classifications", sa.JSON, nullable=False),
        sa.Column("is_superseded", sa.Boolean, nullable=False),
        sa.Column("is_expired", sa.Boolean, nullable=False),
        sa.Column("xml_sha256", sa.String(64), nullable=False),
        sa.Column("date_revised", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("update_id", name="uq_configuration_item_update"),
    )
    op.create_table(
        "category",
        sa.Column("category_id", sa.String(36), primary_key=True),
        sa.Column("category_type", sa.String(32), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("parent_id", sa.String(36)),
    )
    op.create_table(
        "status_message",
        sa.Column("record_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer, nullable=False),
        sa.Column("severity", sa.String(1), nullable=False),
        sa.Column("level", sa.String(1), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("component", sa.String(64), nullable=False),
        sa.Column("site_code", sa.String(8), nullable=False),
        sa.Column("system", sa.String(255), nullable=False),
        sa.Column("process_id", sa.BigInteger, nullable=False),
        sa.Column("thread_id", sa.BigInteger, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(f"istr{i}", sa.Text, nullable=False) for i in range(10)),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("last_error", sa.BigInteger),
    )
    op.create_index("ix_status_message_time", "status_message", ["time"])
    op.create_index("ix_status_message_site_time", "status_message", ["site_code", "time"])
    op.create_index("ix_status_message_id_time", "status_message", ["message_id", "time"])
    op.create_table(
        "alert",
        sa.Column("alert_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_type", sa.String(32), nullable=False),
        sa.Column("site_code", sa.String(8), nullable=False),
        sa.Column("instance", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("canceled_at", sa.DateTime(timezone=True)),
        sa.Column("text", sa.Text, nullable=False),
    )
    raised_only = sa.text("state = 'raised'")
    op.create_index(
        "uq_alert_raised",
        "alert",
        ["alert_type", "site_code", "instance"],
        unique=True,
        sqlite_where=raised_only,
        postgresql_where=raised_only,
    )
    op.create_index("ix_alert_site_raised_at", "alert", ["site_code", "raised_at"])
    op.create_table(
        "site_control",
        sa.Column("site_code", sa.String(8), nullable=False),
        sa.Column("install_order", sa.Integer, nullable=False),
        sa.Column("fqdn", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("https", sa.Boolean, nullable=False),
        sa.Column("internet_facing", sa.Boolean, nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("site_code", "install_order", name="pk_site_control"),
        sa.UniqueConstraint("site_code", "fqdn", name="uq_site_control_fqdn"),
    )
    op.create_table(
        "supsync_status",
        sa.Column("site_code", sa.String(8), nullable=False),
        sa.Column("wsus_server_name", sa.String(255), nullable=False),
        sa.Column("wsus_source_server", sa.String(255), nullable=False),
        sa.Column("last_sync_state", sa.Integer),
        sa.Column("last_sync_state_time", sa.DateTime(timezone=True)),
        sa.Column("last_sync_error_code", sa.BigInteger),
        sa.Column("last_successful_sync_time", sa.DateTime(timezone=True)),
        sa.Column("sync_catalog_version", sa.Integer),
        sa.Column("replication_link_status", sa.Integer, nullable=False),
        sa.Column("last_replication_link_check_time", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("site_code", "wsus_server_name", name="pk_supsync_status"),
    )


def downgrade() -> None:
    for name in (
        "supsync_status",
        "site_control",
        "alert",
        "status_message",
        "category",
        "configuration_item",
        "update_source",
        "update_sync_status",
        "site_identity",
    ):
        op.drop_table(name)
