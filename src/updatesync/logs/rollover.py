"""Log files with ConfigMgr's `.log` → `.lo_` rollover: a writer safe across threads and
processes, and a reader that yields the lines of `.lo_` then `.log`.

Rollover (Configuration Manager's documented behaviour, "About Configuration Manager log files"):
a process writes to `X.log` until it reaches its maximum size; then the content moves to `X.lo_`
(overwriting the older `X.lo_`) and writing goes on in a fresh `X.log`. So at most two files
exist, and a reader takes `X.lo_` first, then `X.log`.

Choices made here, each one a default a caller can see:

- **Maximum size**: `DEFAULT_MAX_BYTES` = 5 MiB. Configuration Manager lets an administrator set
  the size per component; its shipped defaults differ between components and versions and we
  could not confirm them from a primary source (5 MB is the documented task-sequence default).
  The update server's SoftwareDistribution.log uses the same default here.
- **Rollover is a rename** (`os.replace`), done *before* the write that would take `.log` past
  the maximum. An entry is therefore never split between `.lo_` and `.log`; an entry larger than
  the maximum goes whole into a file of its own.
- **Encoding**: written as UTF-8 without a byte-order mark. Real Windows logs come in UTF-8, in
  UTF-8 with a BOM, in UTF-16LE with a BOM (some ConfigMgr logs) or in the ANSI code page
  (older ones); the reader accepts all of them (BOM sniffing, then UTF-8, then Windows-1252).
- **Line ending**: CRLF by default, as Windows programs write; readers accept CRLF, LF and CR.
- **Concurrency**: one lock per path within a process; across processes every entry is one
  `write` on a descriptor opened with `O_APPEND`, and the size check plus rename run under an
  advisory `flock` on the `.log` (POSIX only; on Windows only the in-process lock applies).
  The file is opened per entry (per batch with `write_entries`) so that a rollover done by
  another process is seen at once.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import BinaryIO

from updatesync.security.private_files import private_dir

try:  # POSIX advisory locks; absent on Windows.
    import fcntl
except ImportError:  # pragma: no cover - exercised on Windows only
    fcntl = None  # type: ignore[assignment]

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
"""Default maximum size of a `.log` before it rolls over to `.lo_` (5 MiB)."""

ROLLED_SUFFIX = ".lo_"
ENCODING = "utf-8"
CRLF = "\r\n"

_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)

_path_locks: dict[str, threading.Lock] = {}
_path_locks_guard = threading.Lock()


class LogWriteError(OSError):
    """A log entry could not be written or a log could not be rolled over; says which file."""


class LogReadError(OSError):
    """A log and its `.lo_` could not be read consistently; says which file."""


def rolled_path(path: str | os.PathLike[str]) -> Path:
    """The `.lo_` companion of a log: `WSyncMgr.log` → `WSyncMgr.lo_`."""
    return Path(path).with_suffix(ROLLED_SUFFIX)


def split_lines(text: str) -> list[str]:
    """Split on CRLF, LF or CR only (not on the other Unicode breaks `str.splitlines` knows)."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _lock_for(path: Path) -> threading.Lock:
    key = os.path.abspath(path)
    with _path_locks_guard:
        lock = _path_locks.get(key)
        if lock is None:
            lock = _path_locks[key] = threading.Lock()
        return lock


