"""The revisions a WSUS export's package.xml declares, in a scratch SQLite file.

`read_export` (export.py) checks metadata.txt against package.xml: every record declared,
none twice, none missing. `DeclaredIndex` keeps the declared revisions on disk, through
SQLAlchemy Core on an SQLite file in the reader's private temporary folder (no journal, no
fsync: nobody else opens it, and it is thrown away), so memory stays flat whatever the size
of the export.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.pool import NullPool

from updatesync.metadata.model import RevisionKey

_DECLARED = Table(
    "declared",
    MetaData(),
    Column("update_id", Text, primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("seen", Integer, nullable=False, server_default="0"),
    Index("ix_declared_position", "position"),
    sqlite_with_rowid=False,
)

_BATCH = 1000
"""Declared revisions written at once, and ticked off records read ahead at once."""


def _scratch_engine(path: Path) -> Engine:
    """An engine on a scratch SQLite file nobody else opens: no journal, no fsync."""
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=OFF")
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()

    return engine


class DeclaredIndex:
    """The revisions package.xml declares, kept on disk so memory stays flat.

    A catalog of a million revisions would otherwise hold a million keys in memory for the
    sole purpose of checking metadata.txt against package.xml. An SQLite file in the
    reader's private temp folder (SQLAlchemy Core, one connection, one transaction never
    committed) does it with a few MiB of cache whatever the size.

    One statement per revision would cost more than reading the export, so both sides go
    in batches of `_BATCH`: declarations are written together (a revision declared twice is
    found when its batch is written, and `settle()` writes the last one), and records are
    ticked off against the next `_BATCH` declared revisions read ahead in package.xml's
    order (metadata.txt follows it in real exports); a record outside them is looked up on
    its own. Memory holds at most one batch of keys. The two batch statements are compiled
    once from their Core form and run with `exec_driver_sql` (per-row parameter handling
    would cost a third more than the old raw-sqlite3 index on a large export).
    """

    _ADD = sqlite.insert(_DECLARED).on_conflict_do_nothing()

    _TICK = (
        update(_DECLARED)
        .where(_DECLARED.c.update_id == bindparam("uid"), _DECLARED.c.revision == bindparam("rev"))
        .values(seen=literal_column("1"))
    )

    def __init__(self, path: Path) -> None:
        self._engine = _scratch_engine(path)
        try:
            self._db: Connection = self._engine.connect()
            _DECLARED.metadata.create_all(self._db)
        except BaseException:
            self._engine.dispose()
            raise
        self._add_sql = str(
            self._ADD.compile(
                dialect=self._db.dialect, column_keys=["update_id", "revision", "position"]
            )
        )
        self._tick_sql = str(self._TICK.compile(dialect=self._db.dialect))
        self.count = 0
        self._adding: dict[tuple[str, int], int] = {}  # declared, not written yet: position
        self._ahead: set[tuple[str, int]] = set()  # read ahead, not ticked off
        self._ahead_end = 0  # the position after the last one read ahead
        self._ticked: list[tuple[str, int]] = []  # ticked off, not written yet

    # -- package.xml -------------------------------------------------------------------------

    def add(self, key: RevisionKey) -> tuple[int, RevisionKey] | None:
        """Record a declared revision. A revision declared a second time, this one or one
        of the batch before it: its number in package.xml (from 1) and key; else None."""
        position = self.count
        self.count += 1
        pair = (key.update_id, key.revision)
        if pair in self._adding:
            return self.settle() or (position + 1, key)
        self._adding[pair] = position
        if len(self._adding) >= _BATCH:
            return self.settle()
        return None

    def settle(self) -> tuple[int, RevisionKey] | None:
        """Write the declarations not written yet; the first of them declared before, if
        any (as `add`)."""
        if not self._adding:
            return None
        adding, self._adding = self._adding, {}
        rows = [(u, r, p) for (u, r), p in adding.items()]
        if self._db.exec_driver_sql(self._add_sql, rows).rowcount == len(rows):
            return None
        d = _DECLARED.c
        first = min(adding.values())
        query = select(d.update_id, d.revision).where(
            d.update_id.in_(sorted({u for u, _ in adding})), d.position < first
        )
        there = {(uid, rev) for uid, rev in self._db.execute(query)}
        twice = min(((p, k) for k, p in adding.items() if k in there), default=None)
        return None if twice is None else (twice[0] + 1, RevisionKey(*twice[1]))

    # -- metadata.txt ------------------------------------------------------------------------

    def mark(self, key: RevisionKey) -> str | None:
        """Tick off a record of metadata.txt; else say what is wrong with it."""
        pair = (key.update_id, key.revision)
        if pair in self._ahead:
            self._ahead.discard(pair)
            self._ticked.append(pair)
            return None
        self._write_ticked()
        d = _DECLARED.c
        ticked = self._db.execute(
            update(_DECLARED)
            .where(d.update_id == key.update_id, d.revision == key.revision, d.seen == 0)
            .values(seen=1)
            .returning(d.position)
        ).first()
        if ticked is None:
            known = self._db.execute(
                select(1).where(d.update_id == key.update_id, d.revision == key.revision)
            ).first()
            return "appears a second time" if known else "is not declared in package.xml"
        position = int(ticked.position)
        if len(self._ahead) < _BATCH // 2 and position >= self._ahead_end:
            self._read_ahead(position + 1)
        return None

    def _read_ahead(self, start: int) -> None:
        """Hold the declared revisions not ticked off at positions start.. in memory."""
        d = _DECLARED.c
        query = select(d.update_id, d.revision).where(
            d.position >= start, d.position < start + _BATCH, d.seen == 0
        )
        self._ahead = {(uid, rev) for uid, rev in self._db.execute(query)}
        self._ahead_end = start + _BATCH

    def _write_ticked(self) -> None:
        if not self._ticked:
            return
        self._db.exec_driver_sql(self._tick_sql, self._ticked)
        self._ticked = []

    def missing(self) -> tuple[RevisionKey, int] | None:
        """The first declared revision no record ticked off, and how many there are."""
        self.settle()
        self._write_ticked()
        d = _DECLARED.c
        missing = self._db.execute(
            select(func.count()).select_from(_DECLARED).where(d.seen == 0)
        ).scalar_one()
        if not missing:
            return None
        uid, rev = self._db.execute(
            select(d.update_id, d.revision).where(d.seen == 0).order_by(d.position).limit(1)
        ).one()
        return RevisionKey(uid, rev), missing

    def __iter__(self) -> Iterator[RevisionKey]:
        self.settle()
        d = _DECLARED.c
        rows = self._db.execute(select(d.update_id, d.revision).order_by(d.position))
        for uid, rev in rows:
            yield RevisionKey(uid, rev)

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            self._engine.dispose()
