"""ConfigMgr component logs in the CMTrace ("CCM") format: a writer, a tolerant parser, a reader
of `X.lo_` then `X.log`, and a reader of the copied form CMTrace puts on the clipboard.

One entry, with its message possibly spread over several lines:

    <![LOG[message]LOG]!><time="18:53:52.608+480" date="01-16-2014"
    component="SMS_WSUS_SYNC_MANAGER" context="" type="1" thread="3404" file="wsyncmgr.cpp:123">

(the attributes are on the same line as `]LOG]!>`; wrapped here only for width). `type` is 1
information, 2 warning, 3 error. `time` and `date` are the writer's *local* time; the number
after the milliseconds is the Windows time-zone **bias** in minutes, the value of
`TIME_ZONE_INFORMATION.Bias`: UTC = local + bias, so local = UTC - bias (+480 Pacific
Standard, +420 Pacific Daylight, +240 Eastern Daylight, -60 British Summer, -120 Central
European Summer). Where these facts come from:

- the bias sign: real ConfigMgr lines whose zone is known: `-60` on a UK site in June with the
  message itself saying "GMT Daylight Time" (PkgXferMgr.log quoted on davegernon.co.uk, 2018),
  `-120` in July from a European smsdpmon.log, `+240` in May and August US Eastern lines, and
  a CMTrace-compatible viewer whose users in Eastern Daylight time saw every entry four hours
  early because it read the number as an east-positive offset (adamgell/cmtraceopen issue 41).
  Several third-party parsers (plaso's SCCM parser, cmtraceopen's `ccm.rs`) read it the other
  way round; we follow the Windows meaning, which the real lines bear out;
- the bias is written without padding when not zero (`-60`, not `-060`, in the real lines
  above); zero is written `+000` here, the form CMTrace-compatible writers use and the
  `+BBB` of the spec (a real ConfigMgr line with zero bias was not found to confirm it);
- `context=""` is empty and `file="source.cpp:line"` names the writer's source file and line
  in the real site-server lines (e.g. `file="smsdpmon.cpp:889"`); `file=""` also occurs;
- the date is `MM-dd-yyyy` in ConfigMgr's own lines; the Intune extension writes `M-d-yyyy`
  and seven fractional digits without a bias, which the parser accepts too (time then unknown).

The writer writes UTF-8 without BOM through `RolloverLog` (CRLF line ends, `.lo_` rollover,
one write per entry, or per batch of entries with `write_many`); the reader accepts the
encodings `decode_log_bytes` knows.

The copied form (`parse_rendered`) is what CMTrace puts on the clipboard when log lines are
selected and copied: one `message<TAB>component` line per entry, as in the fixtures under
`../shared/fixtures/logs/`. A multi-line message is copied with its line breaks, so lines
without a tab are the first lines of the message whose component ends a later line.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from types import CodeType
from typing import TypeVar

from updatesync.logs.rollover import DEFAULT_MAX_BYTES, RolloverLog, read_rolled_lines, split_lines

OPEN = "<![LOG["
CLOSE = "]LOG]!>"
MAX_BIAS_MINUTES = 24 * 60 - 1
"""Largest bias accepted, in either direction (real zones stay within -840..+720)."""

GarbageHandler = Callable[[int, str], None]
"""Called with the 1-based line number where unparsable text starts, and that text."""


class Severity(IntEnum):
    """The `type` attribute of a CMTrace entry."""

    INFO = 1
    WARNING = 2
    ERROR = 3


@dataclass(frozen=True)
class LogEntry:
    """One ConfigMgr component log entry, whichever format it came from.

    `time` is an aware UTC datetime, or None when the entry does not say it (the copied form)
    or says it in a shape we cannot read. `bias_minutes` is the Windows bias the entry was
    written with (UTC = local + bias). `severity` is None where the format has none (the simple
    format, the copied form). `file` and `context` exist in the CMTrace format only.
    `line_number` (1-based, where the entry starts in the parser's input) is not part of
    equality.
    """

    message: str
    component: str
    time: datetime | None = None
    severity: Severity | None = None
    thread: int | None = None
    file: str | None = None
    context: str | None = None
    bias_minutes: int | None = None
    line_number: int | None = field(default=None, compare=False)

    @property
    def local_time(self) -> datetime | None:
        """The writer's wall-clock time (naive), as the log line shows it."""
        if self.time is None or self.bias_minutes is None:
            return None
        return to_local(self.time, self.bias_minutes)


# --- time and bias ---------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc_millis(moment: datetime, where: str) -> datetime:
    """`moment` in UTC, truncated to the millisecond (a naive datetime is taken as UTC)."""
    if not isinstance(moment, datetime):
        raise TypeError(f"{where}: the clock returned {moment!r}, not a datetime")
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def machine_bias_minutes(at: datetime) -> int:
    """This machine's Windows-style bias at the instant `at` (UTC = local + bias)."""
    offset = at.astimezone().utcoffset()
    return 0 if offset is None else -round(offset.total_seconds() / 60)


def check_bias(bias: int, where: str) -> int:
    if isinstance(bias, bool) or not isinstance(bias, int):
        raise TypeError(f"{where}: bias_minutes must be an int, got {bias!r}")
    if abs(bias) > MAX_BIAS_MINUTES:
        raise ValueError(
            f"{where}: bias_minutes {bias} is outside ±{MAX_BIAS_MINUTES} "
            "(it is minutes to add to local time to get UTC)"
        )
    return bias


def format_bias(bias: int) -> str:
    """`+480`, `-60`, `+000` for zero."""
    return "+000" if bias == 0 else f"{bias:+d}"


def to_local(utc: datetime, bias: int) -> datetime:
    """Naive local time for an aware UTC time: local = UTC - bias."""
    return utc.astimezone(UTC).replace(tzinfo=None) - timedelta(minutes=bias)


def from_local(local: datetime, bias: int) -> datetime:
    """Aware UTC time for a naive local time: UTC = local + bias."""
    return (local + timedelta(minutes=bias)).replace(tzinfo=UTC)


def instant_of(local: datetime | None, bias: int) -> datetime | None:
    """The UTC instant of a local time written with `bias`, or None when either is invalid."""
    if local is None or abs(bias) > MAX_BIAS_MINUTES:
        return None
    try:
        return from_local(local, bias)
    except OverflowError:
        return None


def parse_local(
    month: str, day: str, year: str, hour: str, minute: str, second: str, fraction: str
) -> datetime | None:
    """A naive datetime from text fields, or None when they name no real instant."""
    try:
        micro = int((fraction + "000000")[:6]) if fraction else 0
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro)
    except ValueError:
        return None


