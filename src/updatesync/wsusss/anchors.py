"""Synchronization anchors in the Windows format `nnnn,yyyy-MM-dd HH:mm:ss.fff`.

MS-WSUSSS leaves the anchor opaque to the downstream server (3.1.4.4.3.1, 3.1.4.5.3.1): it
stores the string the upstream returned and sends it back. Windows upstreams write
`<number>,<timestamp>` (3.1.4.4.3.1 note 31: the number counts deployment changes, starting
at 1), and on a real Windows Server 2025 only the timestamp decides what is new (SPEC.md
section 7; exchanges 000010 to 000012 send the same number with an older timestamp). A
malformed anchor is answered with `InvalidParameters` naming `filter` (exchange 000018).

updatesync's choice, as an upstream: the number carries the store's change counter at the
moment the anchor was issued, and that counter is what decides "changed since" (it is exact
and immune to clock steps). The timestamp is the UTC time of issue, at millisecond
precision, so the anchor stays meaningful to a person reading logs and stays in the format
a Windows peer parses. Anchors order by (change number, timestamp).

As a downstream, updatesync keeps the upstream's anchor as the string it received; `Anchor`
is only needed to read or issue our own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from updatesync.wsusss.errors import WsusssError

__all__ = ["MAX_CHANGE_NUMBER", "Anchor", "AnchorError"]

MAX_CHANGE_NUMBER: Final = 2**31 - 1
"""Largest change number (a 32-bit signed int on Windows, note 31)."""

# ASCII digits only: `\d` would also accept other scripts' digits.
_ANCHOR_RE: Final = re.compile(
    r"([0-9]{1,10}),([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,7}))?"
)


class AnchorError(WsusssError, ValueError):
    """An anchor string that is not `nnnn,yyyy-MM-dd HH:mm:ss.fff`.

    An upstream service answers it with an `InvalidParameters` fault whose message is the
    parameter holding the anchor (`filter` for GetRevisionIdList).
    """

    def __init__(self, message: str, *, text: str) -> None:
        self.text = text
        super().__init__(f"anchor {text[:80]!r}: {message}")


@dataclass(frozen=True, slots=True, order=True)
class Anchor:
    """One anchor: a change number and a UTC timestamp (milliseconds).

    A naive `timestamp` is refused (say which zone it is in); an aware one is converted to
    UTC and cut to whole milliseconds, the precision the text form carries, so that
    `Anchor.parse(str(anchor)) == anchor`.
    """

    change_number: int
    timestamp: datetime

    def __post_init__(self) -> None:
        if isinstance(self.change_number, bool) or not isinstance(self.change_number, int):
            raise TypeError(f"change_number must be an int, not {self.change_number!r}")
        if not 0 <= self.change_number <= MAX_CHANGE_NUMBER:
            raise ValueError(
                f"change_number {self.change_number} is outside 0..{MAX_CHANGE_NUMBER}"
            )
        if self.timestamp.tzinfo is None or self.timestamp.utcoffset() is None:
            raise ValueError(
                f"timestamp {self.timestamp.isoformat()} has no time zone; pass an aware "
                "datetime (anchors are UTC)"
            )
        stamp = self.timestamp.astimezone(UTC)
        stamp = stamp.replace(microsecond=stamp.microsecond // 1000 * 1000)
        object.__setattr__(self, "timestamp", stamp)

    @classmethod
    def issue(cls, change_number: int, now: datetime) -> Anchor:
        """The anchor an upstream hands out at `now` when its change counter is at
        `change_number`."""
        return cls(change_number, now)

    def format(self) -> str:
        """The anchor as text, `nnnn,yyyy-MM-dd HH:mm:ss.fff`."""
        t = self.timestamp
        return (
            f"{self.change_number},{t.year:04d}-{t.month:02d}-{t.day:02d} "
            f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond // 1000:03d}"
        )

    def __str__(self) -> str:
        return self.format()

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """Read an anchor; the timestamp is taken as UTC.

        One to seven fraction digits are accepted (Windows writes three) and cut to
        milliseconds. Raises AnchorError for anything else, including surrounding blanks.
        """
        if not isinstance(text, str):
            raise TypeError(f"an anchor is text, not {type(text).__name__}")
        match = _ANCHOR_RE.fullmatch(text)
        if match is None:
            raise AnchorError(
                "not in the form 'nnnn,yyyy-MM-dd HH:mm:ss.fff' (change number, comma, "
                "timestamp); send the anchor exactly as the upstream returned it, or none",
                text=text,
            )
        number = int(match.group(1))
        if number > MAX_CHANGE_NUMBER:
            raise AnchorError(
                f"change number {number} is larger than {MAX_CHANGE_NUMBER}", text=text
            )
        year, month, day, hour, minute, second = (int(match.group(i)) for i in range(2, 8))
        fraction = (match.group(8) or "").ljust(6, "0")[:6]
        try:
            stamp = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=UTC)
        except ValueError as err:
            raise AnchorError(
                f"the timestamp is not a real date and time: {err}", text=text
            ) from err
        return cls(number, stamp)

    @classmethod
    def parse_optional(cls, text: str | None) -> Anchor | None:
        """`parse`, except that an absent or empty anchor (a first synchronization) is None
        (MS-WSUSSS 3.1.4.5 allows NULL or an empty string)."""
        if text is None or text == "":
            return None
        return cls.parse(text)
