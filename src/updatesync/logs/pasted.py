"""Log lines pasted from an article, a forum post or a ticket: one entry per line, in the
layouts the public sources print them (`../shared/reference/configmgr-log-lines.md`, "Log-line
formats"):

- Microsoft Learn's samples: the message, blanks, the component
  (`Starting Sync   SMS_WSUS_SYNC_MANAGER`); newer revisions drop the component;
- CMTrace's columns copied as text: the message, the component, a date and time, the thread
  (`Deleted 100 expired updates SMS_WSUS_SYNC_MANAGER 4/23/2010 4:19:22 PM 4104 (0x1008)`);
- a date prefix (`08-14-2019 08:37:30.102 Synchronizing update ...`, MS-DOTNET);
- the bare message.

The times of these layouts are the writer's local time with no time zone: they are not read
(an entry's `time` is None, as in CMTrace's copied form). A first line that starts with
CMTrace's column header glued to the message (`MessageSync failed: ...`, PMPC-PERM) loses the
header. Whether such a text is a log at all is for the reader to judge (the tracker takes it
only when some of its lines are lines it knows).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from updatesync.logs.cmtrace import LogEntry
from updatesync.logs.rollover import split_lines

_COMPONENT = r"(?:SMS_[A-Z0-9_]+|SMS Provider)"
_COLUMNS = re.compile(
    rf"(?P<message>.*?)\s+(?P<component>{_COMPONENT})"
    r"(?:\s+\d{1,2}/\d{1,2}/\d{4}\s+\d{1,2}:\d{2}:\d{2}(?:\s*[AP]M)?\s+(?P<thread>\d+)"
    r"(?:\s+\(0x[0-9A-Fa-f]+\))?)?\s*"
)
_STAMP = re.compile(r"\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}(?:\.\d{1,7})?\s+(?P<rest>.*)")
_HEADER = re.compile(r"Message(?=[A-Z])")


def parse_pasted(lines_or_text: str | Iterable[str]) -> Iterator[LogEntry]:
    """One entry per non-blank line (see the module notes); the component is "" where the
    line does not name one."""
    lines = (
        split_lines(lines_or_text)
        if isinstance(lines_or_text, str)
        else (t.rstrip("\r\n") for t in lines_or_text)
    )
    first = True
    for number, raw in enumerate(lines, start=1):
        line = raw.strip().removeprefix("\ufeff").strip()
        if not line:
            continue
        if first:
            line = _HEADER.sub("", line, count=1)
            first = False
        stamp = _STAMP.fullmatch(line)
        if stamp is not None:
            line = stamp["rest"]
        columns = _COLUMNS.fullmatch(line)
        if columns is not None and columns["message"].strip():
            yield LogEntry(
                message=columns["message"].strip(),
                component=columns["component"],
                thread=int(columns["thread"]) if columns["thread"] else None,
                line_number=number,
            )
            continue
        yield LogEntry(message=line, component="", line_number=number)
