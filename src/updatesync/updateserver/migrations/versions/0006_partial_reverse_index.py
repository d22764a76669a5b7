"""The reverse index of `revision_relation` covers only the kinds looked up from their target.

Before: every relation row was indexed by its target (`ix_revision_relation_target`), but
only category prerequisites (a category's sub-categories) and superseded updates (which
updates supersede one) are ever looked up that way. Bundled updates and plain prerequisites
are nine rows in ten of a real catalog (a bundle lists up to 200 updates), and each was a
random insert into an index larger than SQLite's page cache: about a third of an import's
time. `ix_revision_relation_reverse` holds the two kinds that need it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

REVERSE_KINDS = "kind = 'category' OR kind = 'supersedes'"  # as schema.REVERSE_KINDS


def upgrade() -> None:
    op.drop_index("ix_revision_relation_target", table_name="revision_relation")
    op.create_index(
        "ix_revision_relation_reverse",
        "revision_relation",
        ["target_update_id", "kind"],
        sqlite_where=sa.text(REVERSE_KINDS),
        postgresql_where=sa.text(REVERSE_KINDS),
    )


def downgrade() -> None:
    op.drop_index("ix_revision_relation_reverse", table_name="revision_relation")
    op.create_index(
        "ix_revision_relation_target", "revision_relation", ["target_update_id", "kind"]
    )
