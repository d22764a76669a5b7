"""The sync manager's inbox, `inboxes/WSyncMgr.box`: request files and a watcher for them.

A file dropped in the inbox wakes the sync manager (SPEC sections 1, 2.1 and 3.1):

- `SELF.SYN`: a delta sync requested at this site (console, API, or an administrator who
  creates the empty file by hand);
- `FULL.SYN`: a full sync;
- `<SITE>.SYN` (e.g. `CS1.SYN`): a sync notification from the parent site.

Names are matched without regard to case, as Windows does. Any other file is ignored and
reported once; folders (such as `outbox`) are not looked at. A drop writes a temporary file
(named with a leading `~`, which readers skip), flushes it to disk and renames it into place,
so a reader never sees half a file. `take()` consumes every request file present and returns
the strongest request, so several requests that piled up during a sync give one sync.

A drop made in this process (the database monitor's, file replication's) wakes the watchers
of that inbox in this process at once; their look every `interval` is for files that come
from elsewhere (another process, an administrator).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from updatesync.security.private_files import private_dir

SELF = "SELF"
"""A delta sync requested at this site (`SELF.SYN`)."""
FULL = "FULL"
"""A full sync requested at this site (`FULL.SYN`)."""

SUFFIX = ".SYN"
TEMP_PREFIX = "~"
"""Files starting with this are drops in progress; readers skip them silently."""

_KIND = re.compile(r"SELF|FULL|[A-Z0-9]{3}")
_log = logging.getLogger(__name__)

_watching: dict[Path, set[threading.Event]] = {}
"""The wake-up events of the watchers started in this process, by inbox folder."""
_watching_lock = threading.Lock()


def _wake_watchers(path: Path) -> None:
    """Set the wake-up event of every watcher of the inbox at `path` in this process."""
    with _watching_lock:
        events = list(_watching.get(path, ()))
    for event in events:
        event.set()


class InboxError(Exception):
    """An inbox operation was refused or failed; the message says what and where."""


def normal_kind(kind: str, where: str = "inbox") -> str:
    """`kind` in upper case, checked: SELF, FULL or a three-character site code."""
    normal = kind.strip().upper()
    if not _KIND.fullmatch(normal):
        raise InboxError(
            f"{where}: request kind {kind!r} is not SELF, FULL or a site code (e.g. CS1)"
        )
    return normal


def strongest(kinds: set[str]) -> str | None:
    """The request that covers the others: FULL, else a parent notification (the first site
    code in alphabetical order, for a stable answer), else SELF; None for no request."""
    if not kinds:
        return None
    if FULL in kinds:
        return FULL
    parents = sorted(k for k in kinds if k != SELF)
    return parents[0] if parents else SELF


class Inbox:
    """The `WSyncMgr.box` folder at `path` (created when missing).

    `report` is called once per ignored file name, with a message that says which file and
    where; the default writes a warning through `logging`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path).absolute()
        private_dir(self.path)
        self._report = report if report is not None else _log.warning
        self._reported: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Inbox({str(self.path)!r})"

    # -- writing ---------------------------------------------------------------------------

    def file_for(self, kind: str) -> Path:
        """Where the request file of `kind` goes (`SELF.SYN`, `FULL.SYN`, `CS1.SYN`)."""
        return self.path / f"{normal_kind(kind, f'inbox {self.path}')}{SUFFIX}"

    def drop(self, kind: str) -> Path:
        """Put the request file of `kind` in the inbox and return its path. Dropping a request
        that is already there (in any letter case) changes nothing: the same request stands."""
        target = self.file_for(kind)
        existing = self._requests().get(target.stem)
        if existing is not None:
            return existing
        temp = self.path / f"{TEMP_PREFIX}{target.name}.{os.getpid()}.{threading.get_ident()}"
        try:
            with open(temp, "wb") as handle:
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise InboxError(f"drop {target.name} into inbox {self.path}: {exc}") from exc
        _fsync_dir(self.path)
        _wake_watchers(self.path)
        return target

    # -- reading ---------------------------------------------------------------------------

    def _requests(self) -> dict[str, Path]:
        """Request kind -> its file, for every request file present."""
        found: dict[str, Path] = {}
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:
            return found
        except OSError as exc:
            raise InboxError(f"read inbox {self.path}: {exc}") from exc
        for entry in entries:
            name = entry.name
            if name.startswith(TEMP_PREFIX):
                continue
            try:
                if entry.is_dir():
                    continue
            except OSError:
                continue
            upper = name.upper()
            stem = upper[: -len(SUFFIX)] if upper.endswith(SUFFIX) else ""
            if stem and _KIND.fullmatch(stem):
                found.setdefault(stem, Path(entry.path))
            else:
                self._ignore(name)
        return found

    def _ignore(self, name: str) -> None:
        with self._lock:
            if name in self._reported:
                return
            self._reported.add(name)
        self._report(
            f"inbox {self.path}: ignoring {name!r}: not a sync request file "
            f"(SELF.SYN, FULL.SYN or <SITE>.SYN)"
        )

    def pending(self) -> set[str]:
        """The kinds of request present: SELF, FULL and parent site codes."""
        return set(self._requests())

    def take(self) -> str | None:
        """Consume every request file present and return the strongest request (FULL over a
        parent notification over SELF), or None when there is none. A file that another
        reader consumed first is not counted; one dropped after the look stays for later."""
        taken: set[str] = set()
        for kind, file in self._requests().items():
            try:
                file.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise InboxError(f"consume {file.name} from inbox {self.path}: {exc}") from exc
            taken.add(kind)
        return strongest(taken)

    def watch(self, wake: threading.Event, *, interval: float = 0.2) -> InboxWatcher:
        """A watcher (not yet started) that sets `wake` while a request file is present."""
        return InboxWatcher(self, wake, interval=interval)


def _fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable, where the platform allows opening a folder."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class InboxWatcher:
    """Looks at the inbox every `interval` seconds (on its own daemon thread) and sets `wake`
    whenever a request file is present; a drop made in this process sets it at once. The
    sync manager clears the event before it takes the inbox, so a request file that stays
    (one dropped during a sync) wakes it again."""

    def __init__(self, inbox: Inbox, wake: threading.Event, *, interval: float = 0.2) -> None:
        if interval <= 0:
            raise ValueError(
                f"inbox watcher for {inbox.path}: interval must be > 0, got {interval}"
            )
        self.inbox = inbox
        self.wake = wake
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"inbox watcher for {self.inbox.path} is already started")
        self._stop.clear()
        with _watching_lock:
            _watching.setdefault(self.inbox.path, set()).add(self.wake)
        self._thread = threading.Thread(
            target=self._loop, name=f"inbox-watcher {self.inbox.path.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        with _watching_lock:
            events = _watching.get(self.inbox.path)
            if events is not None:
                events.discard(self.wake)
                if not events:
                    del _watching[self.inbox.path]
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.inbox.pending():
                    self.wake.set()
            except InboxError as exc:
                _log.error("%s", exc)
            self._stop.wait(self.interval)
