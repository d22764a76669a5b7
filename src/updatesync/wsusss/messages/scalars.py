"""The scalar values of MS-WSUSSS messages: how each kind of element text (string,
int, bool, datetime, GUID, base64, digest) is read and written, and the values they share."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from updatesync.metadata.model import RevisionKey
from updatesync.wsusss.blobs import decode_b64
from updatesync.wsusss.errors import ProtocolError

UpdateIdentity = RevisionKey
"""`UpdateIdentity` (2.2.4.9) is `metadata.model.RevisionKey`: lower-case GUID, revision."""

NO_DEADLINE: Final = datetime(9999, 12, 31, 23, 59, 59, 999999)
"""The deadline of a deployment without one (3.1.4.10.3.5), as far as Python can hold it."""

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
GUID_RE: Final = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}")
_INT_RE: Final = re.compile(r"[+-]?[0-9]{1,11}")
_DATETIME_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,7}))?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_VERSION_RE: Final = re.compile(r"([0-9]{1,5})\.([0-9]{1,5})")


# --------------------------------------------------------------------------- scalars


def parse_datetime(text: str) -> datetime:
    """An `xsd:dateTime` as .NET writes it; see the package docstring. Raises ValueError."""
    match = _DATETIME_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an xsd:dateTime (yyyy-MM-ddTHH:mm:ss[.f][Z])")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    digits = match.group(7) or ""
    micro = 999999 if digits == "9999999" else int(digits.ljust(6, "0")[:6])
    zone = match.group(8)
    tz: timezone | None = None
    if zone == "Z":
        tz = UTC
    elif zone:
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    value = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    return value.astimezone(UTC) if tz is not None and tz is not UTC else value


def format_datetime(value: datetime) -> str:
    """A datetime as .NET writes an `xsd:dateTime`; aware values are written in UTC + `Z`."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, not {type(value).__name__}")
    suffix = ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
        suffix = "Z"
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if value.replace(tzinfo=None) == NO_DEADLINE:
        fraction = "9999999"
    else:
        fraction = f"{value.microsecond:06d}".rstrip("0")
    return f"{text}.{fraction}{suffix}" if fraction else text + suffix


def parse_protocol_version(text: str) -> tuple[int, int]:
    """(major, minor) of a protocol version "x.y" (1.7: 1.1, 1.2, ... 1.20).

    Raises ValueError when `text` is not two dot-separated numbers (the service answers
    InvalidParameters; a major other than 1 is IncompatibleProtocolVersion, 3.1.4.3).
    """
    match = _VERSION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"protocol version {text!r} is not of the form 'major.minor'")
    return int(match.group(1)), int(match.group(2))


def parse_int(text: str) -> int:
    stripped = text.strip()
    if _INT_RE.fullmatch(stripped) is None:
        raise ValueError(f"{text!r} is not an integer")
    value = int(stripped)
    if not INT32_MIN <= value <= INT32_MAX:
        raise ValueError(f"{value} is outside the 32-bit range of xsd:int")
    return value


def _parse_ubyte(text: str) -> int:
    value = parse_int(text)
    if not 0 <= value <= 255:
        raise ValueError(f"{value} is outside 0..255 (xsd:unsignedByte)")
    return value


def _parse_bool(text: str) -> bool:
    value = {"true": True, "1": True, "false": False, "0": False}.get(text.strip())
    if value is None:
        raise ValueError(f"{text!r} is not an xsd:boolean (true/false)")
    return value


def _parse_guid(text: str) -> str:
    stripped = text.strip()
    if GUID_RE.fullmatch(stripped) is None:
        raise ValueError(f"{text!r} is not a GUID")
    return stripped.lower()


def _parse_b64(text: str) -> bytes:
    try:
        return decode_b64(text)
    except ProtocolError as err:
        raise ValueError(err.message) from err


def _parse_digest(text: str) -> str:
    compact = "".join(text.split())
    _parse_b64(compact)
    return compact


def format_int(value: int, low: int = INT32_MIN, high: int = INT32_MAX) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an int, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{value} is outside {low}..{high}")
    return str(value)


def _format_bool(value: bool) -> str:
    if not isinstance(value, bool):
        raise TypeError(f"expected a bool, not {value!r}")
    return "true" if value else "false"


def format_guid(value: str) -> str:
    if not isinstance(value, str) or GUID_RE.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not a GUID")
    return value


def _format_str(value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a str, not {type(value).__name__}")
    return value


def _format_b64(value: bytes) -> str:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes, not {type(value).__name__}")
    return base64.b64encode(value).decode("ascii")


def _format_digest(value: str) -> str:
    _parse_b64(_format_str(value))
    return value


# kind -> (parse text, format value, needs escaping)
SCALARS: Final[dict[str, tuple[Callable[[str], Any], Callable[[Any], str], bool]]] = {
    "str": (lambda text: text, _format_str, True),
    "int": (parse_int, format_int, False),
    "ubyte": (_parse_ubyte, lambda value: format_int(value, 0, 255), False),
    "bool": (_parse_bool, _format_bool, False),
    "datetime": (parse_datetime, format_datetime, False),
    "guid": (_parse_guid, format_guid, False),
    "base64": (_parse_b64, _format_b64, False),
    "digest": (_parse_digest, _format_digest, False),
}
IDENTITY: Final = "identity"
