"""Database replication between site databases, and the client policy table.

- `replication_seq` on `configuration_item` and `category` (unique, indexed) and the counter
  `replication_sequence`: every write of a CI or category takes the next number. Rows that
  exist already are numbered here: categories first (by category id), then CIs (by CI id),
  so that a child replicating from scratch receives the categories before the CIs.
- `replication_link`: at a child site, what it applied of each parent and the link's health.
- `client_policy`: the site-wide policy for clients (update source, content version, SUPs).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_CHUNK = 500


def _number_existing_rows() -> int:
    """Give every existing category and CI a sequence number; returns the highest given."""
    conn = op.get_bind()
    cat = sa.table("category", sa.column("category_id"), sa.column("replication_seq"))
    ci = sa.table("configuration_item", sa.column("ci_id"), sa.column("replication_seq"))
    ids = list(conn.execute(sa.select(cat.c.category_id).order_by(cat.c.category_id)).scalars())
    numbering = (
        sa.update(cat)
        .where(cat.c.category_id == sa.bindparam("key"))
        .values(replication_seq=sa.bindparam("seq"))
    )
    for start in range(0, len(ids), _CHUNK):
        rows = [
            {"key": key, "seq": start + n + 1} for n, key in enumerate(ids[start : start + _CHUNK])
        ]
        conn.execute(numbering, rows)
    # CI ids are unique and positive: ci_id + (number of categories) keeps them in CI order,
    # above the categories, in one statement. Gaps in the sequence are harmless.
    conn.execute(sa.update(ci).values(replication_seq=ci.c.ci_id + len(ids)))
    highest = conn.execute(sa.select(sa.func.max(ci.c.replication_seq))).scalar()
    return int(highest) if highest is not None else len(ids)


def upgrade() -> None:
    for table in ("category", "configuration_item"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("replication_seq", sa.BigInteger, nullable=True))
    last_seq = _number_existing_rows()
    for table in ("category", "configuration_item"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("replication_seq", existing_type=sa.BigInteger, nullable=False)
            batch.create_index(f"ix_{table}_replication_seq", ["replication_seq"], unique=True)
    sequence = op.create_table(
        "replication_sequence",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(sequence, [{"id": 1, "last_seq": last_seq}])
    op.create_table(
        "replication_link",
        sa.Column("parent_site_code", sa.String(8), primary_key=True),
        sa.Column("applied_seq", sa.BigInteger, nullable=False),
        sa.Column("replicated_versions", sa.JSON, nullable=False),
        sa.Column("link_status", sa.Integer, nullable=False),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True)),
        sa.Column("last_check_time", sa.DateTime(timezone=True)),
        sa.Column("last_success_time", sa.DateTime(timezone=True)),
        sa.Column("last_error_text", sa.Text),
    )
    op.create_table(
        "client_policy",
        sa.Column("site_code", sa.String(8), primary_key=True),
        sa.Column("update_source_id", sa.String(38), nullable=False),
        sa.Column("content_version", sa.Integer, nullable=False),
        sa.Column("sup_locations", sa.JSON, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for name in ("client_policy", "replication_link", "replication_sequence"):
        op.drop_table(name)
    for table in ("configuration_item", "category"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_replication_seq")
            batch.drop_column("replication_seq")
