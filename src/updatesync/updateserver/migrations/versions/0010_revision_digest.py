"""The digest of the store's revision set, kept with the change counter; the audit's result.

The consistency audit (`updateserver/digest.py`, `updateserver/sync/audit.py`) compares a
downstream's set of revisions with its upstream's without listing either: each store keeps
the sum modulo 2**256 of SHA-256("<update id>:<revision number>") over every revision it
holds, and how many, in `store_state` (`revision_digest`, `revision_count`), written by the
same transaction as each batch of revisions. The upgrade computes both for the revisions
stored before, a page of them at a time (the documents are not read).

`revision_audit` keeps the last audit of the store against each upstream it syncs from:
equal, differs or not available, both digests and counts, and when.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_PAGE = 5000
_MODULUS = 1 << 256
_EMPTY = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("store_state") as batch:
        batch.add_column(
            sa.Column("revision_digest", sa.String(64), nullable=False, server_default=_EMPTY)
        )
        batch.add_column(
            sa.Column("revision_count", sa.Integer, nullable=False, server_default="0")
        )
    op.create_table(
        "revision_audit",
        sa.Column("upstream_url", sa.Text, primary_key=True),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scope", sa.String(16)),
        sa.Column("own_digest", sa.String(64)),
        sa.Column("own_count", sa.Integer),
        sa.Column("upstream_digest", sa.String(64)),
        sa.Column("upstream_count", sa.Integer),
        sa.Column("config_counter", sa.Integer),
        sa.Column("updates_counter", sa.Integer),
        sa.Column("reason", sa.Text),
    )
    conn = op.get_bind()
    total, count = 0, 0
    after: tuple[str, int] = ("", -1)
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT update_id, revision_number FROM revision "
                "WHERE update_id > :uid OR (update_id = :uid AND revision_number > :rev) "
                "ORDER BY update_id, revision_number LIMIT :page"
            ),
            {"uid": after[0], "rev": after[1], "page": _PAGE},
        ).all()
        for uid, number in rows:
            text = f"{uid.lower()}:{int(number)}".encode("ascii")
            total += int.from_bytes(hashlib.sha256(text).digest(), "big")
            count += 1
        if len(rows) < _PAGE:
            break
        after = (rows[-1][0], rows[-1][1])
    conn.execute(
        sa.text("UPDATE store_state SET revision_digest = :digest, revision_count = :count"),
        {"digest": f"{total % _MODULUS:064x}", "count": count},
    )


def downgrade() -> None:
    op.drop_table("revision_audit")
    with op.batch_alter_table("store_state") as batch:
        batch.drop_column("revision_count")
        batch.drop_column("revision_digest")
