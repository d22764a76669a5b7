"""Status messages kept in a site database, and the questions asked of them.

The message itself (its fields, severities, ids and texts, and its log line format) is
`updatesync.logs.status_messages.StatusMessage`; this module stores and finds them. A parent
site's database may hold its children's messages too.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, func, insert, select

from updatesync.logs.status_messages import StatusMessage
from updatesync.site.database import schema as t
from updatesync.site.database.store import SiteStore, read_time, utc
from updatesync.vocabulary import MessageSeverity


def _status_message(row: Any) -> StatusMessage:
    return StatusMessage(
        message_id=row.message_id,
        severity=MessageSeverity(row.severity),
        level=row.level,
        source=row.source,
        component=row.component,
        site_code=row.site_code,
        system=row.system,
        process_id=row.process_id,
        thread_id=row.thread_id,
        time=read_time(row.time),  # type: ignore[arg-type]  # NOT NULL column
        strings=tuple(getattr(row, f"istr{i}") for i in range(10)),
        attributes=tuple((int(k), str(v)) for k, v in row.attributes),
        last_error=row.last_error,
    )


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A status message as a site database holds it: its RecordID here, and for one
    replicated from a child site, which child and when it arrived."""

    record_id: int
    message: StatusMessage
    source_site: str | None = None
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of status messages in RecordID order, how many match the filters in all,
    and whether more follow the page."""

    messages: list[StoredMessage]
    count: int
    more: bool


Order = Literal["newest", "oldest"]


def message_values(msg: StatusMessage) -> dict[str, Any]:
    values: dict[str, Any] = {
        "message_id": msg.message_id,
        "severity": msg.severity.value,
        "level": msg.level,
        "source": msg.source,
        "component": msg.component,
        "site_code": msg.site_code,
        "system": msg.system,
        "process_id": msg.process_id,
        "thread_id": msg.thread_id,
        "time": utc(msg.time, f"status message {msg.message_id}"),
        "attributes": [list(a) for a in msg.attributes],
        "last_error": msg.last_error,
    }
    return values | {f"istr{i}": s for i, s in enumerate(msg.strings)}


def _filtered(
    query: Select[Any],
    *,
    site_code: str | None,
    message_id: int | Collection[int] | None,
    severity: str | None,
    component: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[Any]:
    sm = t.status_message
    if site_code is not None:
        query = query.where(sm.c.site_code == site_code.upper())
    if isinstance(message_id, int):
        query = query.where(sm.c.message_id == message_id)
    elif message_id is not None:
        query = query.where(sm.c.message_id.in_(list(message_id)))
    if severity is not None:
        query = query.where(sm.c.severity == MessageSeverity(severity).value)
    if component is not None:
        query = query.where(sm.c.component == component)
    if since is not None:
        query = query.where(sm.c.time >= utc(since, "since"))
    if until is not None:
        query = query.where(sm.c.time < utc(until, "until"))
    return query


class StatusMessages:
    """The status messages of a site database (`SiteDatabase.messages`)."""

    def __init__(self, store: SiteStore) -> None:
        self._store = store

    def add(self, msg: StatusMessage) -> int:
        """Store a status message; returns its record id."""
        with self._store.begin() as conn:
            key = conn.execute(
                insert(t.status_message).values(**message_values(msg))
            ).inserted_primary_key
        return int(key[0])  # type: ignore[index]

    def find(
        self,
        *,
        site_code: str | None = None,
        message_id: int | Collection[int] | None = None,
        severity: str | None = None,
        component: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[StatusMessage]:
        """Status messages, newest first. `since` is inclusive, `until` exclusive; no filter
        means every site (a parent's database may hold its children's messages)."""
        sm = t.status_message
        query = select(sm).order_by(sm.c.time.desc(), sm.c.record_id.desc())
        query = _filtered(
            query,
            site_code=site_code,
            message_id=message_id,
            severity=severity,
            component=component,
            since=since,
            until=until,
        )
        if limit is not None:
            query = query.limit(limit)
        with self._store.read() as conn:
            return [_status_message(r) for r in conn.execute(query)]

    def page(
        self,
        *,
        limit: int,
        order: Order = "newest",
        beyond: int | None = None,
        site_code: str | None = None,
        message_id: int | Collection[int] | None = None,
        severity: str | None = None,
        component: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> MessagePage:
        """Up to `limit` messages matching the filters in RecordID order (`newest`: highest
        first; `oldest`: lowest first), those beyond RecordID `beyond` in that order when
        given (below it for newest, above it for oldest), and how many match the filters
        in all. A message stored meanwhile takes a higher RecordID than any before it, so
        paging on from `beyond` neither repeats nor skips one of those it pages over."""
        sm = t.status_message
        filters = {
            "site_code": site_code,
            "message_id": message_id,
            "severity": severity,
            "component": component,
            "since": since,
            "until": until,
        }
        newest = order == "newest"
        query = _filtered(select(sm), **filters).order_by(
            sm.c.record_id.desc() if newest else sm.c.record_id.asc()
        )
        if beyond is not None:
            query = query.where(sm.c.record_id < beyond if newest else sm.c.record_id > beyond)
        counting = _filtered(select(func.count()).select_from(sm), **filters)
        with self._store.snapshot() as conn:
            rows = list(conn.execute(query.limit(limit + 1)))
            count = int(conn.execute(counting).scalar_one())
        return MessagePage([_stored(r) for r in rows[:limit]], count, len(rows) > limit)

    def after(self, record_id: int, limit: int) -> list[StoredMessage]:
        """Up to `limit` messages stored after RecordID `record_id`, lowest first: what a
        parent site pulls of this site's messages (its own and those it holds of the sites
        below it)."""
        sm = t.status_message
        query = select(sm).where(sm.c.record_id > record_id).order_by(sm.c.record_id)
        with self._store.read() as conn:
            return [_stored(r) for r in conn.execute(query.limit(limit))]

    def last_record_id(self) -> int:
        """The highest RecordID stored; 0 when there is none."""
        with self._store.read() as conn:
            value = conn.execute(select(func.max(t.status_message.c.record_id))).scalar()
        return int(value or 0)


def _stored(row: Any) -> StoredMessage:
    return StoredMessage(
        record_id=int(row.record_id),
        message=_status_message(row),
        source_site=row.source_site,
        received_at=read_time(row.received_at),
    )
