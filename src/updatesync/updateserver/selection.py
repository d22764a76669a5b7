"""Which revisions a downstream server gets: the upstream side of GetRevisionIdList.

The rules (SPEC section 7 and [MS-WSUSSS] 3.1.4.5, as a real WSUS applies them):
- `GetConfig=true` lists categories, classifications and detectoids;
- `GetConfig=false` lists software and driver updates: an update is listed when it names
  one of the filter's categories (a product, or a family or company above it) AND one of its
  classifications; with neither given, every update; with only one of the two, none;
- with an anchor, only what changed after it, except for a category or classification the
  downstream marks `Delta=false` (newly subscribed: everything under it again);
- every revision is listed, not only the newest, so a downstream holds what its upstream
  holds (a real WSUS lists several revisions of one id too); the leaves of a listed bundle
  are listed with it, since a bundle is useless without them. The downstream asks only for
  what it lacks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Select, and_, exists, false, or_, select

from updatesync.metadata.model import RevisionKey
from updatesync.updateserver import schema as t
from updatesync.updateserver.store import UpdateStore

CONFIG_TYPES = ("Category", "Detectoid")
UPDATE_TYPES = ("Software", "Driver")


@dataclass(frozen=True, slots=True)
class FilterItem:
    """A category or classification of the filter (`IdAndDelta`)."""

    update_id: str
    delta: bool = True


@dataclass(frozen=True, slots=True)
class RevisionFilter:
    """The `ServerSyncFilter` of one GetRevisionIdList call, with the anchor decoded to the
    change number it stands for (None: from the beginning)."""

    get_config: bool
    since: int | None = None
    categories: tuple[FilterItem, ...] = ()
    classifications: tuple[FilterItem, ...] = ()


def select_revisions(store: UpdateStore, wanted: RevisionFilter) -> list[RevisionKey]:
    """The revisions the filter selects, in the order they arrived at this server."""
    rev = t.revision
    query = select(rev.c.update_id, rev.c.revision_number).order_by(rev.c.change_number)
    if wanted.get_config:
        query = query.where(rev.c.update_type.in_(CONFIG_TYPES))
        if wanted.since is not None:
            query = query.where(rev.c.change_number > wanted.since)
        with store.engine.connect() as conn:
            return [RevisionKey(uid, number) for uid, number in conn.execute(query)]

    query = query.where(rev.c.update_type.in_(UPDATE_TYPES))
    if bool(wanted.categories) != bool(wanted.classifications):
        return []
    with store.engine.connect() as conn:
        if wanted.categories:
            products = with_descendants(conn, [i.update_id for i in wanted.categories])
            fresh_products = with_descendants(
                conn, [i.update_id for i in wanted.categories if not i.delta]
            )
            classes = [i.update_id for i in wanted.classifications]
            fresh_classes = [i.update_id for i in wanted.classifications if not i.delta]
            query = query.where(names_any(products)).where(names_any(classes))
            if wanted.since is not None:
                query = query.where(
                    or_(
                        rev.c.change_number > wanted.since,
                        names_any(fresh_products),
                        names_any(fresh_classes),
                    )
                )
        elif wanted.since is not None:
            query = query.where(rev.c.change_number > wanted.since)
        listed = [RevisionKey(uid, number) for uid, number in conn.execute(query)]
        return listed + _bundle_leaves(conn, listed)


def names_any(category_ids: Sequence[str]) -> ColumnElement[bool]:
    """The revision names one of `category_ids` in its prerequisites (any kind of group)."""
    rel = t.revision_relation
    if not category_ids:
        return false()
    return exists().where(
        and_(
            rel.c.update_id == t.revision.c.update_id,
            rel.c.revision_number == t.revision.c.revision_number,
            rel.c.kind.in_(("category", "prerequisite")),
            rel.c.target_update_id.in_(list(category_ids)),
        )
    )


def with_descendants(conn: Connection, roots: Iterable[str]) -> list[str]:
    """`roots` and every category below them (a family's products, a company's families)."""
    item, rel = t.update_item, t.revision_relation
    found = {uid.lower() for uid in roots}
    frontier = set(found)
    while frontier:
        children: Select = (
            select(rel.c.update_id)
            .join(item, t.is_latest(rel))
            .where(item.c.update_type == "Category")
            .where(rel.c.kind == "category")
            .where(rel.c.target_update_id.in_(list(frontier)))
        )
        frontier = {uid for (uid,) in conn.execute(children)} - found
        found |= frontier
    return sorted(found)


def _bundle_leaves(conn: Connection, listed: list[RevisionKey]) -> list[RevisionKey]:
    """The stored revisions that the listed bundles name, not already listed."""
    rel = t.revision_relation
    columns = (rel.c.kind, rel.c.target_update_id, rel.c.target_revision)
    named = list(
        dict.fromkeys(
            RevisionKey(target, number)
            for _uid, _rev, kind, target, number in t.rows_for_revisions(conn, rel, columns, listed)
            if kind == "bundle" and number is not None
        )
    )
    seen = set(listed)
    held = {RevisionKey(uid, rev) for uid, rev in t.rows_for_revisions(conn, t.revision, (), named)}
    return [key for key in named if key in held and key not in seen]
