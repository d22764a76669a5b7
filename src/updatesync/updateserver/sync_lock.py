"""One sync per store: a lock on `<data folder>/sync.lock` that works across processes, and
across hosts when the store is on PostgreSQL.

Two syncs of one store at once would do the work twice and count it wrong, so every sync
(`updatesync updateserver sync`, the admin API's `POST /api/sync`, a SUP role's runner)
holds this lock while it runs; a second one is refused at once with `SyncBusy`, whose
message names the running sync (process id, host, start time, what it syncs from).

The lock is the operating system's (`fcntl.flock`, exclusive, non-blocking) on an open file
of the data folder, so it goes with the process: a sync killed in the middle leaves no lock
behind. The holder writes who it is into the file (JSON) for the refused one to read.

A store on PostgreSQL can be shared by servers on several hosts, each with its own data
folder: there the sync also takes a PostgreSQL advisory lock (`pg_try_advisory_lock`, on a
key every host derives from one fixed name, so it is the same everywhere; advisory locks
belong to one database, so two stores never share it), on a connection of its own held for
the sync's life and released at its end. The lock belongs to that database session, so a
holder killed in the middle leaves none: its connection closes, the session ends, the lock
goes. The holder writes who it is into the `sync_holder` table (migration 0005), with its
session's id, for a refused sync on any host to read.

Within one process, a second acquisition of a store's lock is refused too, except by the
sync that holds it (re-entrant through a context variable): the admin API's runner takes
the lock when asked, before it answers 202, and hands it to its thread (`adopt`), where
`sync_from_upstream` finds it held by itself. A store without a data folder (a database
opened alone) has nothing to lock.
"""

from __future__ import annotations

import contextvars
import fcntl
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from sqlalchemy import Connection, delete, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from updatesync.updateserver import schema as t
from updatesync.updateserver.database import database_name
from updatesync.updateserver.errors import UpdateServerError
from updatesync.updateserver.store import UpdateStore

__all__ = [
    "LOCK_FILE",
    "SyncBusy",
    "SyncHolder",
    "SyncLease",
    "acquire_sync_lock",
    "adopt",
    "holding_sync_lock",
]

LOCK_FILE: Final = "sync.lock"
_HOLDER_WAIT: Final = 1.0
"""Seconds a refused sync waits for the holder to have written who it is (it writes right
after taking the lock)."""


def _advisory_key(name: str) -> dict[str, int]:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return {
        "a": int.from_bytes(digest[:4], "big") & 0x7FFFFFFF,
        "b": int.from_bytes(digest[4:8], "big") & 0x7FFFFFFF,
    }


ADVISORY_KEY: Final = _advisory_key("updatesync: one sync per update server store")
"""The two 32-bit keys of the advisory lock (the same on every host, from a fixed name)."""
_LOCK_HOLDER_SESSION: Final = text(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND classid::bigint = :a AND objid::bigint = :b AND objsubid = 2"
)


@dataclass(frozen=True, slots=True)
class SyncHolder:
    """Who holds a store's sync lock."""

    pid: int
    host: str
    started_at: str
    source: str

    def describe(self) -> str:
        return (
            f"process {self.pid} on {self.host}, started {self.started_at}, "
            f"syncing from {self.source}"
        )


class SyncBusy(UpdateServerError):
    """A sync was asked for on a store that is already syncing. `database` names the shared
    store database when the running sync was found by its advisory lock (another host,
    perhaps)."""

    def __init__(
        self, folder: Path, holder: SyncHolder | None, database: str | None = None
    ) -> None:
        self.folder = folder
        self.holder = holder
        self.database = database
        running = holder.describe() if holder is not None else "a process that has not said which"
        what = (
            f"the update server at {folder}"
            if database is None
            else f"the update server store {database} (used by the update server at {folder})"
        )
        super().__init__(
            f"{what} is already syncing ({running}); this sync is not started: wait for that "
            "one to finish, or stop it first"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.folder, self.holder, self.database))


class _SharedLock:
    """The advisory lock of a store on PostgreSQL, on a connection of its own."""

    def __init__(self, conn: Connection, backend_pid: int) -> None:
        self._conn = conn
        self._backend_pid = backend_pid

    def release(self) -> None:
        conn = self._conn
        try:
            conn.execute(
                delete(t.sync_holder).where(t.sync_holder.c.backend_pid == self._backend_pid)
            )
            conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), ADVISORY_KEY)
        except SQLAlchemyError:
            conn.invalidate()  # its session ends, and the lock with it
        finally:
            conn.close()


