"""The revisions an upstream listed, kept in the store's database for the run, not in memory.

`ListedIds` is a temporary table (`CREATE TEMPORARY TABLE sync_listed`) on ONE connection
held out of the store's pool for the whole sync: the keys of a GetRevisionIdList answer go
in as they are read (`add`, in order, repeats ignored by the table's unique key), `prune`
drops those the store already holds (an anti-join with `revision`) and counts what is left,
and `batches` reads the rest in listing order, at most MaxNumberOfUpdatesPerRequest ids at
a time (keyset pages on the listing order, so every page is an index range).

Why a temporary table and not a scratch table keyed by a run id: it needs no migration and
no cleanup after a crash (the database drops it with the connection), two syncs of two
stores on one PostgreSQL server cannot see each other's, and on SQLite its pages live in
the temporary database (a file, `temp_store` FILE), so they add nothing to the store's file
or its WAL and take no write lock on it. Holding one connection for the run is what makes
it work with the pool of `updateserver.database` (a temporary table lives only on the
connection that made it); that connection is used by one thread at a time (the run, then
the pipeline's fetch stage) and is dropped back with the table removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Final

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    delete,
    exists,
    func,
    insert,
    select,
)

from updatesync.metadata.model import RevisionKey
from updatesync.updateserver import schema as t
from updatesync.updateserver.store import UpdateStore

__all__ = ["ListedIds"]

_metadata = MetaData()
_listed: Final = Table(
    "sync_listed",
    _metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("update_id", String(36), nullable=False),
    Column("revision_number", Integer, nullable=False),
    UniqueConstraint("update_id", "revision_number"),
    prefixes=["TEMPORARY"],
)


def _drop(conn: Connection) -> None:
    """Drop this connection's temporary table, if it has one (the temporary schema named,
    so that nothing else of that name can be dropped)."""
    schema = "pg_temp" if conn.dialect.name == "postgresql" else "temp"
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {schema}.{_listed.name}")


class ListedIds:
    """One listing's revision keys in a temporary table (module docstring). A context
    manager: the table is made on entry and dropped, the connection returned, on exit."""

    def __init__(self, store: UpdateStore) -> None:
        self.store = store
        self._conn: Connection | None = None
        self._seq = 0

    def __enter__(self) -> ListedIds:
        self._conn = self.store.engine.connect()
        try:
            with self._conn.begin():
                _drop(self._conn)  # left by a run that could not drop it
                _listed.create(self._conn)
        except BaseException:
            self._conn.close()
            self._conn = None
            raise
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.in_transaction():
                conn.rollback()
            with conn.begin():
                _drop(conn)
        except Exception:
            conn.invalidate()
        finally:
            conn.close()

    @property
    def connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("ListedIds is used outside its `with` block")
        return self._conn

    # -- filling (a `wsusss.client.RevisionSink`) ------------------------------------------

    def restart(self) -> None:
        """Empty the list: the listing is being read (again) from the start."""
        with self.connection.begin():
            self.connection.execute(delete(_listed))
        self._seq = 0

    def add(self, keys: list[RevisionKey]) -> None:
        """Append `keys` in order; a key listed already keeps its first place."""
        if not keys:
            return
        rows = [
            {"seq": self._seq + n, "update_id": key.update_id, "revision_number": key.revision}
            for n, key in enumerate(keys, 1)
        ]
        self._seq += len(keys)
        conn = self.connection
        dialect = conn.dialect.name
        # Each dialect's module is loaded by the store that uses it (tens of ms for PostgreSQL's).
        if dialect == "sqlite":
            from sqlalchemy.dialects import sqlite

            statement = sqlite.insert(_listed).on_conflict_do_nothing()
        elif dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            statement = postgresql.insert(_listed).on_conflict_do_nothing()
        else:  # pragma: no cover - the store runs on SQLite or PostgreSQL
            statement = insert(_listed).prefix_with("IGNORE")
        with conn.begin():
            conn.execute(statement, rows)

    # -- reading ---------------------------------------------------------------------------

    def count(self) -> int:
        """How many distinct keys the list holds."""
        with self.connection.begin():
            return self.connection.execute(select(func.count()).select_from(_listed)).scalar_one()

    def prune(self) -> int:
        """Drop the keys the store holds already; how many are left (to fetch)."""
        held = exists().where(
            t.revision.c.update_id == _listed.c.update_id,
            t.revision.c.revision_number == _listed.c.revision_number,
        )
        with self.connection.begin():
            self.connection.execute(delete(_listed).where(held))
        return self.count()

    def batches(self, size: int) -> Iterator[tuple[RevisionKey, ...]]:
        """The keys in listing order, `size` at a time (each page read on its own)."""
        after = 0
        while True:
            query = (
                select(_listed.c.seq, _listed.c.update_id, _listed.c.revision_number)
                .where(_listed.c.seq > after)
                .order_by(_listed.c.seq)
                .limit(size)
            )
            with self.connection.begin():
                rows = self.connection.execute(query).all()
            if not rows:
                return
            after = rows[-1][0]
            yield tuple(RevisionKey(uid, rev) for _seq, uid, rev in rows)
