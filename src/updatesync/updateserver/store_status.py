"""What an update server's store reports about itself: its status (`updateserver status`,
`GET /api/status`) and its sync history, one row per import or sync."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from updatesync.updateserver import schema as t

__all__ = ["HistoryEntry", "StoreStatus", "as_utc", "read_history", "read_status"]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One import or sync of this server, as the sync history shows it."""

    kind: str
    source: str
    started_at: datetime
    finished_at: datetime
    result: str
    error: str | None
    new_revisions: int
    unchanged_revisions: int
    conflicting_revisions: int
    change_before: int
    change_after: int


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """What `updatesync updateserver status` shows. `by_type` counts revisions."""

    revisions: int
    updates: int
    categories: int
    by_type: dict[str, int]
    by_category_type: dict[str, int]
    last_change: int
    subscription: dict[str, list[str]]
    last_sync: dict[str, Any] | None = field(default=None)
    target_groups: int = 0
    deployments: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def as_utc(value: Any) -> Any:
    """Every time we store is UTC: SQLite hands back naive datetimes, PostgreSQL aware ones in
    the server's time zone; both come back in UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def read_history(engine: Engine, *, limit: int | None = None) -> list[HistoryEntry]:
    """The sync history, newest first."""
    query = select(t.sync_history).order_by(t.sync_history.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    fields = HistoryEntry.__slots__
    return [HistoryEntry(**{name: as_utc(row[name]) for name in fields}) for row in rows]


def read_status(engine: Engine, subscription: dict[str, list[str]]) -> StoreStatus:
    """The counts of what the store holds, its last import or sync, and `subscription`
    (products, classifications, languages) as the status shows it."""
    with engine.connect() as conn:
        revisions = conn.execute(select(func.count()).select_from(t.revision)).scalar_one()
        updates = conn.execute(select(func.count()).select_from(t.update_item)).scalar_one()
        categories = conn.execute(
            select(func.count())
            .select_from(t.update_item)
            .where(t.update_item.c.update_type == "Category")
        ).scalar_one()
        by_type = dict(
            conn.execute(
                select(t.revision.c.update_type, func.count())
                .group_by(t.revision.c.update_type)
                .order_by(t.revision.c.update_type)
            ).all()
        )
        by_category_type = dict(
            conn.execute(
                select(t.revision.c.category_type, func.count())
                .where(t.revision.c.category_type.is_not(None))
                .group_by(t.revision.c.category_type)
                .order_by(t.revision.c.category_type)
            ).all()
        )
        last_change = conn.execute(select(t.store_state.c.change_counter)).scalar_one()
        groups = conn.execute(select(func.count()).select_from(t.target_group)).scalar_one()
        deployed = conn.execute(select(func.count()).select_from(t.deployment)).scalar_one()
    history = read_history(engine, limit=1)
    last_sync = None
    if history:
        entry = history[0]
        last_sync = {
            "kind": entry.kind,
            "source": entry.source,
            "started_at": entry.started_at.isoformat(),
            "finished_at": entry.finished_at.isoformat(),
            "result": entry.result,
            "error": entry.error,
            "new_revisions": entry.new_revisions,
        }
    return StoreStatus(
        revisions=revisions,
        updates=updates,
        categories=categories,
        by_type=by_type,
        by_category_type=by_category_type,
        last_change=last_change,
        subscription=subscription,
        last_sync=last_sync,
        target_groups=groups,
        deployments=deployed,
    )
