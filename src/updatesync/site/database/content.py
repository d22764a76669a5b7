"""Content of a site: update sources and their content version, configuration items (one per
update) and categories.

The sync manager's phase 2 runs in ONE transaction (`Content.update`): CIs and categories
are written in batches through a `ContentUpdate` and, only if something changed, the update
source's content version rises by one in that same transaction (SPEC sections 1, 2.5 and 4),
so a failed sync leaves the CIs and the content version as they were.

Every write of a CI or a category stamps the row with the database's next replication
sequence number, in the write's transaction (`schema.replication_sequence`): database
replication (`replication.py`) pages through them by that number.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, Table, bindparam, delete, func, insert, select, update

from updatesync.site.database import schema as t
from updatesync.site.database.localized import (
    localized_by_update,
    localized_count,
    localized_languages,
    prune_localized,
    read_localized,
    same_localized,
    write_localized,
)
from updatesync.site.database.models import (
    MICROSOFT_UPDATE,
    Category,
    ConfigurationItem,
    ContentChange,
    LocalizedProperty,
    UpdateSource,
)
from updatesync.site.database.store import (
    SiteDatabaseError,
    SiteStore,
    insert_or_ignore,
    now,
    read_time,
    utc,
)

_CHUNK = 500
_CI_CONTENT = tuple(
    f.name
    for f in fields(ConfigurationItem)
    if f.name not in ("ci_id", "date_revised", "localized")
)


class ContentUpdate:
    """CIs and categories written inside one open transaction (see
    `Content.update`). Feed it in batches; nothing is visible to others, and
    nothing is kept, until the `with` block ends without an error."""

    def __init__(self, conn: Connection, change: ContentChange, at: datetime) -> None:
        self._conn = conn
        self.change = change
        self._at = at
        self._deletions: bool | None = None
        """Whether the site has recorded a deletion (looked up once, at the first write)."""
        self.localized_written = 0
        """Localized properties written (`ci_localized_property` rows)."""

    def keep_languages(self, languages: Iterable[str]) -> int:
        """Drop the localized properties of languages not among `languages`; how many."""
        return prune_localized(self._conn, languages)

    def upsert_categories(self, categories: Iterable[Category]) -> int:
        """Insert new categories and rewrite changed ones; returns how many changed."""
        changed = _upsert_categories(self._conn, categories)
        self.change.categories_changed += changed
        return changed

    def upsert_cis(self, items: Iterable[ConfigurationItem]) -> list[str]:
        """Insert new CIs and rewrite changed ones (by update id); returns the update ids of
        those that were new or changed, in the order given. An unchanged CI is not written.

        In bulk, whatever the batch's size: one read of the stored CIs of the batch (per
        500 ids), the new ones inserted at once (PostgreSQL: one COPY), the changed ones
        rewritten in one executemany, their replication sequence numbers taken at once.

        A CI that arrives with a `ci_id` (replicated from the parent site) keeps it; one
        whose stored `ci_id` differs is refused.
        """
        batch = list(items)
        if not batch:
            return []
        seen: set[str] = set()
        for item in batch:
            if item.update_id in seen:
                raise SiteDatabaseError(
                    f"configuration item batch: update {item.update_id} appears twice"
                )
            seen.add(item.update_id)
        ci = t.configuration_item
        lock_sequence(self._conn)  # before reading: no other writer acts on what we read
        stored: dict[str, Any] = {}
        for start in range(0, len(batch), _CHUNK):
            ids = [i.update_id for i in batch[start : start + _CHUNK]]
            query = select(*_STORED_COLUMNS).where(ci.c.update_id.in_(ids))
            stored.update({row[0]: row for row in self._conn.execute(query)})
        at = utc(self._at, "date_revised")
        stays_deleted = self._deleted_while_expired(batch, stored)
        # The localized properties held of the stored CIs given with theirs: a CI whose
        # texts changed alone takes a new replication sequence (children get the texts).
        held_texts = localized_by_update(
            self._conn,
            [i.update_id for i in batch if i.localized is not None and i.update_id in stored],
        )
        texts_only: list[dict[str, Any]] = []
        new: list[dict[str, Any]] = []
        new_with_id: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        in_order: list[dict[str, Any]] = []
        written: list[str] = []
        for item in batch:
            if item.update_id in stays_deleted:
                self.change.unchanged += 1  # deleted once expired; still expired: stays so
                continue
            values = _ci_values(item)
            row = stored.get(item.update_id)
            if row is not None:
                if item.ci_id is not None and item.ci_id != row[-1]:
                    raise SiteDatabaseError(
                        f"configuration item of update {item.update_id}: arrives as CI "
                        f"{item.ci_id} but this site holds it as CI {row[-1]}"
                    )
                if _unchanged(row, values):
                    if same_localized(item.localized, held_texts.get(item.update_id, ())):
                        self.change.unchanged += 1
                        continue
                    texts_only.append({"key": item.update_id})
                    written.append(item.update_id)
                    continue
            values["date_revised"] = (
                at if item.date_revised is None else utc(item.date_revised, "date_revised")
            )
            if row is not None:
                values["key"] = values.pop("update_id")
                changed.append(values)
            elif item.ci_id is None:
                new.append(values)
            else:
                values["ci_id"] = item.ci_id
                new_with_id.append(values)
            in_order.append(values)
            written.append(item.update_id)
        stamp(self._conn, in_order + texts_only)
        for rows in (new, new_with_id):
            insert_rows(self._conn, ci, rows)
        if changed:
            self._conn.execute(update(ci).where(ci.c.update_id == bindparam("key")), changed)
        if texts_only:  # the row as it is (its date_revised is its expiry time), renumbered
            self._conn.execute(
                update(ci)
                .where(ci.c.update_id == bindparam("key"))
                .values(replication_seq=bindparam("replication_seq")),
                texts_only,
            )
        # An update written again is no longer deleted (expiry.py): its deletion is no news.
        gone = t.deleted_item
        for start in range(0, len(written) if self._has_deletions() else 0, _CHUNK):
            chunk = written[start : start + _CHUNK]
            self._conn.execute(delete(gone).where(gone.c.update_id.in_(chunk)))
        self.change.inserted += len(new) + len(new_with_id)
        self.change.updated += len(changed) + len(texts_only)
        self.localized_written += write_localized(
            self._conn, [i for i in batch if i.update_id not in stays_deleted]
        )
        return written

    def _has_deletions(self) -> bool:
        if self._deletions is None:
            gone = t.deleted_item
            self._deletions = (
                self._conn.execute(select(gone.c.update_id).limit(1)).first() is not None
            )
        return self._deletions

    def _deleted_while_expired(
        self, batch: list[ConfigurationItem], stored: dict[str, Any]
    ) -> set[str]:
        """The updates of `batch` that arrive expired, are not held, and whose CI this site
        deleted (expiry.py): they stay deleted. A full sync reads every revision the update
        server still holds, expired ones included; writing them again would bring back, for
        another Updates Cleanup Age, the CIs the cleanup deleted. An update that comes back
        unexpired is written (and its deletion dropped)."""
        candidates = [i.update_id for i in batch if i.is_expired and i.update_id not in stored]
        if not candidates or not self._has_deletions():
            return set()
        gone = t.deleted_item
        found: set[str] = set()
        for start in range(0, len(candidates), _CHUNK):
            chunk = candidates[start : start + _CHUNK]
            found.update(
                self._conn.execute(
                    select(gone.c.update_id).where(gone.c.update_id.in_(chunk))
                ).scalars()
            )
        return found


_STORED_COLUMNS = tuple(t.configuration_item.c[name] for name in (*_CI_CONTENT, "ci_id"))
"""What a stored CI is compared on: its content (in `_CI_CONTENT` order), then its ci_id."""


def _ci_values(item: ConfigurationItem) -> dict[str, Any]:
    """The content columns of a CI to write (lists for the JSON columns)."""
    return {
        "update_id": item.update_id,
        "revision": item.revision,
        "title": item.title,
        "xml_sha256": item.xml_sha256,
        "kb_article": item.kb_article,
        "bulletin": item.bulletin,
        "severity": item.severity,
        "creation_date": item.creation_date,
        "products": list(item.products),
        "classifications": list(item.classifications),
        "is_superseded": item.is_superseded,
        "is_expired": item.is_expired,
    }


def _unchanged(row: Any, values: dict[str, Any]) -> bool:
    return all(_same(row[n], values[name]) for n, name in enumerate(_CI_CONTENT))


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (all with the same keys) in the connection's transaction, the fastest
    way the database has: on PostgreSQL one COPY (psycopg's `cursor.copy`), elsewhere one
    executemany."""
    if not rows:
        return
    columns = list(rows[0])
    dialect = conn.dialect
    if dialect.name != "postgresql":
        if dialect.paramstyle != "qmark":  # pragma: no cover - SQLite and PostgreSQL only
            conn.execute(insert(table), rows)
            return
        # SQLite: the statement once, each value through its column type's own conversion,
        # straight to the driver's executemany (SQLAlchemy's per-row work is most of the cost).
        convert = [
            _remembering(table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in columns
        ]
        quote = dialect.identifier_preparer.quote
        statement = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        conn.exec_driver_sql(
            statement,
            [
                tuple(
                    row[name] if to is None else to(row[name])
                    for name, to in zip(columns, convert, strict=True)
                )
                for row in rows
            ],
        )
        return
    as_json = [isinstance(table.c[name].type, JSON) for name in columns]
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [
                        json.dumps(row[name]) if is_json else row[name]
                        for name, is_json in zip(columns, as_json, strict=True)
                    ]
                )
    finally:
        cursor.close()


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(wanted, list):
        return list(stored or []) == wanted
    return bool(stored == wanted)


