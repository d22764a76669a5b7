"""ConfigMgr site-server logs in the simple format: a writer, a tolerant parser and a reader of
`X.lo_` then `X.log`.

One entry is one line (here cut in two for width):

    Wakeup by inbox drop  $$<SMS_WSUS_SYNC_MANAGER>
    <01-16-2014 10:53:52.608+480><thread=3404 (0xD4C)>

the message, two spaces, `$$`, then `<component>`, `<MM-dd-yyyy HH:mm:ss.fff` + bias`>` and
`<thread=<decimal id> (0x<hex id>)>`. A line break inside a message is written `~~`. The format
has no severity.

The bias has the same meaning as in the CMTrace format (see `updatesync.logs.cmtrace`): the
Windows `TIME_ZONE_INFORMATION.Bias`, UTC = local + bias, so `+480` is Pacific Standard time.
Real lines bear this out: `-60` on a UK site in June whose message itself names "GMT Daylight
Time" (PkgXferMgr.log on davegernon.co.uk, 2018), `+420` in August (a ConfigMgr setup log
quoted in Microsoft's TLS 1.2 support article), `+300` in December from a US Eastern
statesys.log sample, `-600` in June from an Australian ccm.log sample (blog.tyang.org, 2015).
Non-zero biases are written without padding (`-60`); zero is written `+000` here, as in the
CMTrace writer (not confirmed from a real line).

Hex thread ids are upper case without padding (`0xD4C`, `0x2398`, `0xB34` in the real lines).
Real lines also show single `~` characters (`...CLOSE~  $$<`, a line starting `~Exec...`),
whose meaning is not documented; the parser leaves a single `~` as it is and reads `~~` as a
line break. A message holding `~~` itself therefore reads back with a line break there: the
writer returns every entry as a reader will read it.

Very old logs (SMS 2.0) put a text date such as `<Fri Mar 26 10:43:41.547 1999 Eastern
Standard Time>` in the date field; such entries are parsed with `time` None.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path

from updatesync.logs.cmtrace import (
    GarbageHandler,
    LogEntry,
    ThreadSource,
    as_utc_millis,
    check_bias,
    format_bias,
    instant_of,
    machine_bias_minutes,
    parse_local,
    resolve_thread,
    to_local,
    utc_now,
)
from updatesync.logs.rollover import DEFAULT_MAX_BYTES, RolloverLog, read_rolled_lines, split_lines

NEWLINE_MARK = "~~"
SEPARATOR = "  $$"

_LINE = re.compile(
    r"(?P<message>.*?) {0,2}\$\$<(?P<component>[^<>]*)><(?P<when>[^<>]*)>"
    r"<thread=(?P<thread>[0-9]+)(?: \(0x[0-9A-Fa-f]+\))?>"
)
_WHEN = re.compile(
    r"(\d{1,2})-(\d{1,2})-(\d{4}) (\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?([+-])(\d{1,4})"
)


def encode_message(message: str) -> str:
    """The message as written: every line break (CRLF, LF or CR) becomes `~~`."""
    return message.replace("\r\n", "\n").replace("\r", "\n").replace("\n", NEWLINE_MARK)


def decode_message(written: str) -> str:
    """The message as read: `~~` becomes LF."""
    return written.replace(NEWLINE_MARK, "\n")


def _check_component(component: str, where: str) -> None:
    if not component or any(ch in component for ch in "<>\r\n"):
        raise ValueError(
            f"{where}: component {component!r} must be non-empty and hold no '<', '>' or line break"
        )


class SimpleLog:
    """Writes one ConfigMgr component's log in the simple site-server format, with `.lo_`
    rollover.

    The parameters mean what they mean for `CMTraceLog` (`bias_minutes` None: this machine's
    bias at each entry). The format has no severity: `info`, `warning` and `error` write the
    same line, and the entry each returns (as a reader will read it back) has severity None.
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
    ) -> None:
        where = f"log {path}"
        _check_component(component, where)
        self.component = component
        self.bias_minutes = None if bias_minutes is None else check_bias(bias_minutes, where)
        self._now = now
        self._thread = thread
        self.file = RolloverLog(path, max_bytes=max_bytes)

    @property
    def path(self) -> Path:
        return self.file.path

    def info(self, message: str, *, thread: int | None = None) -> LogEntry:
        return self.write(message, thread=thread)

    def warning(self, message: str, *, thread: int | None = None) -> LogEntry:
        return self.write(message, thread=thread)

    def error(self, message: str, *, thread: int | None = None) -> LogEntry:
        return self.write(message, thread=thread)

    def write(self, message: str, *, thread: int | None = None) -> LogEntry:
        """Write one entry (one line)."""
        where = f"log {self.file.path}"
        if not isinstance(message, str):
            raise TypeError(f"{where}: message must be str, got {type(message).__name__}")
        utc = as_utc_millis(self._now(), where)
        bias = self.bias_minutes
        if bias is None:
            bias = check_bias(machine_bias_minutes(utc), f"{where} (machine time zone)")
        written = encode_message(message)
        entry = LogEntry(
            message=decode_message(written),
            component=self.component,
            time=utc,
            thread=resolve_thread(self._thread, thread, where),
            bias_minutes=bias,
        )
        self.file.write_entry(format_line(entry))
        return entry


def format_line(entry: LogEntry) -> str:
    """The line of one entry, without line ending."""
    if entry.time is None or entry.bias_minutes is None:
        raise ValueError(
            f"entry {entry.message[:40]!r}: a simple-format entry needs a time and a bias"
        )
    local = to_local(entry.time, entry.bias_minutes)
    thread = entry.thread or 0
    return (
        f"{encode_message(entry.message)}{SEPARATOR}<{entry.component}>"
        f"<{local:%m-%d-%Y %H:%M:%S}.{local.microsecond // 1000:03d}"
        f"{format_bias(entry.bias_minutes)}><thread={thread} (0x{thread:X})>"
    )


def parse_simple(
    lines_or_text: str | Iterable[str],
    *,
    on_garbage: GarbageHandler | None = None,
) -> Iterator[LogEntry]:
    """Parse simple-format text (a whole text, or lines with or without line endings).

    Each entry is one line; a line that is not an entry (nor blank) goes to
    `on_garbage(line number, line)` when given, and is skipped otherwise. An entry whose date
    field cannot be read is still returned, with `time` None. Never raises on content.
    """
    lines = split_lines(lines_or_text) if isinstance(lines_or_text, str) else lines_or_text
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if number == 1:
            line = line.removeprefix("\ufeff")
        match = _LINE.fullmatch(line)
        if match is None:
            if line.strip() and on_garbage is not None:
                on_garbage(number, line)
            continue
        time, bias = _when(match["when"])
        yield LogEntry(
            message=decode_message(match["message"]),
            component=match["component"],
            time=time,
            thread=int(match["thread"]),
            bias_minutes=bias,
            line_number=number,
        )


def _when(text: str) -> tuple[datetime | None, int | None]:
    match = _WHEN.fullmatch(text) if text.isascii() else None
    if match is None:
        return None, None
    month, day, year, hour, minute, second, fraction, sign, digits = match.groups()
    bias = int(digits) * (-1 if sign == "-" else 1)
    local = parse_local(month, day, year, hour, minute, second, fraction or "")
    return instant_of(local, bias), bias


def read_simple(
    path: str | os.PathLike[str],
    *,
    on_garbage: GarbageHandler | None = None,
) -> Iterator[LogEntry]:
    """Parse a simple-format log with its `.lo_` (older entries first)."""
    return parse_simple(read_rolled_lines(path), on_garbage=on_garbage)
