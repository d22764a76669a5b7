"""A store that loses a revision behind its back (a drift the consistency audit must find):
every row of that revision deleted, at a point the test chooses."""

from __future__ import annotations

from sqlalchemy import Engine, text

from updatesync.metadata.model import RevisionKey

REVISION_TABLES = ("revision_localized", "revision_language", "revision_relation", "revision")
"""The update server's tables keyed by (update id, revision number), children first."""


def lose_revision(engine: Engine, lost: RevisionKey) -> None:
    with engine.begin() as conn:
        for table in REVISION_TABLES:
            conn.execute(
                text(f"DELETE FROM {table} WHERE update_id = :uid AND revision_number = :rev"),
                {"uid": lost.update_id, "rev": lost.revision},
            )