def _upsert_categories(conn: Connection, categories: Iterable[Category]) -> int:
    cat = t.category
    batch = {c.category_id: c for c in categories}
    if not batch:
        return 0
    lock_sequence(conn)  # before reading: no other writer acts on what we read
    stored: dict[str, Category] = {}
    keys = list(batch)
    for start in range(0, len(keys), _CHUNK):
        query = select(cat).where(cat.c.category_id.in_(keys[start : start + _CHUNK]))
        stored.update({r.category_id: category_from_row(r) for r in conn.execute(query)})
    new = [_category_values(c) for k, c in batch.items() if k not in stored]
    changed = [
        _category_values(c) | {"key": k} for k, c in batch.items() if k in stored and stored[k] != c
    ]
    stamp(conn, [*new, *changed])
    if new:
        conn.execute(insert(cat), new)
    if changed:
        conn.execute(
            update(cat).where(cat.c.category_id == bindparam("key")),
            [{k: v for k, v in row.items() if k != "category_id"} for row in changed],
        )
    return len(new) + len(changed)


def _remembering(convert: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """`convert`, done once per distinct value of a batch (the same write time, the same few
    product lists, the same flags come again and again)."""
    if convert is None:
        return None
    done: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        # By type and time zone too: True and 1, or one instant in two zones, are equal
        # but need not convert alike.
        plain = tuple(value) if isinstance(value, list) else value
        key = (type(value), plain, getattr(value, "tzinfo", None))
        try:
            return done[key]
        except KeyError:
            done[key] = converted = convert(value)
            return converted
        except TypeError:  # unhashable: not remembered
            return convert(value)

    return remembered


def lock_sequence(conn: Connection) -> None:
    """Take the replication sequence's row lock (PostgreSQL) or the write lock (SQLite) for
    the rest of the transaction, before reading what is about to be rewritten.

    Every writer of a replicated row holds this lock from before it reads until it commits,
    so writers take their numbers one after another and commit in number order: a reader of
    "the changes after N" can never pass a number that a slower transaction commits later
    (which a database sequence, handing numbers out without waiting, would allow), and
    there is no hole in the numbers once the writers are done."""
    seq = t.replication_sequence
    conn.execute(update(seq).where(seq.c.id == 1).values(last_seq=seq.c.last_seq))


def stamp(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Give each row about to be written (a CI or a category) the next replication sequence
    number, in order (users and API tokens take theirs the same way). The counter row is
    written first, so the numbers are this transaction's alone until it ends (see
    `lock_sequence` and `schema.replication_sequence`)."""
    if not rows:
        return
    seq = t.replication_sequence
    conn.execute(update(seq).where(seq.c.id == 1).values(last_seq=seq.c.last_seq + len(rows)))
    last = int(conn.execute(select(seq.c.last_seq).where(seq.c.id == 1)).scalar_one())
    for n, row in enumerate(rows, start=last - len(rows) + 1):
        row["replication_seq"] = n


def _category_values(c: Category) -> dict[str, Any]:
    return {
        "category_id": c.category_id,
        "category_type": c.category_type,
        "title": c.title,
        "parent_id": c.parent_id,
    }


def category_from_row(row: Any) -> Category:
    return Category(row.category_id, row.category_type, row.title, row.parent_id)


def ci_from_row(row: Any) -> ConfigurationItem:
    return ConfigurationItem(
        update_id=row.update_id,
        revision=row.revision,
        title=row.title,
        xml_sha256=row.xml_sha256,
        kb_article=row.kb_article,
        bulletin=row.bulletin,
        severity=row.severity,
        creation_date=row.creation_date,
        products=tuple(row.products),
        classifications=tuple(row.classifications),
        is_superseded=bool(row.is_superseded),
        is_expired=bool(row.is_expired),
        ci_id=row.ci_id,
        date_revised=read_time(row.date_revised),
    )


def source_from_row(row: Any) -> UpdateSource:
    return UpdateSource(row.unique_id, row.name, row.content_version)


def unknown_source(site_code: str, source_id: str) -> SiteDatabaseError:
    """The error for an update source the site database does not know."""
    return SiteDatabaseError(
        f"site {site_code}: update source {source_id} is not registered "
        "(add it with add_update_source)"
    )


class Content:
    """The update sources, configuration items and categories of a site database
    (`SiteDatabase.content`)."""

    def __init__(self, store: SiteStore) -> None:
        self._store = store

    # -- update sources and content version -----------------------------------------

    def update_sources(self) -> list[UpdateSource]:
        src = t.update_source
        with self._store.read() as conn:
            rows = conn.execute(select(src).order_by(src.c.unique_id))
            return [source_from_row(r) for r in rows]

    def add_update_source(self, unique_id: str, name: str) -> UpdateSource:
        """Register an update source (content version 0); an existing one is kept as is."""
        src = t.update_source
        key = unique_id.upper()
        with self._store.begin() as conn:
            # One statement: two first registrations at once both succeed (PostgreSQL).
            conn.execute(
                insert_or_ignore(conn, src).values(unique_id=key, name=name, content_version=0)
            )
        return next(s for s in self.update_sources() if s.unique_id == key)

    def version(self, source_id: str = MICROSOFT_UPDATE) -> int:
        """The content version of the update source `source_id`."""
        src = t.update_source
        with self._store.read() as conn:
            value = conn.execute(
                select(src.c.content_version).where(src.c.unique_id == source_id.upper())
            ).scalar()
        if value is None:
            raise unknown_source(self._store.site_code, source_id)
        return int(value)

    def set_version(self, version: int, *, source_id: str = MICROSOFT_UPDATE) -> None:
        """Set the content version (WSyncMgr.log: `Set content version of update source {..}
        for site CS1 to 33`)."""
        src = t.update_source
        with self._store.begin() as conn:
            done = conn.execute(
                update(src)
                .where(src.c.unique_id == source_id.upper())
                .values(content_version=version)
            ).rowcount
        if not done:
            raise unknown_source(self._store.site_code, source_id)

    # -- a sync's content update --------------------------------------------------------

    @contextmanager
    def update(
        self, source_id: str = MICROSOFT_UPDATE, *, at: datetime | None = None
    ) -> Iterator[ContentUpdate]:
        """One transaction for a sync's site-database phase: write CIs and categories through
        the `ContentUpdate` in as many batches as needed; when the block ends, the content
        version of `source_id` rises by one if anything changed, in the same transaction.
        An error in the block keeps nothing: CIs, categories and content version stay as
        they were. The result is in `.change` of the yielded object.

        The block holds the database's write lock (SQLite): write nothing else through this
        site database inside it (send status messages before or after), or that write waits
        for the block to end."""
        when = utc(at or now(), "content update")
        src = t.update_source
        key = source_id.upper()
        with self._store.begin() as conn:
            # Writing first takes the write lock before anything is read (SQLite).
            if not conn.execute(
                update(src).where(src.c.unique_id == key).values(unique_id=key)
            ).rowcount:
                raise unknown_source(self._store.site_code, source_id)
            before = conn.execute(
                select(src.c.content_version).where(src.c.unique_id == key)
            ).scalar_one()
            change = ContentChange(key, before, before)
            yield ContentUpdate(conn, change, when)
            if change.changed:
                conn.execute(
                    update(src)
                    .where(src.c.unique_id == key)
                    .values(content_version=src.c.content_version + 1)
                )
                change.content_version = before + 1

    def apply_ci_batch(
        self,
        items: Iterable[ConfigurationItem],
        *,
        categories: Iterable[Category] = (),
        source_id: str = MICROSOFT_UPDATE,
        at: datetime | None = None,
    ) -> ContentChange:
        """Categories and CIs upserted and, if anything changed, the content version raised by
        one, all in one transaction (see `update`)."""
        with self.update(source_id, at=at) as content:
            content.upsert_categories(categories)
            content.upsert_cis(items)
        return content.change

    # -- configuration items and categories -----------------------------------------

    def configuration_items(
        self, *, offset: int = 0, limit: int | None = None
    ) -> list[ConfigurationItem]:
        """The CIs in CI id order; `offset` and `limit` page through them."""
        ci = t.configuration_item
        query = select(ci).order_by(ci.c.ci_id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._store.read() as conn:
            return [ci_from_row(r) for r in conn.execute(query)]

    def configuration_item(self, update_id: str) -> ConfigurationItem | None:
        ci = t.configuration_item
        with self._store.read() as conn:
            row = conn.execute(select(ci).where(ci.c.update_id == update_id.lower())).first()
        return ci_from_row(row) if row is not None else None

    def ci_count(self) -> int:
        with self._store.read() as conn:
            return int(
                conn.execute(select(func.count()).select_from(t.configuration_item)).scalar_one()
            )

    def localized_languages(self) -> set[str]:
        """The languages the CIs have localized properties in."""
        with self._store.read() as conn:
            return localized_languages(conn)

    def localized_count(self) -> int:
        """How many localized properties the CIs have, in all languages."""
        with self._store.read() as conn:
            return localized_count(conn)

    def localized(self, update_ids: Sequence[str], language: str) -> dict[str, LocalizedProperty]:
        """The localized properties of those CIs in `language`, by update id."""
        with self._store.read() as conn:
            return read_localized(conn, update_ids, language)

    def revised_count(self, since: datetime, until: datetime) -> int:
        """How many CIs were last written (DateRevised) at or after `since` and before
        `until`."""
        ci = t.configuration_item
        query = (
            select(func.count())
            .select_from(ci)
            .where(ci.c.date_revised >= since, ci.c.date_revised < until)
        )
        with self._store.read() as conn:
            return int(conn.execute(query).scalar_one())

    def upsert_categories(self, categories: Iterable[Category]) -> int:
        """Insert or rewrite categories on their own (the content version is left alone; a
        sync writes them through `update`). Returns how many changed."""
        with self._store.begin() as conn:
            return _upsert_categories(conn, categories)

    def categories(self, category_type: str | None = None) -> list[Category]:
        cat = t.category
        query = select(cat).order_by(cat.c.category_type, cat.c.title, cat.c.category_id)
        if category_type is not None:
            query = query.where(cat.c.category_type == category_type)
        with self._store.read() as conn:
            return [category_from_row(r) for r in conn.execute(query)]
