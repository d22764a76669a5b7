"""Importing revisions into the update server's store, all or nothing.

A WSUS export cabinet (`wsusutil export`, the disconnected path) is streamed: records are
read, parsed and written in batches of a few hundred rows, inside ONE transaction, so that
memory stays flat whatever the catalog's size and a failure anywhere leaves the store as it
was. Revisions already stored are skipped: a revision (update id, revision number) is
immutable, so importing the same cabinet twice changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from sqlalchemy import Column, Connection, Table, insert, select, update

from updatesync.config.memory import tune_gc
from updatesync.metadata.document import parse_update
from updatesync.metadata.errors import ExportFormatError, MetadataError
from updatesync.metadata.export import ExportRecord, read_export
from updatesync.metadata.model import (
    CategoryType,
    PublicationState,
    RevisionKey,
    UpdateRevision,
    UpdateType,
)
from updatesync.updateserver import schema as t
from updatesync.updateserver.database import large_page_cache
from updatesync.updateserver.digest import add_revisions
from updatesync.updateserver.errors import ImportFailed
from updatesync.updateserver.localized import language_rows, localized_rows, subscribed_languages
from updatesync.updateserver.store import Progress, UpdateStore

BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one import did. `conflicting` are stored revisions that arrived again with a
    materially different XML text: the stored text is kept (revisions are immutable)."""

    source: str
    records: int
    new_revisions: int
    unchanged_revisions: int
    conflicting: tuple[RevisionKey, ...]
    change_before: int
    change_after: int
    seconds: float


@dataclass(slots=True)
class _Tally:
    records: int = 0
    new: int = 0
    unchanged: int = 0
    conflicting: list[RevisionKey] = field(default_factory=list)
    written: list[UpdateRevision] = field(default_factory=list)  # a sync's batch only
    held_before: set[str] = field(default_factory=set)  # a sync's batch only


def import_export_cabinet(
    store: UpdateStore, path: Path, *, progress: Progress | None = None
) -> ImportResult:
    """Import a WSUS export cabinet into `store` in one transaction."""
    path = Path(path)
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file; give the path of a WSUS export cabinet")
    with read_export(path) as export:
        return import_records(
            store,
            export.records(),
            source=str(path),
            label=f"{path.name}: metadata.txt",
            total=export.count,
            progress=progress,
        )


