"""The update server's SoftwareDistribution.log: a writer in WSUS's own line format, helpers
for the synchronization events, and a tolerant parser.

An entry is one tab-separated line, then optional continuation lines without a timestamp (an
exception's stack, or the rest of a multi-line message). The five columns:

1. UTC time to the millisecond followed by the literal ` UTC`: `2014-01-16 18:53:54.231 UTC`;
2. the level: Info, Change, Warning or Error;
3. `<process>.<managed thread id>`: `w3wp.58` (IIS worker: the admin API) or `WsusService.15`;
4. the `<Class>.<Method>` that wrote the line: `AdminDataAccess.StartSubscriptionManually`;
5. the message, which may itself hold tabs.

An event WSUS reports to the Windows event log appears as an Info line from
`EventLogEventReporter.ReportEvent` whose message is
`EventId=<n>,Type=<t>,Category=<c>,Message=<m>`. Stack lines are those of .NET's
`Exception.ToString()`: three spaces, `at `, innermost frame first.

Where each line shape was seen:
the 2014 excerpt in `../shared/fixtures/logs/msdocs-2014-hierarchy/` (Change line of a manual
start, events 382 and 384, `Firing event SyncFinish...`); Microsoft's sync troubleshooting
article (event 381 text); a real SoftwareDistribution.log shown in a 2025 talk (event 361
text, Error and Warning lines with stack lines); Microsoft's KB 4482416 (Error line followed by
`   at ...` lines). Event 386 and its `Type=Error` are *not* confirmed from a real log: the
failure text "Synchronization failed. Reason: ..." is what WSUS's API returns for a failed sync.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType

from updatesync.logs.rollover import (
    DEFAULT_MAX_BYTES,
    RolloverLog,
    read_rolled_lines,
    split_lines,
)


class SdLevel(StrEnum):
    """The level column of SoftwareDistribution.log."""

    INFO = "Info"
    CHANGE = "Change"
    WARNING = "Warning"
    ERROR = "Error"


EVENT_SOURCE = "EventLogEventReporter.ReportEvent"
SYNC_CATEGORY = "Synchronization"

EVENT_CONTENT_SYNC_STARTED = 361
EVENT_SCHEDULED_SYNC_STARTED = 381
EVENT_MANUAL_SYNC_STARTED = 382
EVENT_SYNC_SUCCEEDED = 384
EVENT_SYNC_FAILED = 386

MANUAL_SYNC_SOURCE = "AdminDataAccess.StartSubscriptionManually"
MANUAL_SYNC_MESSAGE = "Synchronization manually started"
SYNC_FINISH_SOURCE = "CatalogSyncAgent.SetSubscriptionStateWithRetry"
SYNC_FINISH_MESSAGE = "Firing event SyncFinish..."
SYNC_ERROR_SOURCE = "CatalogSyncAgentCore.ExecuteSyncProtocol"

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_HEADER = re.compile(
    r"(?P<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}) UTC\t"
    r"(?P<level>[A-Za-z]+)\t(?P<origin>[^\t]*)\t(?P<source>[^\t]*)\t(?P<message>.*)"
)
_EVENT = re.compile(
    r"EventId=(?P<id>\d+),Type=(?P<type>[^,]*),Category=(?P<category>[^,]*),Message=(?P<message>.*)"
)
_STACK_INDENT = "   "


@dataclass(frozen=True)
class SdEvent:
    """An event WSUS reported to the Windows event log, as SoftwareDistribution.log shows it."""

    event_id: int
    type: str
    category: str
    message: str

    def format(self) -> str:
        """The message column: `EventId=382,Type=Information,Category=...,Message=...`."""
        return (
            f"EventId={self.event_id},Type={self.type},"
            f"Category={self.category},Message={self.message}"
        )


def parse_event(message: str) -> SdEvent | None:
    """The event in a message column, or None when the message is not an event."""
    match = _EVENT.fullmatch(message)
    if match is None:
        return None
    return SdEvent(
        event_id=int(match["id"]),
        type=match["type"],
        category=match["category"],
        message=match["message"],
    )


@dataclass(frozen=True)
class SdEntry:
    """One SoftwareDistribution.log entry: its line and the continuation lines after it.

    `process` and `thread` are the two halves of the `w3wp.58` column (`thread` is None when
    the column has no numeric suffix, and `process` is then the whole column). `line_number`
    (1-based, in the input given to the parser) is not part of equality.
    """

    timestamp: datetime
    level: SdLevel | str
    process: str
    thread: int | None
    source: str
    message: str
    continuation: tuple[str, ...] = ()
    line_number: int | None = field(default=None, compare=False)

    @property
    def origin(self) -> str:
        """The process/thread column as written: `w3wp.58`."""
        return self.process if self.thread is None else f"{self.process}.{self.thread}"

    @property
    def event(self) -> SdEvent | None:
        """The reported event, when this entry is an `EventId=...` line."""
        return parse_event(self.message)

    @property
    def event_id(self) -> int | None:
        event = self.event
        return None if event is None else event.event_id

    @property
    def text(self) -> str:
        """The message and the continuation lines, joined by LF."""
        return "\n".join((self.message, *self.continuation))

    def header_line(self) -> str:
        """The entry's first line, without line ending."""
        return "\t".join(
            (
                format_timestamp(self.timestamp),
                str(self.level),
                self.origin,
                self.source,
                self.message,
            )
        )

    def lines(self) -> list[str]:
        """Every line of the entry, without line endings."""
        return [self.header_line(), *self.continuation]