class SyncLease:
    """A held sync lock; `release` (once) lets the next sync in."""

    def __init__(
        self, path: Path, holder: SyncHolder, fd: int, shared: _SharedLock | None = None
    ) -> None:
        self.path = path
        self.holder = holder
        self._fd: int | None = fd
        self._shared = shared

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        with _GUARD:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            if _HELD.get(self.path) is self:
                del _HELD[self.path]
            try:
                if self._shared is not None:
                    self._shared.release()
            finally:
                _unlock_file(fd)


def _unlock_file(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)  # no stale holder for the next reader
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


_GUARD = threading.Lock()
_HELD: dict[Path, SyncLease] = {}
_CURRENT: contextvars.ContextVar[tuple[SyncLease, ...]] = contextvars.ContextVar(
    "updatesync_sync_leases", default=()
)


def _lock_path(store: UpdateStore) -> Path | None:
    return store.data_dir / LOCK_FILE if store.data_dir is not None else None


def acquire_sync_lock(store: UpdateStore, source: str) -> SyncLease | None:
    """Take the store's sync lock for a sync from `source`; `SyncBusy` (naming the running
    sync) if another sync holds it, in this process or another. None for a store without
    a data folder."""
    path = _lock_path(store)
    if path is None:
        return None
    with _GUARD:
        running = _HELD.get(path)
        if running is not None:
            raise SyncBusy(path.parent, running.holder)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise SyncBusy(path.parent, holder) from None
        holder = SyncHolder(
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            source=source,
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(holder)).encode("utf-8"), 0)
        os.fsync(fd)
        try:
            shared = _take_shared_lock(store, holder, path.parent)
        except BaseException:
            _unlock_file(fd)
            raise
        lease = SyncLease(path, holder, fd, shared)
        _HELD[path] = lease
        return lease


def _take_shared_lock(store: UpdateStore, holder: SyncHolder, folder: Path) -> _SharedLock | None:
    """The advisory lock of a store on PostgreSQL (None for another database), with the
    holder recorded; `SyncBusy` naming the holder when another session has it."""
    if store.engine.dialect.name != "postgresql":
        return None
    where = database_name(store.engine.url.render_as_string(hide_password=True))
    try:
        conn = store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError as exc:
        raise UpdateServerError(
            f"cannot take the sync lock in the update server store {where}: "
            f"{str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}; check that the "
            "database server is running and reachable"
        ) from exc
    try:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:a, :b)"), ADVISORY_KEY).scalar():
            raise SyncBusy(folder, _shared_holder(conn), where)
        backend_pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        conn.execute(delete(t.sync_holder))
        conn.execute(insert(t.sync_holder).values(id=1, backend_pid=backend_pid, **asdict(holder)))
    except BaseException:
        conn.invalidate()  # the session ends: a lock taken here goes with it
        conn.close()
        raise
    return _SharedLock(conn, backend_pid)


def _shared_holder(conn: Connection) -> SyncHolder | None:
    """Who holds the advisory lock: the `sync_holder` row written by the session holding it
    (the holder writes it right after taking the lock; a row of a former holder is not it)."""
    deadline = time.monotonic() + _HOLDER_WAIT
    while True:
        session = conn.execute(_LOCK_HOLDER_SESSION, ADVISORY_KEY).scalar()
        row = conn.execute(select(t.sync_holder)).first()
        if session is not None and row is not None and row.backend_pid == session:
            return SyncHolder(row.pid, row.host, row.started_at, row.source)
        if session is None or time.monotonic() >= deadline:
            return None
        time.sleep(0.02)  # the holder writes right after taking the lock


def _read_holder(fd: int) -> SyncHolder | None:
    deadline = time.monotonic() + _HOLDER_WAIT
    while True:
        text = os.pread(fd, 4096, 0)
        try:
            return SyncHolder(**json.loads(text))
        except (ValueError, TypeError):
            if time.monotonic() >= deadline:
                return None
        time.sleep(0.02)  # the holder writes right after its flock


@contextmanager
def holding_sync_lock(store: UpdateStore, source: str) -> Iterator[SyncLease | None]:
    """Hold the store's sync lock for the block: taken here, or already held by the sync
    this code runs in (re-entrant); released at the end only if taken here."""
    path = _lock_path(store)
    for lease in _CURRENT.get():
        if lease.held and lease.path == path:
            yield lease
            return
    lease = acquire_sync_lock(store, source)
    with adopt(lease):
        yield lease


@contextmanager
def adopt(lease: SyncLease | None) -> Iterator[None]:
    """Run the block as the holder of `lease` (a sync lock taken elsewhere, such as by the
    thread that answered a request), releasing it at the end."""
    if lease is None:
        yield
        return
    token = _CURRENT.set((*_CURRENT.get(), lease))
    try:
        yield
    finally:
        _CURRENT.reset(token)
        lease.release()
