"""Status messages kept in a site database, and the questions asked of them.

The message itself (its fields, severities, ids and texts, and its log line format) is
`updatesync.logs.status_messages.StatusMessage`; this module stores and finds them. A parent
site's database may hold its children's messages too.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

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


class StatusMessages:
    """The status messages of a site database (`SiteDatabase.messages`)."""

    def __init__(self, store: SiteStore) -> None:
        self._store = store

    def add(self, msg: StatusMessage) -> int:
        """Store a status message; returns its record id."""
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
        values |= {f"istr{i}": s for i, s in enumerate(msg.strings)}
        with self._store.begin() as conn:
            key = conn.execute(insert(t.status_message).values(**values)).inserted_primary_key
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
        if limit is not None:
            query = query.limit(limit)
        with self._store.read() as conn:
            return [_status_message(r) for r in conn.execute(query)]
