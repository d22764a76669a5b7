"""The one place a site database's connections and transactions are opened.

`SiteStore` holds the engine of one site database and the code of its site. Each repository
module (`sync_state`, `content`, `replication`, `status_messages`, `alerts`, `sups`) reads and
writes through it:

- `begin()`: one write transaction, committed when the block ends without an error and
  rolled back otherwise;
- `read()`: a connection for reads (its implicit transaction ends when it closes);
- `snapshot()`: one read transaction in which every query sees the same committed state.

Read-then-write operations start with a write (or a compare-and-set), so that on SQLite the
write lock is taken before the read and on PostgreSQL the row lock, and two callers never act
on the same snapshot; `upsert` does that for one row, and its insert gives way to a row that
another transaction inserted meanwhile (`insert_or_ignore`: two first writers of one key on
PostgreSQL both find no row to update, and the second insert would otherwise fail). The
other helpers here are shared by the repositories: times are stored in UTC (`utc`,
`read_time`) and site codes are three letters or digits (`normal_site_code`). Every
refusal is a `SiteDatabaseError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table, insert, update
from sqlalchemy.dialects import postgresql, sqlite

from updatesync.updateserver.database import IMMEDIATE

SITE_CODE = re.compile(r"[A-Z0-9]{3}")
"""A site code: three upper-case letters or digits (e.g. CS1)."""


class SiteDatabaseError(Exception):
    """A site database operation was refused or failed; the message says what and where."""


def now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime, what: str) -> datetime:
    """`value` in UTC; a time without a time zone is refused (`what` names it)."""
    if value.tzinfo is None:
        raise SiteDatabaseError(f"{what}: time {value} has no time zone; give it in UTC")
    return value.astimezone(UTC)


def read_time(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def normal_site_code(code: str) -> str:
    """`code` in upper case; refused unless it is three letters or digits."""
    normal = code.strip().upper()
    if not SITE_CODE.fullmatch(normal):
        raise SiteDatabaseError(f"site code {code!r} is not three letters or digits (e.g. CS1)")
    return normal


def insert_or_ignore(conn: Connection, table: Table) -> Insert:
    """An INSERT into `table` that inserts nothing, instead of failing, where a row with the
    same unique key exists or is being inserted by another transaction (PostgreSQL waits for
    that one to end); its `rowcount` says whether the row was inserted here."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return insert(table)


def upsert(
    conn: Connection,
    table: Table,
    key: dict[str, Any],
    values: dict[str, Any],
    *,
    new: dict[str, Any] | None = None,
) -> None:
    """Update the row of `table` named by `key` with `values`, or insert it (with `values`
    and `new`, the columns only a new row is given). The UPDATE comes first, so on SQLite
    the write lock and on PostgreSQL the row lock are held before anything is read; when
    another transaction inserts the row between that UPDATE and the INSERT (PostgreSQL),
    the row is updated once that transaction has committed."""
    condition = [table.c[k] == v for k, v in key.items()]
    changed = update(table).where(*condition).values(**(values or key))
    if conn.execute(changed).rowcount:
        return
    row = {**(new or {}), **key, **values}
    if not conn.execute(insert_or_ignore(conn, table).values(**row)).rowcount:
        conn.execute(changed)


class SiteStore:
    """The engine of one site database and the code of the site it belongs to."""

    def __init__(self, engine: Engine, site_code: str) -> None:
        self.engine = engine
        self.site_code = site_code

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One write transaction: committed at the end of the block, rolled back on error.
        On SQLite it holds the write lock from its start (`BEGIN IMMEDIATE`), so one that
        reads before it writes never finds the database changed under it ("database is
        locked"): another writer waits for it instead, up to the busy timeout."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.execution_options(**{IMMEDIATE: True})
            with conn.begin():
                yield conn

    def read(self) -> AbstractContextManager[Connection]:
        """A connection for reads; what it began is rolled back when it closes."""
        return self.engine.connect()

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """One read transaction: every query in it sees the same committed state (SQLite in
        WAL mode: the snapshot of the first read; PostgreSQL: REPEATABLE READ)."""
        with self.engine.connect() as conn:
            if conn.dialect.name != "sqlite":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def site(self, site_code: str | None) -> str:
        """`site_code` checked and in upper case; None is this database's own site."""
        return self.site_code if site_code is None else normal_site_code(site_code)
