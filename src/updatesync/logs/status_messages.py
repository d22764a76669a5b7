"""Status messages of the sync manager: the message, the STATMSG line and the console text.

A site component reports what it does by status messages. The sync manager
(`SMS_WSUS_SYNC_MANAGER`) sends 6701..6708 (their catalogue is in `updatesync.vocabulary`);
each one is also written into WSyncMgr.log as a `STATMSG:` line (SPEC section 6), which
`format_statmsg` produces and `parse_statmsg` reads back. `describe` gives the text an
administrator reads in the console.

Facts relied on (SPEC sections 4 to 6 and the real lines in `fixtures/logs/`):

- the line is `STATMSG: ID=.. SEV=.. LEV=M SOURCE="SMS Server" COMP=".." SYS=<fqdn> SITE=<code>
  PID=.. TID=.. GMTDATE=Thu Jan 16 18:57:46.304 2014 ISTR0=".." ... ISTR9=".." NUMATTRS=0`,
  GMTDATE in UTC with milliseconds, day of month two digits (`Fri Aug 02`);
- a failure (6703) carries the source in ISTR0, the error text in ISTR1 and ends with
  `LE=0X8013150a` (the last error, `0X` then lower-case hex digits);
- attributes, when a message has some, follow NUMATTRS as `AID<i>=<id> AVAL<i>="<value>"`
  (not seen in the fixtures, which all have NUMATTRS=0).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from updatesync.vocabulary import (
    CATALOGUE,
    SMS_SERVER,
    SYNC_FAILED,
    SYNC_MANAGER,
    MessageSeverity,
)

INSERTION_STRINGS = 10
"""A status message carries exactly ten insertion strings, ISTR0..ISTR9."""


class StatusMessageFormatError(ValueError):
    """A STATMSG line or a status message does not have the form ConfigMgr writes."""


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """One status message. `time` is UTC, kept to the millisecond as GMTDATE shows it;
    `strings` always holds the ten insertion strings; `last_error` is LE= (None: absent)."""

    message_id: int
    severity: MessageSeverity
    site_code: str
    system: str
    time: datetime
    process_id: int
    thread_id: int
    component: str = SYNC_MANAGER
    strings: tuple[str, ...] = ()
    attributes: tuple[tuple[int, str], ...] = field(default=())
    last_error: int | None = None
    level: str = "M"
    source: str = SMS_SERVER

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "severity", MessageSeverity(self.severity))
        except ValueError:
            raise StatusMessageFormatError(
                f"status message {self.message_id}: severity {self.severity!r} is not I, W or E"
            ) from None
        if self.time.tzinfo is None:
            raise StatusMessageFormatError(
                f"status message {self.message_id}: time {self.time} has no time zone; "
                "give it in UTC"
            )
        utc = self.time.astimezone(UTC)
        object.__setattr__(self, "time", utc.replace(microsecond=utc.microsecond // 1000 * 1000))
        strings = tuple(self.strings)
        if len(strings) > INSERTION_STRINGS:
            raise StatusMessageFormatError(
                f"status message {self.message_id}: {len(strings)} insertion strings, "
                f"at most {INSERTION_STRINGS} fit"
            )
        object.__setattr__(self, "strings", strings + ("",) * (INSERTION_STRINGS - len(strings)))
        object.__setattr__(self, "attributes", tuple((int(k), v) for k, v in self.attributes))
        if self.last_error is not None and not 0 <= self.last_error <= 0xFFFFFFFF:
            raise StatusMessageFormatError(
                f"status message {self.message_id}: last error {self.last_error} is not a "
                "32-bit unsigned value"
            )


def new_status_message(
    message_id: int,
    *,
    site_code: str,
    system: str,
    strings: Sequence[str] = (),
    last_error: int | None = None,
    time: datetime | None = None,
    component: str = SYNC_MANAGER,
) -> StatusMessage:
    """A message of the catalogue sent now by this process and thread (severity from the
    catalogue)."""
    definition = CATALOGUE.get(message_id)
    if definition is None:
        raise StatusMessageFormatError(
            f"status message {message_id} is not in the sync manager's catalogue "
            f"({', '.join(str(k) for k in CATALOGUE)})"
        )
    return StatusMessage(
        message_id=message_id,
        severity=definition.severity,
        site_code=site_code,
        system=system,
        time=time if time is not None else datetime.now(UTC),
        process_id=os.getpid(),
        thread_id=threading.get_native_id(),
        component=component,
        strings=tuple(strings),
        last_error=last_error,
    )


def sync_failed(
    *,
    site_code: str,
    system: str,
    where: str,
    what: str,
    last_error: int,
    time: datetime | None = None,
) -> StatusMessage:
    """6703: the sync failed in `where` (ISTR0) with the error text `what` (ISTR1)."""
    return new_status_message(
        SYNC_FAILED,
        site_code=site_code,
        system=system,
        strings=(where, what),
        last_error=last_error,
        time=time,
    )


def format_gmtdate(moment: datetime) -> str:
    """`Thu Jan 16 18:57:46.304 2014`: the UTC time with milliseconds, English names."""
    if moment.tzinfo is None:
        raise StatusMessageFormatError(f"GMTDATE: time {moment} has no time zone")
    t = moment.astimezone(UTC)
    return (
        f"{_DAYS[t.weekday()]} {_MONTHS[t.month - 1]} {t.day:02d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond // 1000:03d} {t.year:04d}"
    )


def format_statmsg(msg: StatusMessage) -> str:
    """The STATMSG line ConfigMgr writes into the component's log for `msg`."""
    for name, value in (("SYS", msg.system), ("SITE", msg.site_code)):
        if not value or any(c.isspace() for c in value):
            raise StatusMessageFormatError(
                f"status message {msg.message_id}: {name}={value!r} must be one word"
            )
    parts = [
        f"STATMSG: ID={msg.message_id} SEV={msg.severity.value} LEV={msg.level}",
        f'SOURCE="{msg.source}" COMP="{msg.component}"',
        f"SYS={msg.system} SITE={msg.site_code} PID={msg.process_id} TID={msg.thread_id}",
        f"GMTDATE={format_gmtdate(msg.time)}",
        *(f'ISTR{i}="{s}"' for i, s in enumerate(msg.strings)),
        f"NUMATTRS={len(msg.attributes)}",
        *(f'AID{i}={aid} AVAL{i}="{value}"' for i, (aid, value) in enumerate(msg.attributes)),
    ]
    if msg.last_error is not None:
        parts.append(f"LE=0X{msg.last_error:08x}")
    return " ".join(parts)