# --- threads and source locations ------------------------------------------------------------

ThreadSource = int | Callable[[], int] | None


def resolve_thread(default: ThreadSource, override: int | None, where: str) -> int:
    """The thread id for one entry: the per-call value, else the log's, else the OS thread id."""
    if override is not None:
        value = override
    elif default is None:
        value = threading.get_native_id()
    elif isinstance(default, int):
        value = default
    else:
        value = default()
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: thread must be a non-negative int, got {value!r}")
    return value


LOG_MODULES = frozenset(
    {"updatesync.logs.cmtrace", "updatesync.logs.simple", "updatesync.logs.component"}
)
"""Modules of this package's component-log writers, skipped when looking for the caller."""

_HELPERS: set[CodeType] = set()
"""The code of the functions marked with `log_helper`, skipped like the writers' modules."""

_Helper = TypeVar("_Helper", bound=Callable[..., object])


def log_helper(function: _Helper) -> _Helper:
    """Mark `function` as a helper that writes lines for its caller (a status message with its
    STATMSG line, a failure's lines): `file=` then names the line that called it, as a real
    site server's names the place that decided to log, not a shared formatting routine."""
    _HELPERS.add(function.__code__)
    return function


def caller_location() -> str:
    """`file.py:line` of the nearest frame outside the log writers and the helpers marked with
    `log_helper` (the code that logs)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code not in _HELPERS and frame.f_globals.get("__name__") not in LOG_MODULES:
            return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return ""


# --- writer ----------------------------------------------------------------------------------

_ATTRIBUTE = re.compile(r'[ \t]*([A-Za-z_][A-Za-z0-9_]*)="([^"\r\n]*)"')
_TAIL = re.compile(r'\]LOG\]!><(?P<attrs>(?:[ \t]*[A-Za-z_][A-Za-z0-9_]*="[^"\r\n]*")+)[ \t]*>')
_TIME = re.compile(r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?(?:([+-])(\d{1,4}))?")
_DATE = re.compile(r"(\d{1,2})-(\d{1,2})-(\d{4})")


def _check_attribute(value: str, what: str) -> None:
    if not isinstance(value, str) or any(ch in value for ch in '"\r\n'):
        raise ValueError(f"{what} is {value!r}: a CMTrace attribute holds no quote or line break")


def _defuse_message(message: str) -> str:
    """The message as it can be written: line breaks normalised to LF; a line that starts like
    an entry gets a leading space, and `]LOG]!><` (the end of the message) gets one after
    `!>`, so that a reader does not take either for the structure of the log."""
    if "\n" not in message and "\r" not in message and "]LOG]!><" not in message:
        return message  # one line, nothing to defuse (the common case)
    lines = split_lines(message) if message else [""]
    if message.endswith(("\n", "\r")):
        lines.append("")
    text = "\n".join(
        f" {line}" if line.startswith(OPEN) and n else line for n, line in enumerate(lines)
    )
    return text.replace("]LOG]!><", "]LOG]!> <")


class CMTraceLog:
    """Writes one ConfigMgr component's log in the CMTrace format, rolling `.log` over to `.lo_`.

    `component` goes in every entry. `bias_minutes` fixes the Windows bias written (UTC = local
    + bias); None uses this machine's bias at the time of each entry, as ConfigMgr does.
    `now` gives the entry time (aware; naive is taken as UTC). `thread` is a fixed id, a
    callable, or None for the OS thread id. `file_hint` is the `file=` attribute: None for the
    caller's `file.py:line`, a string (possibly empty) to write it as is. `context` is the
    `context=` attribute (empty in ConfigMgr's site-server logs).

    Each method writes one entry in one write and returns it as a reader will read it back.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        component: str,
        max_bytes: int = DEFAULT_MAX_BYTES,
        bias_minutes: int | None = None,
        now: Callable[[], datetime] = utc_now,
        thread: ThreadSource = None,
        file_hint: str | None = None,
        context: str = "",
    ) -> None:
        where = f"log {path}"
        if not component:
            raise ValueError(f"{where}: component must not be empty")
        _check_attribute(component, f"component of {where}")
        _check_attribute(context, f"context of {where}")
        if file_hint is not None:
            _check_attribute(file_hint, f"file_hint of {where}")
        self.component = component
        self.context = context
        self.bias_minutes = None if bias_minutes is None else check_bias(bias_minutes, where)
        self.file_hint = file_hint
        self._now = now
        self._thread = thread
        self.file = RolloverLog(path, max_bytes=max_bytes)

    @property
    def path(self) -> Path:
        return self.file.path

    def info(self, message: str, *, thread: int | None = None) -> LogEntry:
        return self.write(Severity.INFO, message, thread=thread)

    def warning(self, message: str, *, thread: int | None = None) -> LogEntry:
        return self.write(Severity.WARNING, message, thread=thread)

    def error(self, message: str, *, thread: int | None = None) -> LogEntry:
        return self.write(Severity.ERROR, message, thread=thread)

    def write(self, severity: Severity, message: str, *, thread: int | None = None) -> LogEntry:
        """Write one entry of the given severity."""
        where = f"log {self.file.path}"
        if not isinstance(message, str):
            raise TypeError(f"{where}: message must be str, got {type(message).__name__}")
        severity = Severity(severity)
        utc = as_utc_millis(self._now(), where)
        bias = self.bias_minutes
        if bias is None:
            bias = check_bias(machine_bias_minutes(utc), f"{where} (machine time zone)")
        file_attr = self.file_hint
        if file_attr is None:
            file_attr = caller_location()
        entry = LogEntry(
            message=_defuse_message(message),
            component=self.component,
            time=utc,
            severity=severity,
            thread=resolve_thread(self._thread, thread, where),
            file=file_attr,
            context=self.context,
            bias_minutes=bias,
        )
        self.file.write_entry(format_entry(entry))
        return entry

    def info_many(self, messages: Iterable[str], *, thread: int | None = None) -> int:
        return self.write_many(Severity.INFO, messages, thread=thread)

    def write_many(
        self, severity: Severity, messages: Iterable[str], *, thread: int | None = None
    ) -> int:
        """Write one entry per message, all with the same severity, time, thread and `file=`,
        in order, opening the log once for them all (a rollover still falls between two
        entries, never inside one). The lines are those `write` would give each message at
        that moment. Returns how many were written."""
        where = f"log {self.file.path}"
        severity = Severity(severity)
        utc = as_utc_millis(self._now(), where)
        bias = self.bias_minutes
        if bias is None:
            bias = check_bias(machine_bias_minutes(utc), f"{where} (machine time zone)")
        file_attr = self.file_hint
        if file_attr is None:
            file_attr = caller_location()
        # Every entry of the batch ends alike: build that end once.
        tail = format_entry(
            LogEntry(
                message="",
                component=self.component,
                time=utc,
                severity=severity,
                thread=resolve_thread(self._thread, thread, where),
                file=file_attr,
                context=self.context,
                bias_minutes=bias,
            )
        ).removeprefix(f"{OPEN}{CLOSE}")

        def entries() -> Iterator[str]:
            for message in messages:
                if not isinstance(message, str):
                    raise TypeError(f"{where}: message must be str, got {type(message).__name__}")
                yield f"{OPEN}{_defuse_message(message)}{CLOSE}{tail}"

        return self.file.write_entries(entries())


