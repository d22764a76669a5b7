"""Site data replicated upward: what a parent site holds of the sites below it (`db.site_data`).

ConfigMgr replicates site data (status messages, the sites' and SUPs' sync status, alerts)
from each child site up to its parent, so the central administration site sees the whole
hierarchy. Here the parent pulls it (`replication/site_data.py`); this repository keeps it:

- the status messages of the child and of the sites below it go into `status_message` with
  `source_site` (the child), `source_record_id` (their RecordID at the child) and
  `received_at`; a message already held (same child and RecordID) is not added again;
- per site below, its last picture in `site_data`: the sync status, the SUP sync status rows
  and the raised alerts as that site's provider gives them (JSON), `as_of` (when the picture
  was current at its own site), `received_at` and the child it came through;
- per child, in `site_data_link`, the last of its RecordIDs held here and the pull's health.

`apply` writes one page in one transaction, which also moves the link on, so a pull that
stops halfway resumes after what was committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from updatesync.logs.status_messages import StatusMessage
from updatesync.site.database import schema as t
from updatesync.site.database.status_messages import message_values
from updatesync.site.database.store import (
    SiteDatabaseError,
    SiteStore,
    insert_or_ignore,
    normal_site_code,
    read_time,
    upsert,
    utc,
)


@dataclass(frozen=True, slots=True)
class SitePicture:
    """One site's picture as its provider gives it: `sync_status` (a `SyncStatusView`'s
    JSON; None before the site has a row), `sup_sync_status` (SUP rows), `alerts` (the
    raised ones), when it was current at the site (`as_of`), and `stale_below`: the site
    in between already found it stale (it could not reach that site)."""

    site_code: str
    as_of: datetime
    sync_status: dict[str, Any] | None
    sup_sync_status: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    stale_below: bool = False

    def same_state(self, other: SitePicture) -> bool:
        """The same sync status, SUP rows, alerts and staleness (the times aside)."""
        return (
            self.sync_status == other.sync_status
            and self.sup_sync_status == other.sup_sync_status
            and self.alerts == other.alerts
            and self.stale_below == other.stale_below
        )


@dataclass(frozen=True, slots=True)
class ReplicatedSite:
    """A site whose data this site holds by replication: its picture, the child site it
    came through, and when it arrived here."""

    picture: SitePicture
    via_site: str
    received_at: datetime

    @property
    def site_code(self) -> str:
        return self.picture.site_code


@dataclass(frozen=True, slots=True)
class SiteDataLink:
    """The upward pull from one child site: the last of its RecordIDs held here, the last
    check and success, failures in a row and the last error (None after a success)."""

    child_site: str
    last_record_id: int
    last_check_time: datetime | None
    last_success_time: datetime | None
    consecutive_failures: int
    last_error_text: str | None


@dataclass(frozen=True, slots=True)
class AppliedSiteData:
    """What applying a page changed: messages added, and whether any picture changed."""

    messages_added: int
    pictures_changed: bool

    @property
    def changed(self) -> bool:
        return self.messages_added > 0 or self.pictures_changed


def _link(row: Any) -> SiteDataLink:
    return SiteDataLink(
        child_site=row.child_site_code,
        last_record_id=int(row.last_record_id),
        last_check_time=read_time(row.last_check_time),
        last_success_time=read_time(row.last_success_time),
        consecutive_failures=int(row.consecutive_failures),
        last_error_text=row.last_error_text,
    )


def _site(row: Any) -> ReplicatedSite:
    return ReplicatedSite(
        picture=SitePicture(
            site_code=row.site_code,
            as_of=read_time(row.as_of),  # type: ignore[arg-type]  # NOT NULL column
            sync_status=row.sync_status,
            sup_sync_status=list(row.sup_sync_status),
            alerts=list(row.alerts),
            stale_below=bool(row.stale_below),
        ),
        via_site=row.via_site,
        received_at=read_time(row.received_at),  # type: ignore[arg-type]  # NOT NULL column
    )


class SiteData:
    """The site data this site holds of the sites below it (`SiteDatabase.site_data`)."""

    def __init__(self, store: SiteStore) -> None:
        self._store = store

    def link(self, child: str) -> SiteDataLink | None:
        """The pull from `child`; None before the first."""
        sl = t.site_data_link
        query = select(sl).where(sl.c.child_site_code == normal_site_code(child))
        with self._store.read() as conn:
            row = conn.execute(query).first()
        return _link(row) if row is not None else None

    def links(self) -> list[SiteDataLink]:
        with self._store.read() as conn:
            rows = conn.execute(select(t.site_data_link).order_by("child_site_code"))
            return [_link(r) for r in rows]

    def sites(self) -> list[ReplicatedSite]:
        """Every site whose data this site holds by replication, by site code."""
        with self._store.read() as conn:
            return [_site(r) for r in conn.execute(select(t.site_data).order_by("site_code"))]

    def site(self, code: str) -> ReplicatedSite | None:
        sd = t.site_data
        query = select(sd).where(sd.c.site_code == normal_site_code(code))
        with self._store.read() as conn:
            row = conn.execute(query).first()
        return _site(row) if row is not None else None

    def apply(
        self,
        child: str,
        *,
        after: int,
        messages: Sequence[tuple[int, StatusMessage]],
        last_record_id: int,
        pictures: Sequence[SitePicture],
        at: datetime,
    ) -> AppliedSiteData:
        """One page pulled from `child`, in one transaction: its messages after the child's
        RecordID `after` (each with its RecordID there), the pictures of the child and of
        the sites below it, and the link moved on to `last_record_id`. A page that does not
        start where the link stands is refused (`SiteDatabaseError`)."""
        code = normal_site_code(child)
        when = utc(at, "at")
        with self._store.begin() as conn:
            held = self._claim(conn, code, when)
            if held != after:
                raise SiteDatabaseError(
                    f"site data from {code} after RecordID {after} refused: this site holds "
                    f"its status messages up to RecordID {held}"
                )
            added = 0
            for record_id, msg in messages:
                row = message_values(msg) | {
                    "source_site": code,
                    "source_record_id": record_id,
                    "received_at": when,
                }
                # RETURNING says whether it was inserted (PostgreSQL gives no rowcount here).
                inserted = conn.execute(
                    insert_or_ignore(conn, t.status_message)
                    .values(**row)
                    .returning(t.status_message.c.record_id)
                ).all()
                added += len(inserted)
            changed = False
            for picture in pictures:
                changed |= self._put(conn, code, picture, when)
            conn.execute(
                update(t.site_data_link)
                .where(t.site_data_link.c.child_site_code == code)
                .values(
                    last_record_id=max(last_record_id, held),
                    last_success_time=when,
                    consecutive_failures=0,
                    last_error_text=None,
                )
            )
        return AppliedSiteData(added, changed)

    def _claim(self, conn: Connection, code: str, at: datetime) -> int:
        """Lock the child's link row (creating it) and record the check; its RecordID."""
        sl = t.site_data_link
        upsert(
            conn,
            sl,
            {"child_site_code": code},
            {"last_check_time": at},
            new={"last_record_id": 0, "consecutive_failures": 0},
        )
        row = conn.execute(select(sl.c.last_record_id).where(sl.c.child_site_code == code))
        return int(row.scalar_one())

    def _put(self, conn: Connection, via: str, picture: SitePicture, at: datetime) -> bool:
        sd = t.site_data
        code = normal_site_code(picture.site_code)
        old = conn.execute(select(sd).where(sd.c.site_code == code)).first()
        upsert(
            conn,
            sd,
            {"site_code": code},
            {
                "via_site": via,
                "as_of": utc(picture.as_of, f"as_of of site {code}"),
                "received_at": at,
                "sync_status": picture.sync_status,
                "sup_sync_status": picture.sup_sync_status,
                "alerts": picture.alerts,
                "stale_below": picture.stale_below,
            },
        )
        return old is None or not _site(old).picture.same_state(picture)

    def record_failure(self, child: str, error: str, *, at: datetime) -> SiteDataLink:
        """A pull from `child` failed: its data stays as it was; the link says why."""
        code = normal_site_code(child)
        when = utc(at, "at")
        sl = t.site_data_link
        with self._store.begin() as conn:
            self._claim(conn, code, when)
            conn.execute(
                update(sl)
                .where(sl.c.child_site_code == code)
                .values(
                    consecutive_failures=sl.c.consecutive_failures + 1,
                    last_error_text=error,
                )
            )
            row = conn.execute(select(sl).where(sl.c.child_site_code == code)).one()
        return _link(row)
