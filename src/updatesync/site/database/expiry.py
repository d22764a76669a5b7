"""Expired configuration items: their deletion once older than the Updates Cleanup Age, and
deletions carried by database replication (`deleted_item`, migration 0006).

ConfigMgr's top-level site deletes an expired update's CI once its expiry is older than the
Updates Cleanup Age (7 days by default) and nothing references it (WSyncMgr.log: `Deleting
old expired updates...`, `Deleted N expired updates total`); child sites get the deletion by
database replication. Here the time of expiry is the CI's `date_revised` (the site wrote it
expired then), and nothing at a site references a CI yet (no deployments or update groups).

Each deletion takes the next replication sequence number in `deleted_item`, so a parent's
page of changes carries it; a child deletes the CI and records the deletion under its own
number (it can be a parent in turn). A CI written again (an update that came back) drops
its `deleted_item` row (`content.ContentUpdate.upsert_cis`), so a page never holds both for
one update; an update that arrives still expired (a full sync reads every revision the
update server holds) is not written again: its CI stays deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from updatesync.site.database import schema as t
from updatesync.site.database.content import lock_sequence, stamp
from updatesync.site.database.store import SiteDatabaseError, SiteStore, now, utc

_CHUNK = 500


def delete_expired(conn: Connection, before: datetime, limit: int, at: datetime) -> list[str]:
    """Delete at most `limit` expired CIs revised before `before` (in update id order) and
    record each deletion; the update ids deleted."""
    ci = t.configuration_item
    lock_sequence(conn)  # before reading: no other writer acts on what we read
    ids = list(
        conn.execute(
            select(ci.c.update_id)
            .where(ci.c.is_expired.is_(True), ci.c.date_revised < before)
            .order_by(ci.c.update_id)
            .limit(limit)
        ).scalars()
    )
    _delete(conn, ids, at)
    return ids


def apply_deletions(conn: Connection, update_ids: Sequence[str], at: datetime) -> int:
    """Delete the CIs of a parent's deletions (those this site holds), each deletion
    recorded under this site's next sequence number; how many CIs were deleted."""
    if not update_ids:
        return 0
    ci = t.configuration_item
    lock_sequence(conn)
    held: list[str] = []
    for start in range(0, len(update_ids), _CHUNK):
        chunk = list(update_ids[start : start + _CHUNK])
        held += conn.execute(select(ci.c.update_id).where(ci.c.update_id.in_(chunk))).scalars()
    _delete(conn, held, at)
    return len(held)


def _delete(conn: Connection, ids: list[str], at: datetime) -> None:
    if not ids:
        return
    ci, gone = t.configuration_item, t.deleted_item
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        conn.execute(delete(ci).where(ci.c.update_id.in_(chunk)))
        conn.execute(delete(gone).where(gone.c.update_id.in_(chunk)))
        loc = t.ci_localized_property
        conn.execute(delete(loc).where(loc.c.update_id.in_(chunk)))
    rows = [{"update_id": uid, "deleted_at": at} for uid in ids]
    stamp(conn, rows)
    conn.execute(insert(gone), rows)


def deleted_after(conn: Connection, after: int, limit: int) -> list[tuple[int, str]]:
    """The deletions recorded after sequence `after` (at most `limit`), in sequence order."""
    gone = t.deleted_item
    rows = conn.execute(
        select(gone.c.replication_seq, gone.c.update_id)
        .where(gone.c.replication_seq > after)
        .order_by(gone.c.replication_seq)
        .limit(limit)
    ).all()
    return [(int(seq), uid) for seq, uid in rows]


class ExpiredItems:
    """The deletion of expired CIs (`SiteDatabase.expiry`)."""

    def __init__(self, store: SiteStore) -> None:
        self._store = store

    def delete(self, before: datetime, *, limit: int = 100, at: datetime | None = None) -> int:
        """Delete at most `limit` expired CIs revised before `before`, in one transaction;
        how many were deleted (fewer than `limit`: none is left)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise SiteDatabaseError(f"expired CIs deleted {limit!r} at a time: give 1 or more")
        when = utc(at or now(), "deletion of expired CIs")
        cutoff = utc(before, "deletion of expired CIs: revised before")
        with self._store.begin() as conn:
            return len(delete_expired(conn, cutoff, limit, when))

    def deleted(self) -> list[str]:
        """The update ids whose CI this site deleted, oldest deletion first."""
        gone = t.deleted_item
        with self._store.read() as conn:
            return list(
                conn.execute(select(gone.c.update_id).order_by(gone.c.replication_seq)).scalars()
            )


__all__ = ["ExpiredItems", "apply_deletions", "delete_expired", "deleted_after"]