def format_entry(entry: LogEntry) -> str:
    """The text of one entry (lines joined by LF, no final line break)."""
    if entry.time is None or entry.bias_minutes is None:
        raise ValueError(f"entry {entry.message[:40]!r}: a CMTrace entry needs a time and a bias")
    local = to_local(entry.time, entry.bias_minutes)
    severity = Severity.INFO if entry.severity is None else entry.severity
    return (
        f"{OPEN}{entry.message}{CLOSE}"
        f'<time="{local:%H:%M:%S}.{local.microsecond // 1000:03d}'
        f'{format_bias(entry.bias_minutes)}" date="{local:%m-%d-%Y}" '
        f'component="{entry.component}" context="{entry.context or ""}" '
        f'type="{int(severity)}" thread="{entry.thread or 0}" file="{entry.file or ""}">'
    )


# --- parser ----------------------------------------------------------------------------------


def _as_text(lines_or_text: str | Iterable[str]) -> str:
    if isinstance(lines_or_text, str):
        text = lines_or_text
    else:
        text = "\n".join(line.rstrip("\r\n") for line in lines_or_text)
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


class _LineCounter:
    """1-based line numbers of increasing offsets in one text, counted incrementally."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._offset = 0
        self._line = 1

    def at(self, offset: int) -> int:
        if offset < self._offset:  # not expected; recount from the start
            self._offset, self._line = 0, 1
        self._line += self._text.count("\n", self._offset, offset)
        self._offset = offset
        return self._line


def _report(
    text: str, start: int, end: int, lines: _LineCounter, on_garbage: GarbageHandler | None
) -> None:
    chunk = text[start:end]
    if on_garbage is None or not chunk.strip():
        return
    skipped = len(chunk) - len(chunk.lstrip())
    on_garbage(lines.at(start + skipped), chunk.strip())


def parse_cmtrace(
    lines_or_text: str | Iterable[str],
    *,
    on_garbage: GarbageHandler | None = None,
) -> Iterator[LogEntry]:
    """Parse CMTrace-format text (a whole text, or lines with or without line endings).

    A message may span lines; its line breaks come back as LF. Text that belongs to no entry
    (before, between or after entries; an entry cut short, as when a writer died mid-line) goes
    to `on_garbage(line number, text)` when given, and is skipped otherwise. An entry whose
    time, date or bias cannot be read is still returned, with `time` None. Never raises on
    content.
    """
    text = _as_text(lines_or_text)
    lines = _LineCounter(text)
    pos = 0
    while True:
        start = text.find(OPEN, pos)
        if start < 0:
            _report(text, pos, len(text), lines, on_garbage)
            return
        _report(text, pos, start, lines, on_garbage)
        tail = _TAIL.search(text, start + len(OPEN))
        if tail is None:
            _report(text, start, len(text), lines, on_garbage)
            return
        # An opener at the start of a line inside the message means the entry before it was cut
        # short: that part is garbage and the entry starts at the last such opener.
        inner = text.rfind("\n" + OPEN, start, tail.start())
        if inner >= 0:
            _report(text, start, inner + 1, lines, on_garbage)
            start = inner + 1
        yield _entry(text[start + len(OPEN) : tail.start()], tail["attrs"], lines.at(start))
        pos = tail.end()


def _entry(message: str, attrs: str, line_number: int) -> LogEntry:
    values = {name.lower(): value for name, value in _ATTRIBUTE.findall(attrs)}
    time, bias = _entry_time(values.get("time", ""), values.get("date", ""))
    thread_text = values.get("thread", "")
    type_text = values.get("type", "")
    severity: Severity | None = None
    if type_text.isdigit() and type_text.isascii() and int(type_text) in (1, 2, 3):
        severity = Severity(int(type_text))
    return LogEntry(
        message=message,
        component=values.get("component", ""),
        time=time,
        severity=severity,
        thread=int(thread_text) if thread_text.isdigit() and thread_text.isascii() else None,
        file=values.get("file"),
        context=values.get("context"),
        bias_minutes=bias,
        line_number=line_number,
    )


def _entry_time(time_text: str, date_text: str) -> tuple[datetime | None, int | None]:
    time_match = _TIME.fullmatch(time_text) if time_text.isascii() else None
    date_match = _DATE.fullmatch(date_text) if date_text.isascii() else None
    if time_match is None or date_match is None:
        return None, None
    hour, minute, second, fraction, sign, bias_digits = time_match.groups()
    if sign is None:
        return None, None  # no bias: the instant is unknown
    bias = int(bias_digits) * (-1 if sign == "-" else 1)
    month, day, year = date_match.groups()
    local = parse_local(month, day, year, hour, minute, second, fraction or "")
    return instant_of(local, bias), bias


def read_cmtrace(
    path: str | os.PathLike[str],
    *,
    on_garbage: GarbageHandler | None = None,
) -> Iterator[LogEntry]:
    """Parse a CMTrace-format log with its `.lo_` (older entries first). Line numbers count
    through `.lo_` and then `.log`."""
    return parse_cmtrace(read_rolled_lines(path), on_garbage=on_garbage)


# --- the copied form -------------------------------------------------------------------------


def parse_rendered(
    text: str | Iterable[str],
    *,
    on_garbage: GarbageHandler | None = None,
) -> list[tuple[str, str]]:
    """Parse CMTrace's copied form, `message<TAB>component` per entry, into (message,
    component) pairs. The last tab on a line separates the component. Lines without a tab
    start a multi-line message that a later line ends; such lines left at the end of the text
    go to `on_garbage(line number, text)`. Blank lines between entries are skipped."""
    lines = split_lines(text) if isinstance(text, str) else [t.rstrip("\r\n") for t in text]
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    pairs: list[tuple[str, str]] = []
    pending: list[str] = []
    pending_line = 0
    for number, line in enumerate(lines, start=1):
        if "\t" not in line:
            if pending or line.strip():
                if not pending:
                    pending_line = number
                pending.append(line)
            continue
        message, _, component = line.rpartition("\t")
        pairs.append(("\n".join([*pending, message]), component))
        pending = []
    if pending and on_garbage is not None:
        on_garbage(pending_line, "\n".join(pending).strip())
    return pairs