class RolloverLog:
    """Appends whole entries to `path`, rolling it over to `.lo_` at `max_bytes`.

    Thread-safe; several processes may write the same file (see the module notes). Every
    `RolloverLog` on the same path in one process shares one lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        newline: str = CRLF,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"log {path}: max_bytes must be positive, got {max_bytes}")
        if newline not in ("\r\n", "\n"):
            raise ValueError(f"log {path}: newline must be CRLF or LF, got {newline!r}")
        self.path = Path(path)
        self.rolled_path = rolled_path(self.path)
        self.max_bytes = max_bytes
        self.newline = newline
        self._lock = _lock_for(self.path)

    def encode_entry(self, text: str) -> bytes:
        """The bytes `write_entry(text)` appends: each line ended by the newline, UTF-8."""
        if "\n" not in text and "\r" not in text:
            return (text + self.newline).encode(ENCODING)  # one line (the common case)
        lines = split_lines(text) or [""]
        return "".join(line + self.newline for line in lines).encode(ENCODING)

    def write_entry(self, text: str) -> None:
        """Append one entry (one or more lines) in a single write, rolling over first if the
        `.log` would otherwise exceed `max_bytes`."""
        data = self.encode_entry(text)
        with self._lock:
            try:
                self._append(data)
            except OSError as exc:
                raise LogWriteError(f"cannot write log {self.path}: {exc.strerror or exc}") from exc

    def write_entries(self, texts: Iterable[str]) -> int:
        """Append several entries, in order, opening and locking the `.log` once for all of
        them (each entry still whole in one file, rolling over between two entries exactly as
        `write_entry` would one at a time). Returns how many were written."""
        entries = [self.encode_entry(text) for text in texts]
        if not entries:
            return 0
        with self._lock:
            try:
                self._append_all(entries)
            except OSError as exc:
                raise LogWriteError(f"cannot write log {self.path}: {exc.strerror or exc}") from exc
        return len(entries)

    def _append(self, data: bytes) -> None:
        self._append_all([data])

    def _append_all(self, entries: list[bytes]) -> None:
        """Write `entries` whole and in order: as many as fit in the `.log` in one write,
        then roll over and go on in the fresh `.log` (checked again, as another process may
        have filled it)."""
        first = 0
        while first < len(entries):
            fd = self._open_current()
            try:
                size = os.fstat(fd).st_size
                end = first
                while end < len(entries) and not (
                    size > 0 and size + len(entries[end]) > self.max_bytes
                ):
                    size += len(entries[end])
                    end += 1
                if end > first:
                    _write_all(fd, b"".join(entries[first:end]))
                    first = end
                if first < len(entries):
                    with suppress(FileNotFoundError):  # a writer without our lock rolled it
                        os.replace(self.path, self.rolled_path)
            finally:
                _unlock(fd)
                os.close(fd)

    def _open_current(self) -> int:
        """Open `.log` for appending, locked, making sure it is still the file named `.log`
        (another process may have renamed it to `.lo_` while we waited for the lock)."""
        private_dir(self.path.parent)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        while True:
            fd = os.open(self.path, flags, 0o644)
            _lock(fd)
            try:
                opened = os.fstat(fd)
                named = os.stat(self.path)
            except FileNotFoundError:
                named = None
            if named is not None and (opened.st_dev, opened.st_ino) == (
                named.st_dev,
                named.st_ino,
            ):
                return fd
            _unlock(fd)
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _lock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def decode_log_bytes(data: bytes) -> str:
    """Decode a whole log file: BOM (UTF-8, UTF-16LE/BE) if present, else UTF-8, else
    Windows-1252 (the ANSI code page older Windows logs use)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def read_rolled_lines(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield the lines (without line endings) of `X.lo_` then `X.log`; either may be missing.

    Both files are opened before either is read, and reopened if a rollover happened in
    between, so that a concurrent rollover cannot make the reader skip a file's worth of lines.
    """
    current = Path(path)
    rolled = rolled_path(current)
    for text in _read_pair(rolled, current):
        yield from split_lines(text)


def _read_pair(rolled: Path, current: Path) -> tuple[str, str]:
    for _attempt in range(5):
        with ExitStack() as stack:
            old = _open_or_none(rolled, stack)
            new = _open_or_none(current, stack)
            if old is None and rolled.exists():
                continue  # first rollover happened between the two opens
            if old is not None and not _same_file(old, rolled):
                continue  # rolled over between the two opens: what we hold is stale
            return (
                decode_log_bytes(old.read()) if old is not None else "",
                decode_log_bytes(new.read()) if new is not None else "",
            )
    raise LogReadError(f"log {current}: it kept rolling over while being read; try again")


def _open_or_none(path: Path, stack: ExitStack) -> BinaryIO | None:
    try:
        return stack.enter_context(path.open("rb"))
    except FileNotFoundError:
        return None


def _same_file(handle: BinaryIO, path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)
