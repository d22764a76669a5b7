"""Reading a log a page at a time, from a cursor, as a log viewer tails it.

A cursor is `(file, offset)`: `file` names one file by its identity on disk (device and
inode, as `file_id` writes them), `offset` a byte in it. Because ConfigMgr's rollover renames
`X.log` to `X.lo_` (`rollover.py`), the file a cursor names keeps its identity when it rolls
over: a reader whose cursor names what is now `X.lo_` reads the rest of it, then `X.log` from
its start. A cursor that names neither file (the log rolled over twice since) starts again at
the start of `X.lo_`, and the page says lines were missed (`gap`).

`read_page` reads at most `limit` bytes and stops at the end of the last whole entry it read
(a CMTrace entry ends with `]LOG]!><...>` and a line break; the line formats at a line
break), so that an entry being written is read whole by the next call. An entry larger than
`limit` is taken as it is, as text, so that a reader always moves on. Without a cursor the
page is the end of the log (the last `limit` bytes, from the first entry that starts in
them), as CMTrace opens a log at its end. `find_time` gives the cursor of the page that holds
the first entry at or after a time.

Each entry becomes a `ViewLine`: text, component, time (UTC), thread and `type` (error,
warning, info). CMTrace's own types are kept; SoftwareDistribution.log's level becomes the
type; a line without a type (text that is no entry, the simple format) is an error when it
holds the word "error" and a warning when it holds "warn", as CMTrace marks the lines of logs
that are not in its format. Logs in UTF-8 or the ANSI code page are read; a UTF-16 log (byte-
order mark FF FE or FE FF) is refused, since its offsets cannot be read from a line break.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from updatesync.logs.cmtrace import LogEntry, Severity, parse_cmtrace
from updatesync.logs.rollover import LogReadError, rolled_path
from updatesync.logs.simple import parse_simple
from updatesync.logs.softwaredistribution import SdEntry, SdLevel, parse_softwaredistribution

ERROR, WARNING, INFO = "error", "warning", "info"

_CMTRACE_END = re.compile(rb"\]LOG\]!><[^\r\n]*>[ \t]*(?:\r\n|\n|\r)")
_LINE_END = re.compile(rb"\r\n|\n|\r")
_ENTRY_START = re.compile(rb"(?:\r\n|\n|\r)(?=<!\[LOG\[)")
_SD_START = re.compile(rb"(?:\r\n|\n|\r)(?=\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} UTC\t)")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_HEAD_BYTES = 512
_ERROR_WORD = re.compile(r"error", re.IGNORECASE)
_WARNING_WORD = re.compile(r"warn", re.IGNORECASE)


class LogKind(StrEnum):
    """The line format of a log the viewer reads."""

    CMTRACE = "cmtrace"
    SIMPLE = "simple"
    SOFTWAREDISTRIBUTION = "softwaredistribution"


@dataclass(frozen=True, slots=True)
class ViewLine:
    """One entry as a log viewer shows it."""

    text: str
    component: str
    time: datetime | None
    thread: int | None
    type: str


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where to read on: `offset` bytes into the file whose identity is `file`."""

    file: str
    offset: int


FROM_START = Cursor("", 0)
"""The start of the log: the start of `X.lo_` (or of `X.log` when it has not rolled over)."""


@dataclass(frozen=True, slots=True)
class LogPage:
    """What one read gave: the lines, where they started, where to read on."""

    lines: list[ViewLine]
    start: Cursor
    next: Cursor
    more: bool
    """Bytes written are left to read after `next` (read again at once)."""
    gap: bool
    """The cursor given named a file that is gone: lines were missed."""


@dataclass(frozen=True, slots=True)
class _File:
    path: Path
    handle: BinaryIO
    id: str
    size: int


def file_id(handle: BinaryIO) -> str:
    """The identity of an open file as a cursor names it: its inode and a checksum of its
    first line (an inode alone may be reused by the next file once the old `.lo_` is
    replaced); "" while the file is empty."""
    stat = os.fstat(handle.fileno())
    handle.seek(0)
    head = handle.read(_HEAD_BYTES)
    if not head:
        return ""
    first = _LINE_END.search(head)
    line = head if first is None else head[: first.end()]
    return f"{stat.st_ino:x}-{zlib.crc32(line):08x}"


def _open(path: Path, stack: ExitStack) -> _File | None:
    try:
        handle = stack.enter_context(path.open("rb"))
    except FileNotFoundError:
        return None
    return _File(path, handle, file_id(handle), os.fstat(handle.fileno()).st_size)


