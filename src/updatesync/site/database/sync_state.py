"""Sync requests and sync status of a site: its row of `Update_SyncStatus`.

The `SyncNow` flag is a request (SELF, FULL, or the code of the parent site that asks); the
database monitor takes it (`take_request`, or `pending_request` then `clear_request` as a
compare-and-set) and the sync manager records each state it reaches (`record_state`: the
status message just sent). Every write is one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from updatesync.site.database import schema as t
from updatesync.site.database.models import SYNC_FULL, SYNC_SELF, SyncStatus
from updatesync.site.database.store import (
    SITE_CODE,
    SiteDatabaseError,
    SiteStore,
    normal_site_code,
    now,
    read_time,
    upsert,
    utc,
)
from updatesync.vocabulary import SYNC_COMPLETED


class SyncState:
    """The `Update_SyncStatus` rows of a site database (`SiteDatabase.sync`)."""

    def __init__(self, store: SiteStore) -> None:
        self._store = store

    def request(
        self, kind: str = SYNC_SELF, *, site_code: str | None = None, at: datetime | None = None
    ) -> str:
        """Set the `SyncNow` flag: SELF (delta), FULL, or the code of the parent site that
        asks. A pending FULL is not lowered to a delta request. Returns the flag now set."""
        site = self._store.site(site_code)
        wanted = kind.strip().upper()
        is_parent = bool(SITE_CODE.fullmatch(wanted)) and wanted != site
        if wanted not in (SYNC_SELF, SYNC_FULL) and not is_parent:
            raise SiteDatabaseError(
                f"sync request {kind!r} for site {site}: use SELF, FULL or the parent site's code"
            )
        when = utc(at or now(), "sync request")
        s = t.update_sync_status
        with self._store.begin() as conn:
            upsert(conn, s, {"site_code": site}, {})
            pending = conn.execute(select(s.c.sync_now).where(s.c.site_code == site)).scalar()
            if pending == SYNC_FULL and wanted != SYNC_FULL:
                return SYNC_FULL
            conn.execute(
                update(s)
                .where(s.c.site_code == site)
                .values(sync_now=wanted, sync_now_requested_at=when)
            )
        return wanted

    def pending_request(self, *, site_code: str | None = None) -> tuple[str | None, Any]:
        """The SyncNow flag and its request time, exactly as stored (a token for
        `clear_request`: compare it, never convert it)."""
        s = t.update_sync_status
        query = select(s.c.sync_now, s.c.sync_now_requested_at).where(
            s.c.site_code == self._store.site(site_code)
        )
        with self._store.read() as conn:
            row = conn.execute(query).first()
        return (None, None) if row is None else (row.sync_now, row.sync_now_requested_at)

    def clear_request(self, flag: str, requested_at: Any, *, site_code: str | None = None) -> bool:
        """Clear the SyncNow flag if it still holds `flag` requested at `requested_at` (as
        `pending_request` gave them); False when a newer request replaced it meanwhile,
        which then stays set."""
        s = t.update_sync_status
        same_time = (
            s.c.sync_now_requested_at.is_(None)
            if requested_at is None
            else s.c.sync_now_requested_at == requested_at
        )
        with self._store.begin() as conn:
            done = conn.execute(
                update(s)
                .where(
                    s.c.site_code == self._store.site(site_code), s.c.sync_now == flag, same_time
                )
                .values(sync_now=None, sync_now_requested_at=None)
            ).rowcount
        return bool(done)

    def take_request(self, *, site_code: str | None = None) -> str | None:
        """The pending `SyncNow` flag, cleared in the same transaction: of callers racing for
        one request, exactly one gets it."""
        site = self._store.site(site_code)
        s = t.update_sync_status
        with self._store.begin() as conn:
            # Writing first takes the write lock (SQLite) or the row lock (PostgreSQL).
            locked = conn.execute(
                update(s).where(s.c.site_code == site).values(sync_now=s.c.sync_now)
            )
            if locked.rowcount == 0:
                return None
            pending = conn.execute(select(s.c.sync_now).where(s.c.site_code == site)).scalar()
            if pending is not None:
                conn.execute(
                    update(s)
                    .where(s.c.site_code == site)
                    .values(sync_now=None, sync_now_requested_at=None)
                )
        return pending

    def status(self, *, site_code: str | None = None) -> SyncStatus:
        """The site's row of `Update_SyncStatus` (an empty one when it has none)."""
        site = self._store.site(site_code)
        s = t.update_sync_status
        with self._store.read() as conn:
            row = conn.execute(select(s).where(s.c.site_code == site)).first()
        if row is None:
            return SyncStatus(site)
        return SyncStatus(
            site_code=row.site_code,
            sync_now=row.sync_now,
            sync_now_requested_at=read_time(row.sync_now_requested_at),
            last_sync_state=row.last_sync_state,
            last_sync_state_time=read_time(row.last_sync_state_time),
            last_error_code=row.last_error_code,
            last_error_text=row.last_error_text,
            last_successful_sync_time=read_time(row.last_successful_sync_time),
            sync_catalog_version=row.sync_catalog_version,
        )

    def set_status(self, status: SyncStatus) -> None:
        """Write every field of `status` but the request flag (see `request`)."""
        site = normal_site_code(status.site_code)
        values = {
            "last_sync_state": status.last_sync_state,
            "last_error_code": status.last_error_code,
            "last_error_text": status.last_error_text,
            "sync_catalog_version": status.sync_catalog_version,
        }
        for name in ("last_sync_state_time", "last_successful_sync_time"):
            value = getattr(status, name)
            values[name] = utc(value, name) if value is not None else None
        with self._store.begin() as conn:
            upsert(conn, t.update_sync_status, {"site_code": site}, values)

    def record_state(
        self,
        message_id: int,
        *,
        at: datetime | None = None,
        error_code: int | None = None,
        error_text: str | None = None,
        catalog_version: int | None = None,
        site_code: str | None = None,
    ) -> SyncStatus:
        """Note the sync's new state (the status message just sent). 6702 (and 6708, a sync
        that completed with license terms pending) also records the success time and clears
        the error; the catalog version is kept unless given."""
        site = self._store.site(site_code)
        when = utc(at or now(), f"sync state {message_id}")
        values: dict[str, Any] = {"last_sync_state": message_id, "last_sync_state_time": when}
        if message_id in SYNC_COMPLETED:
            values |= {
                "last_successful_sync_time": when,
                "last_error_code": None,
                "last_error_text": None,
            }
        if error_code is not None or error_text is not None:
            values |= {"last_error_code": error_code, "last_error_text": error_text}
        if catalog_version is not None:
            values["sync_catalog_version"] = catalog_version
        with self._store.begin() as conn:
            upsert(conn, t.update_sync_status, {"site_code": site}, values)
        return self.status(site_code=site)
