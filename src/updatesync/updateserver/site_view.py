"""What a site server reads from its update server: updates as configuration items.

WSyncMgr's second phase turns the update server's updates into configuration items in the
site database. It asks for the latest revision of each subscribed update changed since the
last phase (a change number), in pages, with the fields a CI holds: title, KB, bulletin,
severity, dates, product and classification, expired and superseded. An update whose
superseded state changed (a newer update now supersedes it) counts as changed too, though its
own revision did not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from updatesync.metadata.model import CategoryType, RevisionKey
from updatesync.updateserver import schema as t
from updatesync.updateserver.selection import UPDATE_TYPES, names_any, with_descendants
from updatesync.updateserver.store import UpdateStore

PAGE = 1000


@dataclass(frozen=True, slots=True)
class UpdateSummary:
    """The latest revision of one update, as a configuration item needs it."""

    update_id: str
    revision: int
    update_type: str
    title: str
    kb_article: str | None
    security_bulletin: str | None
    msrc_severity: str | None
    creation_date: str | None
    is_expired: bool
    is_superseded: bool
    products: tuple[str, ...]
    classifications: tuple[str, ...]
    xml_sha256: str
    change_number: int


@dataclass(frozen=True, slots=True)
class CategorySummary:
    update_id: str
    revision: int
    category_type: str | None
    title: str
    parents: tuple[str, ...]
    change_number: int


@dataclass(frozen=True, slots=True)
class UpdatePage:
    items: tuple[UpdateSummary, ...]
    next_after: int | None
    """Pass as `after` for the next page; None when this was the last."""
    change_counter: int


def changed_updates(
    store: UpdateStore,
    *,
    since: int = 0,
    after: int | None = None,
    products: Sequence[str] = (),
    classifications: Sequence[str] = (),
    limit: int = PAGE,
) -> UpdatePage:
    """One page of the subscribed updates whose latest revision (or superseded state) changed
    after change number `since`. With no products and no classifications, every update;
    with only one of the two, none (as the update server's own filter). `after` is the
    cursor returned with the previous page."""
    rev, item = t.revision, t.update_item
    with store.engine.connect() as conn:
        counter = conn.execute(select(t.store_state.c.change_counter)).scalar_one()
        if bool(products) != bool(classifications):
            return UpdatePage((), None, counter)
        cursor = since if after is None else max(since, after)
        query = (
            select(rev.c.update_id, rev.c.revision_number, rev.c.change_number)
            .join(item, t.is_latest(rev))
            .where(rev.c.update_type.in_(UPDATE_TYPES))
            .where(rev.c.change_number > cursor)
            .order_by(rev.c.change_number)
            .limit(limit)
        )
        if products:
            query = query.where(names_any(with_descendants(conn, products))).where(
                names_any([c.lower() for c in classifications])
            )
        rows = conn.execute(query).all()
        keys = [RevisionKey(uid, number) for uid, number, _change in rows]
        next_after = rows[-1][2] if len(rows) == limit else None
        changes = {RevisionKey(uid, number): change for uid, number, change in rows}
        if next_after is None:
            keys += _newly_superseded(conn, since, set(keys), products, classifications)
        items = _summaries(conn, keys, changes)
    return UpdatePage(tuple(items), next_after, counter)


def changed_categories(store: UpdateStore, *, since: int = 0) -> list[CategorySummary]:
    """The categories whose latest revision changed after `since`, parents first."""
    rev, item = t.revision, t.update_item
    query = (
        select(rev.c.update_id, rev.c.revision_number, rev.c.category_type, rev.c.title)
        .add_columns(rev.c.change_number)
        .join(item, t.is_latest(rev))
        .where(rev.c.update_type == "Category")
        .where(rev.c.change_number > since)
        .order_by(rev.c.change_number)
    )
    order = {
        CategoryType.COMPANY: 0,
        CategoryType.PRODUCT_FAMILY: 1,
        CategoryType.PRODUCT: 2,
        CategoryType.UPDATE_CLASSIFICATION: 3,
    }
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
        keys = [RevisionKey(uid, number) for uid, number, *_ in rows]
        parents: dict[RevisionKey, list[str]] = {}
        columns = (t.revision_relation.c.kind, t.revision_relation.c.target_update_id)
        for uid, number, kind, target in t.rows_for_revisions(
            conn, t.revision_relation, columns, keys
        ):
            if kind == "category":
                parents.setdefault(RevisionKey(uid, number), []).append(target)
    found = [
        CategorySummary(
            uid, number, kind, title, tuple(parents.get(RevisionKey(uid, number), ())), change
        )
        for uid, number, kind, title, change in rows
    ]
    return sorted(found, key=lambda c: (order.get(c.category_type, 9), c.change_number))


def _newly_superseded(
    conn: Connection,
    since: int,
    already: set[RevisionKey],
    products: Sequence[str],
    classifications: Sequence[str],
) -> list[RevisionKey]:
    """Latest revisions of updates that a revision changed after `since` supersedes."""
    rel, rev, item = t.revision_relation, t.revision, t.update_item
    superseding = (
        select(rel.c.target_update_id)
        .join(
            rev,
            (rev.c.update_id == rel.c.update_id) & (rev.c.revision_number == rel.c.revision_number),
        )
        .where(rel.c.kind == "supersedes")
        .where(rev.c.change_number > since)
    )
    # Superseded already at `since` (real updates supersede overlapping windows of older ones):
    # their superseded state did not change.
    before = (
        select(rel.c.target_update_id)
        .join(
            rev,
            (rev.c.update_id == rel.c.update_id) & (rev.c.revision_number == rel.c.revision_number),
        )
        .where(rel.c.kind == "supersedes")
        .where(rev.c.change_number <= since)
    )
    query = (
        select(rev.c.update_id, rev.c.revision_number)
        .join(item, t.is_latest(rev))
        .where(rev.c.update_id.in_(superseding))
        .where(rev.c.update_id.not_in(before))
        .where(rev.c.update_type.in_(UPDATE_TYPES))
        # Those changed after `since` themselves were listed by the pages already.
        .where(rev.c.change_number <= since)
    )
    if products:
        query = query.where(names_any(with_descendants(conn, products))).where(
            names_any([c.lower() for c in classifications])
        )
    return [
        key
        for key in (RevisionKey(uid, number) for uid, number in conn.execute(query))
        if key not in already
    ]


def _summaries(
    conn: Connection, keys: list[RevisionKey], changes: dict[RevisionKey, int]
) -> list[UpdateSummary]:
    rev, rel = t.revision, t.revision_relation
    columns = (
        rev.c.update_type,
        rev.c.title,
        rev.c.kb_article,
        rev.c.security_bulletin,
        rev.c.msrc_severity,
        rev.c.creation_date,
        rev.c.publication_state,
        rev.c.xml,
        rev.c.change_number,
    )
    fields = {
        RevisionKey(r[0], r[1]): r[2:] for r in t.rows_for_revisions(conn, rev, columns, keys)
    }
    named: dict[RevisionKey, list[str]] = {}
    targets: set[str] = set()
    for uid, number, kind, target in t.rows_for_revisions(
        conn, rel, (rel.c.kind, rel.c.target_update_id), keys
    ):
        if kind in ("category", "prerequisite"):
            named.setdefault(RevisionKey(uid, number), []).append(target)
            targets.add(target)
    kinds = (
        dict(
            conn.execute(
                select(t.update_item.c.update_id, t.update_item.c.category_type).where(
                    t.update_item.c.update_id.in_(sorted(targets))
                )
            ).all()
        )
        if targets
        else {}
    )
    ids = sorted({k.update_id for k in keys})
    superseded = (
        set(
            conn.execute(
                select(rel.c.target_update_id)
                .join(t.update_item, t.is_latest(rel))
                .where(rel.c.kind == "supersedes")
                .where(rel.c.target_update_id.in_(ids))
            ).scalars()
        )
        if ids
        else set()
    )
    out: list[UpdateSummary] = []
    for key in keys:
        kind, title, kb, bulletin, severity, created, state, xml, change = fields[key]
        prods = tuple(
            dict.fromkeys(
                c for c in named.get(key, ()) if kinds.get(c) not in (None, "UpdateClassification")
            )
        )
        classes = tuple(
            dict.fromkeys(c for c in named.get(key, ()) if kinds.get(c) == "UpdateClassification")
        )
        out.append(
            UpdateSummary(
                update_id=key.update_id,
                revision=key.revision,
                update_type=kind,
                title=title,
                kb_article=kb,
                security_bulletin=bulletin,
                msrc_severity=severity,
                creation_date=created,
                is_expired=state == "Expired",
                is_superseded=key.update_id in superseded,
                products=prods,
                classifications=classes,
                xml_sha256=hashlib.sha256(xml.encode("utf-8")).hexdigest(),
                change_number=changes.get(key, change),
            )
        )
    return out