def import_records(
    store: UpdateStore,
    records: Iterable[ExportRecord],
    *,
    source: str,
    label: str = "record",
    total: int | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Parse and store `records` in one transaction; on any error, store nothing."""
    tune_gc()  # config.memory: the collector not run every 700 objects of a document's model
    started = datetime.now(UTC)
    clock = time.perf_counter()
    tally = _Tally()
    before = store.change_counter()
    try:
        with store.engine.begin() as conn, large_page_cache(conn):
            counter = before = _lock_counter(conn)
            for batch in _batches(records, BATCH_SIZE, label):
                counter = _write_batch(conn, batch, counter, started, tally)
                if progress is not None:
                    progress(tally.records, total or tally.records)
            conn.execute(update(t.store_state).values(change_counter=counter))
            result = _result(source, tally, before, counter, clock)
            conn.execute(insert(t.sync_history), [_history_row("import", result, started)])
    except Exception as exc:
        failed = _result(source, _Tally(records=tally.records), before, before, clock)
        write_history(store, "import", failed, started, error=_describe(exc))
        if isinstance(exc, MetadataError):
            raise ImportFailed(
                f"import of {source} failed: {exc}. Nothing was imported; the store is as "
                f"it was (change counter {before})."
            ) from exc
        raise
    return result


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What committing one batch of revisions did. `written` are the revisions stored by it
    (the others were held already); `held_before` the update ids of the batch the store held
    some revision of before it (a written revision of one of those is a changed update)."""

    new_revisions: int
    unchanged_revisions: int
    conflicting: tuple[RevisionKey, ...]
    change_after: int
    written: tuple[UpdateRevision, ...] = ()
    held_before: frozenset[str] = frozenset()


def commit_batch(
    store: UpdateStore, documents: Sequence[UpdateRevision], *, conn: Connection | None = None
) -> BatchResult:
    """Store `documents` in one transaction of their own (a sync commits batch by batch), on
    `conn` if given (`database.writer_connection`), else on a connection of the pool."""
    tally = _Tally()
    with ExitStack() as stack:
        if conn is None:
            conn = stack.enter_context(store.engine.connect())
        stack.enter_context(conn.begin())
        counter = _write_batch(
            conn, list(documents), _lock_counter(conn), datetime.now(UTC), tally, keep=True
        )
        conn.execute(update(t.store_state).values(change_counter=counter))
    return BatchResult(
        tally.new,
        tally.unchanged,
        tuple(tally.conflicting),
        counter,
        tuple(tally.written),
        frozenset(tally.held_before),
    )


def write_history(
    store: UpdateStore,
    kind: str,
    result: ImportResult,
    started: datetime,
    *,
    error: str | None = None,
) -> None:
    """Add one entry (an import or a sync, failed when `error` is given) to the history."""
    with store.engine.begin() as conn:
        conn.execute(insert(t.sync_history), [_history_row(kind, result, started, error=error)])


def _lock_counter(conn: Connection) -> int:
    """Take the store's write lock, then read the change counter (it must not move under us)."""
    conn.execute(update(t.store_state).values(change_counter=t.store_state.c.change_counter))
    return conn.execute(select(t.store_state.c.change_counter)).scalar_one()


def _batches(
    records: Iterable[ExportRecord], size: int, label: str
) -> Iterator[list[UpdateRevision]]:
    """Parse `records` and group them; each document must be the revision its record names."""
    iterator = iter(records)
    number = 0
    while chunk := list(islice(iterator, size)):
        parsed: list[UpdateRevision] = []
        for record in chunk:
            number += 1
            where = f"{label} record {number}"
            doc = parse_update(record.xml, where=where)
            if doc.update_id != record.update_id.lower() or doc.revision != record.revision:
                raise ExportFormatError(
                    f"the record says {record.update_id} rev {record.revision} but its "
                    f"document is {doc.update_id} rev {doc.revision}",
                    where=where,
                )
            parsed.append(doc)
        yield parsed


def _same_text(a: str, b: str) -> bool:
    """Equal once line ends are normalized as XML 1.0 (2.11) does: CRLF and lone CR to LF."""
    return a == b or _xml_line_ends(a) == _xml_line_ends(b)


def _xml_line_ends(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _write_batch(
    conn: Connection,
    batch: list[UpdateRevision],
    counter: int,
    now: datetime,
    tally: _Tally,
    *,
    keep: bool = False,
) -> int:
    """Write the revisions of `batch` the store lacks, numbered from `counter` + 1; returns
    the last number. With `keep`, `tally` also gets the revisions written and the batch's
    update ids held before it (what a sync reports: one read serves both)."""
    ids = list({doc.update_id for doc in batch})
    stored = {
        (uid, rev): xml
        for uid, rev, xml in conn.execute(
            select(t.revision.c.update_id, t.revision.c.revision_number, t.revision.c.xml).where(
                t.revision.c.update_id.in_(ids)
            )
        )
    }
    if keep:
        tally.held_before.update(uid for uid, _rev in stored)
    new: list[UpdateRevision] = []
    for doc in batch:
        tally.records += 1
        known = stored.get((doc.update_id, doc.revision))
        if known is None:
            stored[(doc.update_id, doc.revision)] = doc.xml
            new.append(doc)
        elif _same_text(known, doc.xml):
            tally.unchanged += 1
        else:
            tally.conflicting.append(doc.key)
    if not new:
        return counter
    imported_at = _bind(conn, t.revision.c.imported_at, now)
    insert_rows(
        conn,
        t.revision,
        REVISION_COLUMNS,
        [_revision_row(doc, counter + n, imported_at) for n, doc in enumerate(new, start=1)],
    )
    relations: list[tuple[object, ...]] = []
    languages: list[tuple[object, ...]] = []
    texts: list[tuple[object, ...]] = []
    subscribed = subscribed_languages(conn)
    for doc in new:
        _add_relation_rows(doc, relations)
        languages += language_rows(doc)
        texts += localized_rows(doc, subscribed)
    insert_rows(conn, t.revision_relation, RELATION_COLUMNS, relations)
    insert_rows(conn, t.revision_language, ("update_id", "revision_number", "language"), languages)
    insert_rows(conn, t.revision_localized, LOCALIZED_COLUMNS, texts)
    _list_license_files(conn, new)
    _point_latest(conn, new)
    add_revisions(conn, [(doc.update_id, doc.revision) for doc in new])
    tally.new += len(new)
    if keep:
        tally.written.extend(new)
    return counter + len(new)


REVISION_COLUMNS = (
    "update_id",
    "revision_number",
    "update_type",
    "category_type",
    "title",
    "default_language",
    "kb_article",
    "security_bulletin",
    "msrc_severity",
    "creation_date",
    "publication_state",
    "eula_id",
    "detectoid_type",
    "files",
    "xml",
    "change_number",
    "imported_at",
    "bundled",
)
RELATION_COLUMNS = (
    "update_id",
    "revision_number",
    "kind",
    "group_no",
    "target_update_id",
    "target_revision",
)
LOCALIZED_COLUMNS = ("update_id", "revision_number", "language", "title", "description")
_UPDATE_ITEM_COLUMNS = (
    "update_id",
    "latest_revision",
    "update_type",
    "category_type",
    "latest_xml_sha256",
)


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple[object, ...]]
) -> None:
    """Insert `rows` (tuples of `columns`' values, JSON columns already serialized, times as
    `_bind` gives them) into `table` in the connection's transaction, the fastest way the
    database has: on PostgreSQL one COPY (psycopg's `cursor.copy`), about twice as fast as
    multi-row INSERTs for revisions and their large XML texts; elsewhere one executemany of
    a plain INSERT, without SQLAlchemy's per-row parameter processing."""
    if not rows:
        return
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy:
                write = copy.write_row
                for row in rows:
                    write(row)
        finally:
            cursor.close()
        return
    marks = ", ".join([_placeholder(conn)] * len(columns))
    conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})", rows)


