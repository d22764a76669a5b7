"""Each update's latest revision's SHA-256 digest, kept beside the pointer to that revision.

A site server asks its update server for the latest revision of every subscribed update
with the SHA-256 digest of its document (a configuration item's `xml_sha256`). That digest
was computed for every answer from the document itself: at a real-shape catalog's 13,000
characters a document, reading and hashing the documents was a third of the update server's
time in a site's full sync, and on SQLite even a column stored after the document costs a
walk of the document's overflow pages. `update_item.latest_xml_sha256` holds the digest of
the revision `latest_revision` names, written with it by the same upsert; the site's pages
read it from the row they join anyway.

The upgrade computes the digest of every stored latest revision (the documents are read
once, a thousand updates at a time).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.add_column("update_item", sa.Column("latest_xml_sha256", sa.String(64)))
    conn = op.get_bind()
    after = ""
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT update_item.update_id, revision.xml FROM update_item "
                "JOIN revision ON revision.update_id = update_item.update_id "
                "AND revision.revision_number = update_item.latest_revision "
                "WHERE update_item.update_id > :after ORDER BY update_item.update_id "
                "LIMIT :batch"
            ),
            {"after": after, "batch": _BATCH},
        ).all()
        if not rows:
            return
        conn.execute(
            sa.text("UPDATE update_item SET latest_xml_sha256 = :digest WHERE update_id = :uid"),
            [
                {"uid": uid, "digest": hashlib.sha256(xml.encode("utf-8")).hexdigest()}
                for uid, xml in rows
            ],
        )
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_column("update_item", "latest_xml_sha256")