def format_timestamp(moment: datetime) -> str:
    """`2014-01-16 18:53:54.231 UTC` (a naive datetime is taken as UTC)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{utc.strftime(_TIME_FORMAT)}.{utc.microsecond // 1000:03d} UTC"


def _parse_timestamp(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, f"{_TIME_FORMAT}.%f").replace(tzinfo=UTC)
    except ValueError:
        return None


def _split_origin(origin: str) -> tuple[str, int | None]:
    process, dot, thread = origin.rpartition(".")
    if dot and process and thread.isdigit() and thread.isascii():
        return process, int(thread)
    return origin, None


def _level(word: str) -> SdLevel | str:
    try:
        return SdLevel(word)
    except ValueError:
        return word


def parse_softwaredistribution(
    lines: Iterable[str],
    *,
    on_garbage: Callable[[int, str], None] | None = None,
) -> Iterator[SdEntry]:
    """Parse SoftwareDistribution.log lines (with or without line endings) into entries.

    A line that is not an entry header belongs to the entry before it (a stack line, or the
    rest of a multi-line message); this includes header-like lines whose date is impossible.
    Lines before the first entry have no entry to belong to: they go to `on_garbage(line
    number, line)` when given, and are skipped otherwise. The parser never raises on content.
    """
    pending: SdEntry | None = None
    extra: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if number == 1:
            line = line.removeprefix("\ufeff")
        entry = _parse_header(line, number)
        if entry is None:
            if pending is not None:
                extra.append(line)
            elif on_garbage is not None:
                on_garbage(number, line)
            continue
        if pending is not None:
            yield _with_continuation(pending, extra)
        pending, extra = entry, []
    if pending is not None:
        yield _with_continuation(pending, extra)


def _parse_header(line: str, number: int) -> SdEntry | None:
    match = _HEADER.fullmatch(line)
    if match is None:
        return None
    timestamp = _parse_timestamp(match["time"])
    if timestamp is None:
        return None
    process, thread = _split_origin(match["origin"])
    return SdEntry(
        timestamp=timestamp,
        level=_level(match["level"]),
        process=process,
        thread=thread,
        source=match["source"],
        message=match["message"],
        line_number=number,
    )


def _with_continuation(entry: SdEntry, extra: list[str]) -> SdEntry:
    if not extra:
        return entry
    return SdEntry(
        timestamp=entry.timestamp,
        level=entry.level,
        process=entry.process,
        thread=entry.thread,
        source=entry.source,
        message=entry.message,
        continuation=tuple(extra),
        line_number=entry.line_number,
    )


def read_softwaredistribution(
    path: str | os.PathLike[str],
    *,
    on_garbage: Callable[[int, str], None] | None = None,
) -> Iterator[SdEntry]:
    """Parse a SoftwareDistribution.log with its `.lo_` (older entries first)."""
    return parse_softwaredistribution(read_rolled_lines(path), on_garbage=on_garbage)


def format_stack(exc: BaseException) -> list[str]:
    """Stack lines for an exception in the shape of .NET's `Exception.ToString()`: three spaces,
    `at <frame>`, innermost first; a cause comes first, as .NET writes an inner exception
    (` ---> Type: message`, its frames, `   --- End of inner exception stack trace ---`)."""
    lines: list[str] = []
    inner = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if inner is not None:
        inner_lines = format_stack(inner)
        lines.append(f" ---> {describe_exception(inner)}")
        lines.extend(inner_lines)
        lines.append(f"{_STACK_INDENT}--- End of inner exception stack trace ---")
    lines.extend(_frames(exc.__traceback__))
    return lines


def _frames(tb: TracebackType | None) -> list[str]:
    frames = traceback.extract_tb(tb)
    out: list[str] = []
    for frame in reversed(frames):
        # `module.function()`: where, without the file's path on this machine.
        module = os.path.splitext(os.path.basename(frame.filename))[0]
        out.append(f"{_STACK_INDENT}at {module}.{frame.name}()")
    return out


def describe_exception(exc: BaseException) -> str:
    """`TypeName: message` on one line, as the first line of .NET's `Exception.ToString()`."""
    text = " ".join(split_lines(str(exc)))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _ManagedThreadIds:
    """Small per-thread numbers, like .NET managed thread ids (`w3wp.58`)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def current(self) -> int:
        value: int | None = getattr(self._local, "value", None)
        if value is None:
            with self._lock:
                value = next(self._counter)
            self._local.value = value
        return value


_THREAD_IDS = _ManagedThreadIds()


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SoftwareDistributionLog:
    """Writes SoftwareDistribution.log entries, with rollover to `SoftwareDistribution.lo_`.

    `process` names the process of the admin API lines (`w3wp`, IIS's worker, in WSUS);
    `service_process` the process of the sync and event lines (`WsusService`). `thread` is a
    fixed number, a callable giving one per entry, or None for a small number per Python
    thread. `now` gives the entry time (aware; naive is taken as UTC). Every method returns
    the entry exactly as written, so that a test can compare it with what a parser reads back.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        process: str = "w3wp",
        service_process: str = "WsusService",
        thread: int | Callable[[], int] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        for name, value in (("process", process), ("service_process", service_process)):
            _check_column(value, f"{name} of log {path}")
        self.process = process
        self.service_process = service_process
        self._thread = thread
        self._now = now
        self.file = RolloverLog(path, max_bytes=max_bytes)

    @property
    def path(self) -> Path:
        return self.file.path

    # --- generic entries -------------------------------------------------------------------

    def write(
        self,
        level: SdLevel,
        source: str,
        message: str,
        *,
        process: str | None = None,
        continuation: Sequence[str] = (),
    ) -> SdEntry:
        """Write one entry; extra lines of `message` and `continuation` follow it untimed."""
        where = f"log {self.file.path}"
        _check_column(source, f"source of an entry in {where}")
        proc = self.process if process is None else process
        _check_column(proc, f"process of an entry in {where}")
        message_lines = split_lines(message) or [""]
        extra = [*message_lines[1:]]
        for line in continuation:
            extra.extend(split_lines(line) or [""])
        entry = SdEntry(
            timestamp=_to_millis(self._now()),
            level=level,
            process=proc,
            thread=self._thread_id(),
            source=source,
            message=message_lines[0],
            continuation=tuple(_defuse(line) for line in extra),
        )
        self.file.write_entry("\n".join(entry.lines()))
        return entry

    def info(self, source: str, message: str, *, process: str | None = None) -> SdEntry:
        return self.write(SdLevel.INFO, source, message, process=process)

    def change(self, source: str, message: str, *, process: str | None = None) -> SdEntry:
        return self.write(SdLevel.CHANGE, source, message, process=process)

    def warning(self, source: str, message: str, *, process: str | None = None) -> SdEntry:
        return self.write(SdLevel.WARNING, source, message, process=process)

    def error(
        self,
        source: str,
        message: str,
        *,
        exc: BaseException | None = None,
        process: str | None = None,
    ) -> SdEntry:
        """An Error entry; with `exc`, its stack lines follow the entry (see `format_stack`)."""
        stack = format_stack(exc) if exc is not None else []
        return self.write(SdLevel.ERROR, source, message, process=process, continuation=stack)

    def event(self, event: SdEvent, *, process: str | None = None) -> SdEntry:
        """An `EventLogEventReporter.ReportEvent` line reporting `event` (Info level)."""
        return self.info(
            EVENT_SOURCE,
            event.format(),
            process=self.service_process if process is None else process,
        )

    # --- synchronization events ------------------------------------------------------------

    def manual_sync_started(self) -> list[SdEntry]:
        """The admin API's Change line, then event 382."""
        return [
            self.change(MANUAL_SYNC_SOURCE, MANUAL_SYNC_MESSAGE),
            self.event(
                SdEvent(
                    EVENT_MANUAL_SYNC_STARTED,
                    "Information",
                    SYNC_CATEGORY,
                    "A manual synchronization was started.",
                )
            ),
        ]

    def scheduled_sync_started(self) -> list[SdEntry]:
        """Event 381."""
        return [
            self.event(
                SdEvent(
                    EVENT_SCHEDULED_SYNC_STARTED,
                    "Information",
                    SYNC_CATEGORY,
                    "A scheduled synchronization was started.",
                )
            )
        ]

    def sync_succeeded(self) -> list[SdEntry]:
        """Event 384, then the catalog sync agent's `Firing event SyncFinish...`."""
        return [
            self.event(
                SdEvent(
                    EVENT_SYNC_SUCCEEDED,
                    "Information",
                    SYNC_CATEGORY,
                    "Synchronization completed successfully.",
                )
            ),
            self.info(SYNC_FINISH_SOURCE, SYNC_FINISH_MESSAGE, process=self.service_process),
        ]

    def content_sync_started(self) -> list[SdEntry]:
        """Event 361."""
        return [
            self.event(
                SdEvent(
                    EVENT_CONTENT_SYNC_STARTED,
                    "Information",
                    SYNC_CATEGORY,
                    "Content synchronization started.",
                )
            )
        ]

    def sync_failed(self, reason: str, *, error: str | None = None) -> list[SdEntry]:
        """With `error` (`Type: message`, as .NET's `Exception.ToString()` begins), an Error
        entry from the catalog sync agent; then event 386 `Synchronization failed. Reason:
        <reason>.`."""
        entries: list[SdEntry] = []
        if error is not None:
            entries.append(
                self.error(
                    SYNC_ERROR_SOURCE,
                    " ".join(split_lines(error)),
                    process=self.service_process,
                )
            )
        one_line = " ".join(split_lines(reason)).strip().rstrip(".")
        entries.append(
            self.event(
                SdEvent(
                    EVENT_SYNC_FAILED,
                    "Error",
                    SYNC_CATEGORY,
                    f"Synchronization failed. Reason: {one_line}.",
                )
            )
        )
        return entries

    def _thread_id(self) -> int:
        if self._thread is None:
            return _THREAD_IDS.current()
        if isinstance(self._thread, int):
            return self._thread
        return self._thread()


def _check_column(value: str, what: str) -> None:
    if not value or any(ch in value for ch in "\t\r\n"):
        raise ValueError(
            f"{what} is {value!r}: a SoftwareDistribution.log column must be non-empty "
            "and hold no tab or line break"
        )


def _to_millis(moment: datetime) -> datetime:
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def _defuse(line: str) -> str:
    """A continuation line that looks like an entry header would start a new entry when read
    back; one leading space keeps it inside its own entry."""
    return f" {line}" if _HEADER.fullmatch(line) else line
