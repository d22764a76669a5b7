"""One sync per store: a lock on `<data folder>/sync.lock` that works across processes.

Two syncs of one store at once would do the work twice and count it wrong, so every sync
(`updatesync updateserver sync`, the admin API's `POST /api/sync`, a SUP role's runner)
holds this lock while it runs; a second one is refused at once with `SyncBusy`, whose
message names the running sync (process id, host, start time, what it syncs from).

The lock is the operating system's (`fcntl.flock`, exclusive, non-blocking) on an open file
of the data folder, so it goes with the process: a sync killed in the middle leaves no lock
behind. The holder writes who it is into the file (JSON) for the refused one to read.

Within one process, a second acquisition of a store's lock is refused too, except by the
sync that holds it (re-entrant through a context variable): the admin API's runner takes
the lock when asked, before it answers 202, and hands it to its thread (`adopt`), where
`sync_from_upstream` finds it held by itself. A store without a data folder (a database
opened alone) has nothing to lock.
"""

from __future__ import annotations

import contextvars
import fcntl
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
    """A sync was asked for on a store that is already syncing."""

    def __init__(self, folder: Path, holder: SyncHolder | None) -> None:
        self.folder = folder
        self.holder = holder
        running = holder.describe() if holder is not None else "a process that has not said which"
        super().__init__(
            f"the update server at {folder} is already syncing ({running}); this sync is "
            "not started: wait for that one to finish, or stop it first"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.folder, self.holder))


class SyncLease:
    """A held sync lock; `release` (once) lets the next sync in."""

    def __init__(self, path: Path, holder: SyncHolder, fd: int) -> None:
        self.path = path
        self.holder = holder
        self._fd: int | None = fd

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
        lease = SyncLease(path, holder, fd)
        _HELD[path] = lease
        return lease


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
