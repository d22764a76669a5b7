"""Importing revisions into the update server's store, all or nothing.

A WSUS export cabinet (`wsusutil export`, the disconnected path) is streamed: records are
read, parsed and written in batches of a few hundred rows, inside ONE transaction, so that
memory stays flat whatever the catalog's size and a failure anywhere leaves the store as it
was. Revisions already stored are skipped: a revision (update id, revision number) is
immutable, so importing the same cabinet twice changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from sqlalchemy import JSON, Connection, Table, bindparam, insert, select, update

from updatesync.metadata.document import parse_update
from updatesync.metadata.errors import ExportFormatError, MetadataError
from updatesync.metadata.export import ExportRecord, read_export
from updatesync.metadata.model import RevisionKey, UpdateRevision
from updatesync.updateserver import schema as t
from updatesync.updateserver.errors import ImportFailed
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
    started = datetime.now(UTC)
    clock = time.perf_counter()
    tally = _Tally()
    before = store.change_counter()
    try:
        with store.engine.begin() as conn:
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
    """What committing one batch of revisions did."""

    new_revisions: int
    unchanged_revisions: int
    conflicting: tuple[RevisionKey, ...]
    change_after: int


def commit_batch(store: UpdateStore, documents: Sequence[UpdateRevision]) -> BatchResult:
    """Store `documents` in one transaction of their own (a sync commits batch by batch)."""
    tally = _Tally()
    with store.engine.begin() as conn:
        counter = _write_batch(conn, list(documents), _lock_counter(conn), datetime.now(UTC), tally)
        conn.execute(update(t.store_state).values(change_counter=counter))
    return BatchResult(tally.new, tally.unchanged, tuple(tally.conflicting), counter)


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
) -> int:
    ids = list({doc.update_id for doc in batch})
    stored = {
        (uid, rev): xml
        for uid, rev, xml in conn.execute(
            select(t.revision.c.update_id, t.revision.c.revision_number, t.revision.c.xml).where(
                t.revision.c.update_id.in_(ids)
            )
        )
    }
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
    rows = [_revision_row(doc, counter + n, now) for n, doc in enumerate(new, start=1)]
    insert_rows(conn, t.revision, rows)
    relations = [row for doc in new for row in _relation_rows(doc)]
    if relations:
        insert_rows(conn, t.revision_relation, relations)
    _point_latest(conn, new)
    tally.new += len(new)
    return counter + len(new)


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, object]]) -> None:
    """Insert `rows` (all with the same keys) into `table` in the connection's transaction,
    the fastest way the database has: on PostgreSQL one COPY (psycopg's `cursor.copy`), about
    twice as fast as multi-row INSERTs for revisions and their large XML texts; elsewhere
    one executemany."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    columns = list(rows[0])
    as_json = {c.name for c in table.columns if isinstance(c.type, JSON)}
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([json.dumps(row[c]) if c in as_json else row[c] for c in columns])
    finally:
        cursor.close()


def _point_latest(conn: Connection, new: list[UpdateRevision]) -> None:
    """Make `update_item` name the highest revision of each update in `new`."""
    best: dict[str, UpdateRevision] = {}
    for doc in new:
        held = best.get(doc.update_id)
        if held is None or doc.revision > held.revision:
            best[doc.update_id] = doc
    current = dict(
        conn.execute(
            select(t.update_item.c.update_id, t.update_item.c.latest_revision).where(
                t.update_item.c.update_id.in_(list(best))
            )
        ).all()
    )
    inserts = []
    updates = []
    for uid, doc in best.items():
        row = {
            "b_update_id": uid,
            "latest_revision": doc.revision,
            "update_type": str(doc.update_type),
            "category_type": str(doc.category_type) if doc.category_type else None,
        }
        if uid not in current:
            inserts.append(row)
        elif doc.revision > current[uid]:
            updates.append(row)
    if inserts:
        conn.execute(
            insert(t.update_item).values(update_id=bindparam("b_update_id")),
            inserts,
        )
    if updates:
        conn.execute(
            update(t.update_item).where(t.update_item.c.update_id == bindparam("b_update_id")),
            updates,
        )


def _revision_row(doc: UpdateRevision, change_number: int, now: datetime) -> dict[str, object]:
    return {
        "update_id": doc.update_id,
        "revision_number": doc.revision,
        "update_type": str(doc.update_type),
        "category_type": str(doc.category_type) if doc.category_type else None,
        "title": doc.title(),
        "default_language": doc.default_language,
        "kb_article": doc.kb_article,
        "security_bulletin": doc.security_bulletin,
        "msrc_severity": doc.msrc_severity,
        "creation_date": doc.creation_date,
        "publication_state": str(doc.publication_state),
        "eula_id": doc.eula_id,
        "detectoid_type": doc.detectoid_type,
        "localized": [[p.language, p.title, p.description] for p in doc.localized],
        "files": [[f.name, f.size, f.sha1, f.sha256, f.modified] for f in doc.files],
        "xml": doc.xml,
        "change_number": change_number,
        "imported_at": now,
    }


def _relation_rows(doc: UpdateRevision) -> Iterator[dict[str, object]]:
    def row(kind: str, group: int, target: str, rev: int | None = None) -> dict[str, object]:
        return {
            "update_id": doc.update_id,
            "revision_number": doc.revision,
            "kind": kind,
            "group_no": group,
            "target_update_id": target,
            "target_revision": rev,
        }

    for group, ids in enumerate(doc.category_prerequisites):
        for uid in ids:
            yield row("category", group, uid)
    for group, ids in enumerate(doc.prerequisites):
        for uid in ids:
            yield row("prerequisite", group, uid)
    for bundled in doc.bundled_updates:
        yield row("bundle", 0, bundled.update_id, bundled.revision)
    for uid in doc.superseded_updates:
        yield row("supersedes", 0, uid)


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