def _placeholder(conn: Connection) -> str:
    style = conn.dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    raise NotImplementedError(f"no bulk insert for the {style} parameter style")


def _bind(conn: Connection, column: Column[datetime], value: datetime) -> object:
    """`value` as the dialect stores it in `column` (SQLite keeps date-times as text)."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(value) if process is not None else value


def _list_license_files(conn: Connection, new: list[UpdateRevision]) -> None:
    """The files of the license terms `new` name, as their metadata lists them (each EULA's
    once: the revisions naming one EULA list the same files)."""
    rows = {
        (doc.eula_id, f.sha1): (f.name, f.language or "", f.size)
        for doc in new
        if doc.eula_id is not None
        for f in doc.eula_files
    }
    if not rows:
        return
    quote = conn.dialect.identifier_preparer.quote
    mark = _placeholder(conn)
    conn.exec_driver_sql(
        f"INSERT INTO {quote(t.eula_file.name)} (eula_id, digest, file_name, language, size) "
        f"VALUES ({', '.join([mark] * 5)}) ON CONFLICT (eula_id, digest) DO NOTHING",
        [(eula, digest, *rest) for (eula, digest), rest in rows.items()],
    )


def _point_latest(conn: Connection, new: list[UpdateRevision]) -> None:
    """Make `update_item` name the highest revision of each update in `new`, with its
    document's digest: one upsert that only ever moves an update's latest revision up."""
    best: dict[str, UpdateRevision] = {}
    for doc in new:
        held = best.get(doc.update_id)
        if held is None or doc.revision > held.revision:
            best[doc.update_id] = doc
    quote = conn.dialect.identifier_preparer.quote
    table = quote(t.update_item.name)
    mark = _placeholder(conn)
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({', '.join(_UPDATE_ITEM_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(_UPDATE_ITEM_COLUMNS))}) "
        "ON CONFLICT (update_id) DO UPDATE SET latest_revision = excluded.latest_revision, "
        "update_type = excluded.update_type, category_type = excluded.category_type, "
        "latest_xml_sha256 = excluded.latest_xml_sha256 "
        f"WHERE excluded.latest_revision > {table}.latest_revision",
        [
            (
                uid,
                doc.revision,
                _TEXT[doc.update_type],
                _TEXT[doc.category_type] if doc.category_type else None,
                hashlib.sha256(doc.xml.encode("utf-8")).hexdigest(),
            )
            for uid, doc in best.items()
        ],
    )


_TEXT: dict[object, str] = {
    member: member.value for enum in (UpdateType, CategoryType, PublicationState) for member in enum
}
# What json.dumps writes (as SQLAlchemy's JSON type does), but with non-ASCII characters as
# they are, not as \uXXXX escapes: file names take less space, and any JSON reader reads the
# same values.
_json = json.JSONEncoder(ensure_ascii=False).encode


def _revision_row(
    doc: UpdateRevision, change_number: int, imported_at: object
) -> tuple[object, ...]:
    return (
        doc.update_id,
        doc.revision,
        _TEXT[doc.update_type],
        _TEXT[doc.category_type] if doc.category_type else None,
        doc.title(),
        doc.default_language,
        doc.kb_article,
        doc.security_bulletin,
        doc.msrc_severity,
        doc.creation_date,
        _TEXT[doc.publication_state],
        doc.eula_id,
        doc.detectoid_type,
        _json([[f.name, f.size, f.sha1, f.sha256, f.modified] for f in doc.files]),
        doc.xml,
        change_number,
        imported_at,
        _json([[b.update_id, b.revision] for b in doc.bundled_updates])
        if doc.bundled_updates
        else None,
    )


def _add_relation_rows(doc: UpdateRevision, rows: list[tuple[object, ...]]) -> None:
    uid, rev = doc.update_id, doc.revision
    for group, ids in enumerate(doc.category_prerequisites):
        rows.extend([(uid, rev, "category", group, target, None) for target in ids])
    for group, ids in enumerate(doc.prerequisites):
        rows.extend([(uid, rev, "prerequisite", group, target, None) for target in ids])
    rows.extend([(uid, rev, "supersedes", 0, target, None) for target in doc.superseded_updates])


def _result(source: str, tally: _Tally, before: int, after: int, clock: float) -> ImportResult:
    return ImportResult(
        source=source,
        records=tally.records,
        new_revisions=tally.new,
        unchanged_revisions=tally.unchanged,
        conflicting=tuple(tally.conflicting),
        change_before=before,
        change_after=after,
        seconds=time.perf_counter() - clock,
    )


def _history_row(
    kind: str, result: ImportResult, started: datetime, *, error: str | None = None
) -> dict[str, object]:
    return {
        "kind": kind,
        "source": result.source,
        "started_at": started,
        "finished_at": datetime.now(UTC),
        "result": "Failed" if error else "Succeeded",
        "error": error,
        "new_revisions": result.new_revisions,
        "unchanged_revisions": result.unchanged_revisions,
        "conflicting_revisions": len(result.conflicting),
        "change_before": result.change_before,
        "change_after": result.change_after,
    }


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
