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
  what it lacks;
- with `Languages` (3.1.4.5.3.4), a language-specific update (its `upd:Properties` name
  languages: `revision_language`) is listed only when one of its languages is asked for;
  language-neutral updates always, and categories, classifications and detectoids are not
  filtered by language. With an anchor, a language sent with `Delta=false` (newly
  subscribed) lists its updates again, as a newly subscribed category does;
- with an anchor, a leaf that an older revision of the same bundle named already is not
  listed again when that older revision was listed before (it arrived by the anchor and the
  same filter, all `Delta=true`, selects it) and the leaf had arrived before it: the
  downstream got the leaf with it. A new revision of a bundle of 200 updates lists itself and
  what it newly names, not the 200 again, so a delta's listing is the size of its changes
  (a bundle's leaves are ~60 on real-shape catalogs; 100 changes listed ~3,500 leaves before).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    FromClause,
    Integer,
    Select,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

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
    languages: tuple[FilterItem, ...] = ()
    """Short names (`de`, `zh-cn`) with their Delta; empty: every language."""


PAGE = 1000
"""Revisions read per query while a listing is streamed: one page of keys is held at a time."""


def select_revisions(store: UpdateStore, wanted: RevisionFilter) -> list[RevisionKey]:
    """The revisions the filter selects, in the order they arrived at this server."""
    return list(iter_revisions(store, wanted))


def iter_revisions(
    store: UpdateStore, wanted: RevisionFilter, *, through: int | None = None, page: int = PAGE
) -> Iterator[RevisionKey]:
    """The revisions the filter selects, in the order they arrived at this server (then the
    leaves of the listed bundles not listed themselves), read `page` at a time.

    With `through` (the change counter read before), only what had arrived when the counter
    stood there: revisions are only ever added, each with the next change number in the
    order writers commit, so the pages together are the listing of that one moment, whatever
    commits meanwhile (a listing never skips a revision, nor lists one the anchor it comes
    with says is still to come). The categories are looked up now; the first page is read
    when the iterator is first advanced.
    """
    if not wanted.get_config and bool(wanted.categories) != bool(wanted.classifications):
        return iter(())
    with store.engine.connect() as conn:
        selected = _Selection.resolve(conn, wanted, through)
    return _listing(store, selected, page)


@dataclass(frozen=True, slots=True)
class _Selection:
    """A filter with its categories resolved: `where(revision)` says whether a revision
    (`t.revision` or an alias of it) is listed."""

    wanted: RevisionFilter
    through: int | None
    products: tuple[str, ...] = ()
    fresh_products: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    fresh_classes: tuple[str, ...] = ()

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(i.update_id.lower() for i in self.wanted.languages)

    @property
    def fresh_languages(self) -> tuple[str, ...]:
        return tuple(i.update_id.lower() for i in self.wanted.languages if not i.delta)

    @classmethod
    def resolve(cls, conn: Connection, wanted: RevisionFilter, through: int | None) -> _Selection:
        if wanted.get_config or not wanted.categories:
            return cls(wanted, through)
        return cls(
            wanted,
            through,
            tuple(with_descendants(conn, [i.update_id for i in wanted.categories])),
            tuple(with_descendants(conn, [i.update_id for i in wanted.categories if not i.delta])),
            tuple(i.update_id for i in wanted.classifications),
            tuple(i.update_id for i in wanted.classifications if not i.delta),
        )

    def listed_before(self, rev: FromClause) -> ColumnElement[bool] | None:
        """Whether revision `rev` was in an earlier listing of this filter (it arrived by the
        anchor, and the filter's categories and classifications, all sent with `Delta=true`,
        select it); None when that cannot be said: no anchor, or an item sent with
        `Delta=false` (newly subscribed, so not in the filter the anchor was taken with)."""
        wanted = self.wanted
        if (
            wanted.since is None
            or wanted.get_config
            or self.fresh_products
            or self.fresh_classes
            or self.fresh_languages
        ):
            return None
        clauses = [rev.c.change_number <= wanted.since, rev.c.update_type.in_(UPDATE_TYPES)]
        if wanted.categories:
            clauses += [names_any(self.products, rev), names_any(self.classes, rev)]
        if wanted.languages:
            clauses.append(in_languages(self.languages, rev))
        return and_(*clauses)

    def where(self, rev: FromClause) -> ColumnElement[bool]:
        wanted = self.wanted
        number = rev.c.change_number
        clauses: list[ColumnElement[bool]] = []
        if self.through is not None:
            clauses.append(number <= self.through)
        if wanted.get_config:
            clauses.append(rev.c.update_type.in_(CONFIG_TYPES))
            if wanted.since is not None:
                clauses.append(number > wanted.since)
            return and_(*clauses)
        clauses.append(rev.c.update_type.in_(UPDATE_TYPES))
        if wanted.languages:
            clauses.append(in_languages(self.languages, rev))
        if wanted.categories:
            clauses += [names_any(self.products, rev), names_any(self.classes, rev)]
            if wanted.since is not None:
                clauses.append(
                    or_(
                        number > wanted.since,
                        names_any(self.fresh_products, rev),
                        names_any(self.fresh_classes, rev),
                        for_languages(self.fresh_languages, rev),
                    )
                )
        elif wanted.since is not None:
            clauses.append(or_(number > wanted.since, for_languages(self.fresh_languages, rev)))
        return and_(*clauses)


def _listing(store: UpdateStore, selected: _Selection, page: int) -> Iterator[RevisionKey]:
    rev = t.revision
    query = (
        select(rev.c.update_id, rev.c.revision_number, rev.c.change_number, rev.c.id)
        .where(selected.where(rev))
        .order_by(rev.c.change_number, rev.c.id)
        .limit(page)
    )
    after: tuple[int, int] | None = None
    while True:
        paged = query
        if after is not None:  # keyset: past the last row read, by (change number, id)
            paged = query.where(rev.c.change_number >= after[0]).where(
                or_(rev.c.change_number > after[0], rev.c.id > after[1])
            )
        with store.engine.connect() as conn:
            rows = conn.execute(paged).all()
        for uid, number, _change, _id in rows:
            yield RevisionKey(uid, number)
        if len(rows) < page:
            break
        after = (rows[-1][2], rows[-1][3])
    if not selected.wanted.get_config and selected.wanted.categories:
        # Only a filter by product leaves a listed bundle's leaves out of the listing (a
        # hidden leaf is filed under no product). Without one every software update and
        # driver is listed, the leaves with them, and the leaves' query would read every
        # bundle's list to find none: at a million revisions, minutes before its first row,
        # past a downstream's read time-out (bench/scale.py).
        yield from _bundle_leaves(store, selected, page)


def _bundle_leaves(store: UpdateStore, selected: _Selection, page: int) -> Iterator[RevisionKey]:
    """The stored revisions that the listed bundles name, not listed themselves, by id.

    The listed bundles are read first (a materialized CTE), so the database starts from them
    whatever it guesses of the filter's selectivity: a delta's few, not every bundle. Each
    one's list (`revision.bundled`) is expanded by the database's own JSON function and
    joined to the stored revisions. One query (paging it would run the join again for each
    page), its rows streamed: a server-side cursor on PostgreSQL, SQLite's own stepping."""
    bundle = t.revision.alias("bundle")
    leaf = t.revision.alias("leaf")
    bundles = (
        select(bundle.c.update_id, bundle.c.bundled)
        .where(bundle.c.bundled.is_not(None))
        .where(selected.where(bundle))
        .cte("listed_bundle")
        .prefix_with("MATERIALIZED")
    )
    with store.engine.connect() as conn:  # one query, its rows streamed `page` at a time
        member, leaf_id, leaf_number = _bundled_members(conn, bundles.c.bundled)
        joined = bundles.join(member, true()).join(
            leaf, and_(leaf.c.update_id == leaf_id, leaf.c.revision_number == leaf_number)
        )
        named = (
            select(leaf.c.update_id, leaf.c.revision_number)
            .select_from(joined)
            .where(not_(selected.where(leaf)))
        )
        brought = _brought(conn, selected, bundles)
        # EXCEPT is a set operation (hashed or sorted): linear in the delta whatever the
        # planner guesses of the sizes (a NOT EXISTS was planned as a nested loop on
        # PostgreSQL without statistics: every candidate against every brought leaf).
        leaves = (named.except_(brought) if brought is not None else named.distinct()).subquery(
            "leaves"
        )
        query = select(leaves.c.update_id, leaves.c.revision_number).order_by(
            leaves.c.update_id, leaves.c.revision_number
        )
        rows = conn.execution_options(stream_results=True, yield_per=page).execute(query)
        for uid, number in rows:
            yield RevisionKey(uid, number)


def _brought(conn: Connection, selected: _Selection, bundles: CTE) -> Select | None:
    """In a delta, the leaves that an older revision of a listed bundle named when it was
    listed before (`_Selection.listed_before`), having arrived by then: the downstream holds
    them. Read from the listed bundles' ids (an index range per bundle). None when that
    cannot be said (no anchor, a `Delta=false` item)."""
    older = t.revision.alias("older")
    listed_before = selected.listed_before(older)
    if listed_before is None:
        return None
    member, leaf_id, leaf_number = _bundled_members(conn, older.c.bundled)
    leaf = t.revision.alias("brought_leaf")
    return (
        select(leaf.c.update_id, leaf.c.revision_number)
        .select_from(
            older.join(member, true()).join(
                leaf, and_(leaf.c.update_id == leaf_id, leaf.c.revision_number == leaf_number)
            )
        )
        .where(older.c.update_id.in_(select(bundles.c.update_id)))
        .where(older.c.bundled.is_not(None), listed_before)
        .where(leaf.c.change_number <= older.c.change_number)
    )


def _bundled_members(
    conn: Connection, bundled: ColumnElement[object]
) -> tuple[FromClause, ColumnElement[object], ColumnElement[object]]:
    """The members of a `revision.bundled` list as a table joined beside its row (the
    database's JSON array function), with each member's update id and revision number."""
    if conn.dialect.name == "postgresql":
        member = (
            func.json_array_elements(bundled)
            .table_valued("value", joins_implicitly=True)
            .alias("member")
        )
        value = member.c.value
        return (
            member,
            value.op("->>")(literal(0, literal_execute=True)),
            cast(value.op("->>")(literal(1, literal_execute=True)), Integer),
        )
    member = func.json_each(bundled).table_valued("value", joins_implicitly=True).alias("member")
    return (
        member,
        func.json_extract(member.c.value, "$[0]"),
        func.json_extract(member.c.value, "$[1]"),
    )


def names_any(category_ids: Sequence[str], rev: FromClause = t.revision) -> ColumnElement[bool]:
    """The revision (`rev`: the revision table or an alias) names one of `category_ids` in
    its prerequisites (any kind of group)."""
    if not category_ids:
        return false()
    rel = t.revision_relation.alias("named")
    return exists().where(
        and_(
            rel.c.update_id == rev.c.update_id,
            rel.c.revision_number == rev.c.revision_number,
            rel.c.kind.in_(("category", "prerequisite")),
            rel.c.target_update_id.in_(list(category_ids)),
        )
    )


def for_languages(languages: Sequence[str], rev: FromClause = t.revision) -> ColumnElement[bool]:
    """The revision is language-specific, for one of `languages` (none: false)."""
    if not languages:
        return false()
    lang = t.revision_language.alias("for_language")
    return exists().where(
        lang.c.update_id == rev.c.update_id,
        lang.c.revision_number == rev.c.revision_number,
        lang.c.language.in_(list(languages)),
    )


def in_languages(languages: Sequence[str], rev: FromClause = t.revision) -> ColumnElement[bool]:
    """The revision is language-neutral or for one of `languages`."""
    lang = t.revision_language.alias("any_language")
    specific = exists().where(
        lang.c.update_id == rev.c.update_id, lang.c.revision_number == rev.c.revision_number
    )
    return or_(not_(specific), for_languages(languages, rev))


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
            .where(rel.c.kind == t.reverse_kind("category"))
            .where(rel.c.target_update_id.in_(list(frontier)))
        )
        frontier = {uid for (uid,) in conn.execute(children)} - found
        found |= frontier
    return sorted(found)