_ISTRS = " ".join(f'ISTR{i}="(?P<s{i}>.*?)"' for i in range(INSERTION_STRINGS))
_LINE = re.compile(
    r"STATMSG: ID=(?P<id>\d+) SEV=(?P<sev>\S+) LEV=(?P<lev>\S+) "
    r'SOURCE="(?P<source>[^"]*)" COMP="(?P<comp>[^"]*)" '
    r"SYS=(?P<sys>\S+) SITE=(?P<site>\S+) PID=(?P<pid>\d+) TID=(?P<tid>\d+) "
    r"GMTDATE=(?P<wd>\w{3}) (?P<mon>\w{3}) (?P<day>\d{2}) "
    r"(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})\.(?P<ms>\d{3}) (?P<year>\d{4}) "
    + _ISTRS
    + r" NUMATTRS=(?P<n>\d+)(?P<attrs>(?: AID\d+=\d+ AVAL\d+=\".*?\")*)"
    r"(?: LE=0[Xx](?P<le>[0-9A-Fa-f]{1,8}))?"
)
_ATTR = re.compile(r' AID(?P<i>\d+)=(?P<aid>\d+) AVAL(?P=i)="(?P<value>.*?)"(?= AID| LE=|$)')


def parse_statmsg(line: str) -> StatusMessage:
    """The status message a STATMSG line (as `format_statmsg` writes it) describes.

    Takes the message text alone: strip the log format around it first (CMTrace markup, or
    the `<TAB>component` of a line copied from CMTrace).
    """
    text = line.rstrip("\r\n")
    match = _LINE.fullmatch(text)
    if match is None:
        raise StatusMessageFormatError(f"not a STATMSG line: {text[:120]!r}")
    g = match.groupdict()
    where = f"STATMSG ID={g['id']}"
    if g["mon"] not in _MONTHS or g["wd"] not in _DAYS:
        raise StatusMessageFormatError(f"{where}: GMTDATE has an unknown day or month name")
    try:
        moment = datetime(
            int(g["year"]),
            _MONTHS.index(g["mon"]) + 1,
            int(g["day"]),
            int(g["h"]),
            int(g["m"]),
            int(g["s"]),
            int(g["ms"]) * 1000,
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise StatusMessageFormatError(f"{where}: GMTDATE is not a date ({exc})") from None
    if _DAYS[moment.weekday()] != g["wd"]:
        raise StatusMessageFormatError(
            f"{where}: GMTDATE says {g['wd']} but {moment:%Y-%m-%d} is a {_DAYS[moment.weekday()]}"
        )
    attributes = tuple((int(a["aid"]), a["value"]) for a in _ATTR.finditer(g["attrs"]))
    if len(attributes) != int(g["n"]):
        raise StatusMessageFormatError(
            f"{where}: NUMATTRS={g['n']} but {len(attributes)} attributes follow"
        )
    return StatusMessage(
        message_id=int(g["id"]),
        severity=g["sev"],  # type: ignore[arg-type]  # __post_init__ checks and converts
        level=g["lev"],
        source=g["source"],
        component=g["comp"],
        system=g["sys"],
        site_code=g["site"],
        process_id=int(g["pid"]),
        thread_id=int(g["tid"]),
        time=moment,
        strings=tuple(g[f"s{i}"] for i in range(INSERTION_STRINGS)),
        attributes=attributes,
        last_error=int(g["le"], 16) if g["le"] is not None else None,
    )


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


def describe(msg: StatusMessage) -> str:
    """The message as the console shows it: the catalogue text with %1..%10 filled in; for a
    failure (6703) also the error text (ISTR1) and where it arose (ISTR0)."""
    definition = CATALOGUE.get(msg.message_id)
    if definition is None:
        filled = [s for s in msg.strings if s]
        extra = f": {'; '.join(filled)}" if filled else ""
        return f"Status message {msg.message_id} from {msg.component}{extra}"
    text = re.sub(r"%(10|[1-9])", lambda m: msg.strings[int(m.group(1)) - 1], definition.text)
    if msg.message_id == SYNC_FAILED:
        where, what = msg.strings[0], msg.strings[1]
        if what:
            text += f"\nMessage: {_sentence(what)}"
        if where:
            text += f"\nSource: {_sentence(where)}"
    return text
