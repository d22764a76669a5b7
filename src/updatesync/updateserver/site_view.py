"""What a site server reads from its update server: updates as configuration items.

WSyncMgr's second phase turns the update server's updates into configuration items in the
site database. It asks for the latest revision of each subscribed update changed since the
last phase (a change number), in pages, with the fields a CI holds: title, KB, bulletin,
severity, dates, product and classification, expired and superseded, and whether its
license terms are pending (their files not all downloaded yet). An update whose
superseded state changed (a newer update now supersedes it) counts as changed too, though its
own revision did not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, exists, select

from updatesync.metadata.model import CategoryType, RevisionKey
from updatesync.updateserver import license_terms
from updatesync.updateserver import schema as t
from updatesync.updateserver.localized import read_localized
from updatesync.updateserver.selection import UPDATE_TYPES, names_any, with_descendants
from updatesync.updateserver.store import UpdateStore

PAGE = 1000
WINDOW = 4
"""A page looks at up to WINDOW times its size of latest revisions for subscribed ones."""
_IN_CHUNK = 500
"""Ids per `IN (...)` list (SQLite's limit on bound parameters is far above)."""
CLASSIFICATION = "UpdateClassification"


@dataclass(frozen=True, slots=True)
class LocalizedText:
    """An update's title and description in one language."""

    language: str
    title: str
    description: str | None = None


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
    localized: tuple[LocalizedText, ...] = ()
    """Its title and description in each language asked for that the store keeps."""
    license_terms_pending: bool = False
    """It names license terms whose files this server has not completely downloaded: a site
    does not turn it into a configuration item until they are."""


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

    def to_json(self) -> dict[str, Any]:
        """The page as the admin API answers it (`items`, `next_after`, `change_counter`)."""
        return {
            "items": [
                {
                    "update_id": i.update_id,
                    "revision": i.revision,
                    "update_type": i.update_type,
                    "title": i.title,
                    "kb_article": i.kb_article,
                    "security_bulletin": i.security_bulletin,
                    "msrc_severity": i.msrc_severity,
                    "creation_date": i.creation_date,
                    "is_expired": i.is_expired,
                    "is_superseded": i.is_superseded,
                    "products": list(i.products),
                    "classifications": list(i.classifications),
                    "xml_sha256": i.xml_sha256,
                    "change_number": i.change_number,
                    "localized": [
                        {"language": t.language, "title": t.title, "description": t.description}
                        for t in i.localized
                    ],
                    "license_terms_pending": i.license_terms_pending,
                }
                for i in self.items
            ],
            "next_after": self.next_after,
            "change_counter": self.change_counter,
        }


def changed_updates(
    store: UpdateStore,
    *,
    since: int = 0,
    after: int | None = None,
    products: Sequence[str] = (),
    classifications: Sequence[str] = (),
    languages: Sequence[str] = (),
    limit: int = PAGE,
) -> UpdatePage:
    """One page of the subscribed updates whose latest revision (or superseded state) changed
    after change number `since`. With no products and no classifications, every update;
    with only one of the two, none (as the update server's own filter). `after` is the
    cursor returned with the previous page.

    A page costs the same whatever the catalog's size, and a page may hold fewer than
    `limit` updates (none, even) and not be the last: `next_after` says whether more may
    follow. SQLite reads the page in one query, in change number order, testing each latest
    revision for the subscription as it goes; PostgreSQL would rather test every latest
    revision of the catalog and sort them for each page, so there a page looks at the next
    `WINDOW` x `limit` latest revisions by change number and keeps the subscribed ones.
    Then, for the page's updates only: their categories and prerequisites, the kinds of
    those categories, whether another update supersedes them, and their localized
    properties in `languages` (those the store keeps: its subscription's, `localized.py`)."""
    with store.engine.connect() as conn:
        counter = conn.execute(select(t.store_state.c.change_counter)).scalar_one()
        if bool(products) != bool(classifications):
            return UpdatePage((), None, counter)
        cursor = since if after is None else max(since, after)
        wanted_products = set(with_descendants(conn, products)) if products else set()
        wanted_classes = {c.lower() for c in classifications}
        subscribed = (
            [names_any(sorted(wanted_products)), names_any(sorted(wanted_classes))]
            if products
            else []
        )
        named: dict[str, list[tuple[str, str | None]]] = {}
        if conn.dialect.name == "postgresql":
            rows, next_after, named = _window_page(
                conn, cursor, limit, wanted_products if products else None, wanted_classes
            )
        else:
            rev = t.revision
            rows = conn.execute(
                select(*_SUMMARY_COLUMNS)
                .join(t.update_item, t.is_latest(rev))
                .where(rev.c.update_type.in_(UPDATE_TYPES))
                .where(rev.c.change_number > cursor)
                .where(*subscribed)
                .order_by(rev.c.change_number)
                .limit(limit)
            ).all()
            next_after = rows[-1][-1] if len(rows) == limit else None
            if rows:
                # The page's categories and prerequisites, found as the page was: its
                # change numbers' range of the change number index, not a list of ids.
                named = {row[0]: [] for row in rows}
                named.update(_named_between(conn, cursor, rows[-1][-1], subscribed))
        if next_after is None and since > 0:  # nothing is unchanged since change 0
            listed = {row[0] for row in rows}
            rows += [r for r in _newly_superseded(conn, since, subscribed) if r[0] not in listed]
        items = _summaries(conn, rows, named)
        if languages and items:
            texts = read_localized(
                conn, [RevisionKey(i.update_id, i.revision) for i in items], languages
            )
            order = [lang.lower() for lang in languages]
            items = [
                replace(
                    i,
                    localized=tuple(
                        LocalizedText(lang, *texts[i.update_id][lang])
                        for lang in order
                        if lang in texts.get(i.update_id, {})
                    ),
                )
                for i in items
            ]
    return UpdatePage(tuple(items), next_after, counter)


def _window_page(
    conn: Connection,
    cursor: int,
    limit: int,
    wanted_products: set[str] | None,
    wanted_classes: set[str],
) -> tuple[list[Row[Any]], int | None, dict[str, list[tuple[str, str | None]]]]:
    """A page from the next `WINDOW` x `limit` latest revisions after `cursor`: (its rows,
    `next_after`, the categories of the window's updates). `wanted_products` None: every
    update is subscribed."""
    rev = t.revision
    span = limit * WINDOW if wanted_products is not None else limit  # every one is kept
    latest = (
        select(rev.c.id, rev.c.update_id, rev.c.revision_number, rev.c.change_number)
        .join(t.update_item, t.is_latest(rev))
        .where(rev.c.update_type.in_(UPDATE_TYPES))
        .where(rev.c.change_number > cursor)
        .order_by(rev.c.change_number)
        .limit(span)
    )
    window = conn.execute(latest).all()
    # The window's categories in one query joined to it (not thousands of bound ids).
    rel, ahead, target = t.revision_relation, latest.subquery("ahead"), t.update_item.alias()
    named: dict[str, list[tuple[str, str | None]]] = {uid: [] for _id, uid, *_ in window}
    for uid, named_id, kind in conn.execute(
        select(ahead.c.update_id, rel.c.target_update_id, target.c.category_type)
        .join(
            rel,
            (rel.c.update_id == ahead.c.update_id)
            & (rel.c.revision_number == ahead.c.revision_number),
        )
        .outerjoin(target, target.c.update_id == rel.c.target_update_id)
        .where(rel.c.kind.in_(("category", "prerequisite")))
    ):
        named.setdefault(uid, []).append((named_id, kind))
    chosen: list[int] = []
    last_change = None
    for rev_id, uid, _number, change in window:
        categories = [c for c, _kind in named.get(uid, ())]
        if wanted_products is None or (
            any(c in wanted_products for c in categories)
            and any(c in wanted_classes for c in categories)
        ):
            chosen.append(rev_id)
            last_change = change
            if len(chosen) == limit:
                break
    rows: list[Row[Any]] = []
    for start in range(0, len(chosen), _IN_CHUNK):
        rows += conn.execute(
            select(*_SUMMARY_COLUMNS)
            .join(t.update_item, t.is_latest(rev))
            .where(rev.c.id.in_(chosen[start : start + _IN_CHUNK]))
            .order_by(rev.c.change_number)
        ).all()
    if len(chosen) == limit:
        next_after = last_change
    elif len(window) == span:
        next_after = window[-1][3]
    else:
        next_after = None
    return rows, next_after, named


def changed_categories(store: UpdateStore, *, since: int = 0) -> list[CategorySummary]:
    """The categories whose latest revision changed after `since`, parents first."""
    rev, item = t.revision, t.update_item
    query = (
        select(rev.c.update_id, rev.c.revision_number, rev.c.category_type, rev.c.title)
        .add_columns(rev.c.change_number)
        .join(item, t.is_latest(rev))
        # Found from update_item's type index, a few thousand rows whatever the catalog: by
        # the revisions' change numbers alone, SQLite walked every revision of the store (a
        # million, 16 GB: the site's call timed out).
        .where(item.c.update_type == "Category")
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


_SUPERSEDING = t.revision_relation.alias("superseding")
_SUPERSEDING_ITEM = t.update_item.alias("superseding_item")
_SUMMARY_COLUMNS = (
    t.revision.c.update_id,
    t.revision.c.revision_number,
    t.revision.c.update_type,
    t.revision.c.title,
    t.revision.c.kb_article,
    t.revision.c.security_bulletin,
    t.revision.c.msrc_severity,
    t.revision.c.creation_date,
    t.revision.c.publication_state,
    t.update_item.c.latest_xml_sha256,
    t.revision.c.eula_id,
    # Whether the latest revision of another update supersedes it: one probe of the
    # reverse index for each row.
    exists()
    .where(
        _SUPERSEDING.c.target_update_id == t.revision.c.update_id,
        _SUPERSEDING.c.kind == t.reverse_kind("supersedes"),
        _SUPERSEDING_ITEM.c.update_id == _SUPERSEDING.c.update_id,
        _SUPERSEDING_ITEM.c.latest_revision == _SUPERSEDING.c.revision_number,
    )
    .label("is_superseded"),
    t.revision.c.change_number,
)
"""What a summary is built from, read with the latest revision itself, joined to its
`update_item` (the change number last: the page's cursor). Nothing here is stored after the
document in the revision's row: on SQLite reading such a column walks the document's
overflow pages."""


def _newly_superseded(
    conn: Connection, since: int, subscribed: list[ColumnElement[bool]]
) -> list[Row[Any]]:
    """Latest revisions of subscribed updates that a revision changed after `since`
    supersedes, themselves unchanged since (those were listed by the pages already)."""
    rel, rev, item = t.revision_relation, t.revision, t.update_item
    # The revisions changed after `since` first (a delta's few, by the change number index),
    # then their supersedes relations, whatever the planner guesses of either.
    changed = (
        select(rev.c.update_id, rev.c.revision_number)
        .where(rev.c.change_number > since)
        .cte("changed")
        .prefix_with("MATERIALIZED")
    )
    superseding = (
        select(rel.c.target_update_id)
        .join(
            changed,
            (changed.c.update_id == rel.c.update_id)
            & (changed.c.revision_number == rel.c.revision_number),
        )
        .where(rel.c.kind == "supersedes")
    )
    # Superseded already at `since` (real updates supersede overlapping windows of older ones):
    # their superseded state did not change. Asked of each candidate through the reverse
    # index, not by listing every supersedes relation up to `since` (the whole catalog's).
    old, older = rel.alias("old"), rev.alias("older")
    before = exists().where(
        old.c.target_update_id == rev.c.update_id,
        old.c.kind == t.reverse_kind("supersedes"),
        older.c.update_id == old.c.update_id,
        older.c.revision_number == old.c.revision_number,
        older.c.change_number <= since,
    )
    query = (
        select(*_SUMMARY_COLUMNS)
        .join(item, t.is_latest(rev))
        .where(rev.c.update_id.in_(superseding))
        .where(~before)
        .where(rev.c.update_type.in_(UPDATE_TYPES))
        .where(rev.c.change_number <= since)
        .where(*subscribed)
        .order_by(rev.c.change_number)
    )
    return list(conn.execute(query))


def _named_between(
    conn: Connection, cursor: int, last: int, subscribed: list[ColumnElement[bool]]
) -> dict[str, list[tuple[str, str | None]]]:
    """The categories and prerequisites named by the latest revisions of updates with a
    change number in (`cursor`, `last`] (a page, found again by the range of its change
    numbers), with each one's category type, by update id, in stored order."""
    rev, rel, target = t.revision, t.revision_relation, t.update_item.alias("named")
    query = (
        select(rev.c.update_id, rel.c.target_update_id, target.c.category_type)
        .join(t.update_item, t.is_latest(rev))
        .join(
            rel,
            (rel.c.update_id == rev.c.update_id) & (rel.c.revision_number == rev.c.revision_number),
        )
        .outerjoin(target, target.c.update_id == rel.c.target_update_id)
        .where(rev.c.update_type.in_(UPDATE_TYPES))
        .where(rev.c.change_number > cursor, rev.c.change_number <= last)
        .where(rel.c.kind.in_(("category", "prerequisite")))
        .where(*subscribed)
    )
    named: dict[str, list[tuple[str, str | None]]] = {}
    for uid, named_id, kind in conn.execute(query):
        named.setdefault(uid, []).append((named_id, kind))
    return named


def _named(conn: Connection, latest: dict[str, int]) -> dict[str, list[tuple[str, str | None]]]:
    """The categories and prerequisites each update's latest revision names (`latest`:
    update id -> its latest revision number), with each one's category type, by update id,
    in stored order."""
    rel, target = t.revision_relation, t.update_item.alias("named")
    ids = sorted(latest)
    named: dict[str, list[tuple[str, str | None]]] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        query = (
            select(
                rel.c.update_id,
                rel.c.revision_number,
                rel.c.target_update_id,
                target.c.category_type,
            )
            .outerjoin(target, target.c.update_id == rel.c.target_update_id)
            .where(
                rel.c.update_id.in_(ids[start : start + _IN_CHUNK]),
                rel.c.kind.in_(("category", "prerequisite")),
            )
        )
        for uid, number, named_id, kind in conn.execute(query):
            if latest[uid] == number:
                named.setdefault(uid, []).append((named_id, kind))
    return named


def _summaries(
    conn: Connection, rows: list[Row[Any]], named: dict[str, list[tuple[str, str | None]]]
) -> list[UpdateSummary]:
    """The summaries of `rows` (latest revisions, `_SUMMARY_COLUMNS`), in their order;
    `named` holds what `_named` gives for some of them already."""
    missing = {row[0]: row[1] for row in rows if row[0] not in named}
    if missing:
        named = {**named, **_named(conn, missing)}
    pending = license_terms.pending_eulas(conn, (row[10] for row in rows if row[10]))
    out: list[UpdateSummary] = []
    for (
        uid,
        number,
        kind,
        title,
        kb,
        bulletin,
        severity,
        created,
        state,
        digest,
        eula,
        superseded,
        change,
    ) in rows:
        categories = named.get(uid, ())
        out.append(
            UpdateSummary(
                update_id=uid,
                revision=number,
                update_type=kind,
                title=title,
                kb_article=kb,
                security_bulletin=bulletin,
                msrc_severity=severity,
                creation_date=created,
                is_expired=state == "Expired",
                is_superseded=bool(superseded),
                products=tuple(
                    dict.fromkeys(c for c, k in categories if k not in (None, CLASSIFICATION))
                ),
                classifications=tuple(
                    dict.fromkeys(c for c, k in categories if k == CLASSIFICATION)
                ),
                xml_sha256=digest,
                change_number=change,
                license_terms_pending=eula in pending,
            )
        )
    return out
