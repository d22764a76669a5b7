"""Bundled updates as one list per bundle; the reverse index only where it is used.

A real bundle lists up to 200 updates, and bundled updates were one `revision_relation` row
each: five relation rows in six of a real catalog, each with its index entries and its
foreign-key check, about a quarter of an import's time. Nothing looks a bundled update up by
itself (the upstream lists the leaves of the bundles it lists, `selection._bundle_leaves`),
so a bundle's updates are now one JSON list in `revision.bundled`, [[update id, revision
number], ...], NULL when it bundles none.

`revision.localized` (every language's title and description as JSON) was written by every
import and read by nothing (titles come from the typed columns, everything else from the
document itself): it goes, with a tenth of a real-shape store's bytes.

Every relation row was also indexed by its target (`ix_revision_relation_target`), but only
category prerequisites (a category's sub-categories) and superseded updates (which updates
supersede one) are looked up that way: `ix_revision_relation_reverse` holds those two kinds.

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

REVERSE_KINDS = "kind = 'category' OR kind = 'supersedes'"  # schema.REVERSE_KINDS, as SQL

_SAME_REVISION = "r.update_id = revision.update_id AND r.revision_number = revision.revision_number"


def upgrade() -> None:
    op.add_column("revision", sa.Column("bundled", sa.JSON))
    # The same statement on both, in each database's JSON functions. On SQLite each bundle's
    # rows are one range of ix_revision_relation_revision, equal keys in rowid order: the
    # list keeps the document's order.
    if op.get_bind().dialect.name == "postgresql":
        aggregate, pair = "json_agg", "json_build_array"
    else:
        aggregate, pair = "json_group_array", "json_array"
    op.execute(
        f"UPDATE revision SET bundled = (SELECT {aggregate}({pair}("
        "r.target_update_id, r.target_revision)) FROM revision_relation r "
        f"WHERE {_SAME_REVISION} AND r.kind = 'bundle') "
        "WHERE EXISTS (SELECT 1 FROM revision_relation r "
        f"WHERE {_SAME_REVISION} AND r.kind = 'bundle')"
    )
    op.execute("DELETE FROM revision_relation WHERE kind = 'bundle'")
    op.execute("ALTER TABLE revision DROP COLUMN localized")  # SQLite 3.35 and later too
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
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "INSERT INTO revision_relation (update_id, revision_number, kind, group_no, "
            "target_update_id, target_revision) SELECT revision.update_id, "
            "revision.revision_number, 'bundle', 0, e.value->>0, (e.value->>1)::integer "
            "FROM revision, json_array_elements(revision.bundled) AS e(value) "
            "WHERE revision.bundled IS NOT NULL"
        )
    else:
        op.execute(
            "INSERT INTO revision_relation (update_id, revision_number, kind, group_no, "
            "target_update_id, target_revision) SELECT revision.update_id, "
            "revision.revision_number, 'bundle', 0, json_extract(e.value, '$[0]'), "
            "json_extract(e.value, '$[1]') FROM revision, json_each(revision.bundled) AS e "
            "WHERE revision.bundled IS NOT NULL ORDER BY revision.id, e.key"
        )
    op.execute("ALTER TABLE revision DROP COLUMN bundled")  # SQLite 3.35 and later too
    # Read by nothing before either: the lists come back empty (the documents hold them).
    op.add_column("revision", sa.Column("localized", sa.JSON, nullable=False, server_default="[]"))