def _files(path: Path, stack: ExitStack) -> list[_File]:
    """`X.lo_` and `X.log`, those that exist, opened as one consistent pair."""
    rolled = rolled_path(path)
    for _attempt in range(5):
        old, new = _open(rolled, stack), _open(path, stack)
        if old is not None:
            try:
                same = os.stat(rolled).st_ino == os.fstat(old.handle.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                continue  # rolled over between the two opens
        elif rolled.exists():
            continue
        return [f for f in (old, new) if f is not None]
    raise LogReadError(f"log {path.name}: it kept rolling over while being read; try again")


def _check_encoding(file: _File) -> None:
    file.handle.seek(0)
    if file.handle.read(2) in _UTF16_BOMS:
        raise LogReadError(
            f"log {file.path.name} is in UTF-16; the viewer reads logs in UTF-8 or the ANSI "
            "code page"
        )


def _aligned(data: bytes, kind: LogKind) -> int:
    """Where the first entry that starts in `data` (read from inside a file) begins."""
    pattern = {LogKind.CMTRACE: _ENTRY_START, LogKind.SOFTWAREDISTRIBUTION: _SD_START}.get(
        kind, _LINE_END
    )
    found = pattern.search(data)
    return len(data) if found is None else found.end()


def _whole(data: bytes, kind: LogKind) -> int:
    """The length of the whole entries at the start of `data`."""
    pattern = _CMTRACE_END if kind is LogKind.CMTRACE else _LINE_END
    end = 0
    for found in pattern.finditer(data):
        end = found.end()
    return end


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _typed(text: str) -> str:
    if _ERROR_WORD.search(text):
        return ERROR
    return WARNING if _WARNING_WORD.search(text) else INFO


_SEVERITY_TYPES = {Severity.ERROR: ERROR, Severity.WARNING: WARNING, Severity.INFO: INFO}
_LEVEL_TYPES: dict[str, str] = {SdLevel.ERROR: ERROR, SdLevel.WARNING: WARNING}


def _of_entry(entry: LogEntry) -> ViewLine:
    kind = _SEVERITY_TYPES[entry.severity] if entry.severity is not None else None
    return ViewLine(
        entry.message, entry.component, entry.time, entry.thread, kind or _typed(entry.message)
    )


def _of_sd(entry: SdEntry) -> ViewLine:
    kind = _LEVEL_TYPES.get(str(entry.level), INFO)
    return ViewLine(entry.text, entry.source, entry.timestamp, entry.thread, kind)


def parse_view_lines(text: str, kind: LogKind) -> list[ViewLine]:
    """The entries of `text`, and the text between them (as lines of its own), in order."""
    found: list[tuple[int, ViewLine]] = []

    def garbage(number: int, chunk: str) -> None:
        found.append((number, ViewLine(chunk, "", None, None, _typed(chunk))))

    if kind is LogKind.SOFTWAREDISTRIBUTION:
        lines = text.splitlines()
        found += [
            (e.line_number or 0, _of_sd(e))
            for e in parse_softwaredistribution(lines, on_garbage=garbage)
        ]
    else:
        parse = parse_cmtrace if kind is LogKind.CMTRACE else parse_simple
        found += [(e.line_number or 0, _of_entry(e)) for e in parse(text, on_garbage=garbage)]
    found.sort(key=lambda pair: pair[0])
    return [line for _number, line in found]


def _start(
    files: list[_File], cursor: Cursor | None, limit: int, kind: LogKind
) -> tuple[int, int, bool]:
    """(index of the file, offset in it, gap) where a read from `cursor` begins."""
    if cursor is None:  # the end of the log
        budget = limit
        for index in range(len(files) - 1, -1, -1):
            if files[index].size >= budget or index == 0:
                offset = max(0, files[index].size - budget)
                if offset == 0:
                    return index, 0, False
                files[index].handle.seek(offset - 1)
                data = files[index].handle.read(budget + 1)
                return index, offset - 1 + _aligned(data, kind), False
            budget -= files[index].size
        return 0, 0, False
    if cursor == FROM_START:
        return 0, 0, False
    for index, file in enumerate(files):
        if file.id and file.id == cursor.file:
            if cursor.offset > file.size:  # cut short by someone: read it again
                return index, 0, True
            return index, cursor.offset, False
    return 0, 0, True


def read_page(
    path: str | os.PathLike[str], kind: LogKind, cursor: Cursor | None, limit: int
) -> LogPage:
    """At most `limit` bytes of the log at `path` (with its `.lo_`) from `cursor`, or the
    end of the log when `cursor` is None. `LogReadError` for a log that cannot be read."""
    if limit < 1:
        raise ValueError(f"limit {limit}: read at least one byte")
    with ExitStack() as stack:
        files = _files(Path(path), stack)
        if not files:
            return LogPage([], FROM_START, FROM_START, False, gap=bool(cursor and cursor.file))
        for file in files:
            _check_encoding(file)
        index, offset, gap = _start(files, cursor, limit, kind)
        start = Cursor(files[index].id, offset)
        lines: list[ViewLine] = []
        budget = limit
        while True:
            file = files[index]
            file.handle.seek(offset)
            wanted = file.size - offset
            data = file.handle.read(min(budget, wanted))
            cut_short = len(data) < wanted
            last = index == len(files) - 1
            whole = (
                len(data) if not last and offset + len(data) == file.size else _whole(data, kind)
            )
            if whole == 0 and data and len(data) == budget == limit:
                whole = len(data)  # one entry larger than the limit: take it as it is
            chunk = data[:whole]
            if offset == 0:
                chunk = chunk.removeprefix(b"\xef\xbb\xbf")
            lines += parse_view_lines(_decode(chunk), kind)
            offset += whole
            budget -= whole
            if last or offset < file.size or budget <= 0:
                break
            index, offset = index + 1, 0
        more = cut_short or index < len(files) - 1
        if not files[index].id and index > 0:  # an empty X.log: read on from the X.lo_'s end
            index, offset = index - 1, files[index - 1].size
        return LogPage(lines, start, Cursor(files[index].id, offset), more, gap)


def pages(path: str | os.PathLike[str], kind: LogKind, limit: int) -> Iterator[LogPage]:
    """Every page of the log from its start (the start of `X.lo_`), in order."""
    page = read_page(path, kind, FROM_START, limit)
    yield page
    while page.more:
        before = page.next
        page = read_page(path, kind, before, limit)
        if page.next == before or page.gap:
            return  # nothing whole to read yet, or rolled over under us
        yield page


def find_time(
    path: str | os.PathLike[str], kind: LogKind, at: datetime, limit: int
) -> LogPage | None:
    """The first page that holds an entry at or after `at` (UTC); None when none does."""
    for page in pages(path, kind, limit):
        if any(line.time is not None and line.time >= at for line in page.lines):
            return page
    return None
