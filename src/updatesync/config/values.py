"""The values of the hierarchy file's keys: one check per kind of value (a site code, a host
name, a port, an interval, a GUID list, ...), each taking what TOML gave and returning the
normalised value or raising a `PydanticCustomError` whose message tells the administrator what
to write instead. `updatesync.config.model` attaches them to the keys."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Final, Literal, TypeVar, cast
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from updatesync.config.databases import PASSWORD_VARIABLE, check_database_url
from updatesync.config.defaults import MAX_TZ_BIAS, MIN_TZ_BIAS
from updatesync.config.hierarchy import SiteType, UpstreamKind
from updatesync.config.schedule import Schedule, parse_duration, parse_schedule, parse_size

__all__ = [
    "ALSO",
    "PROBLEM",
    "SITE_TYPES",
    "UPSTREAM_KINDS",
    "Loc",
    "at",
    "boolean",
    "category_id",
    "format_path",
    "guid_list",
    "host",
    "interval",
    "language_code",
    "language_list",
    "minutes_or_interval",
    "problem",
    "schedule",
    "schedule_start",
    "site_code",
    "site_port",
    "site_type",
    "size",
    "sup_port",
    "text",
    "toml_type",
    "tz_bias",
    "upstream_kind",
    "webhook_url",
]

Loc = tuple[str | int, ...]
"""A key path below the table being validated, such as `("sups", 0, "port")`."""

PROBLEM: Final = "hierarchy"
"""The error type of every problem raised here."""
ALSO: Final = "{also}"
"""Stands in a message for the key path of an earlier list item (`also_item` in the error's
context); the loader writes the path, which only it knows in full."""

SITE_TYPES: Final[tuple[SiteType, ...]] = ("cas", "primary", "secondary")
UPSTREAM_KINDS: Final[tuple[UpstreamKind, ...]] = ("microsoft-update", "wsus", "none")

_SITE_CODE = re.compile(r"[A-Za-z0-9]{3}")
_GUID = re.compile(
    r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?"
)
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

T = TypeVar("T")
R = TypeVar("R")


def format_path(path: Loc) -> str:
    """`sites[2].sups[0].port`: a key path as the administrator reads it."""
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        else:
            key = segment if _BARE_KEY.fullmatch(segment) else json.dumps(segment)
            out += f".{key}" if out else key
    return out


def problem(message: str, **context: object) -> PydanticCustomError:
    """One problem with the value being checked."""
    return PydanticCustomError(PROBLEM, "{message}", {"message": message, **context})


def at(loc: Loc, message: str, value: object, **context: object) -> InitErrorDetails:
    """A problem at a key path below the value being checked (such as an item of a list);
    raise several with `ValidationError.from_exception_data`."""
    return InitErrorDetails(type=problem(message, **context), loc=loc, input=value)


def toml_type(value: object) -> str:
    """`a string`, `an integer`, ...: the TOML name of a parsed value's type."""
    names: tuple[tuple[type, str], ...] = (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (dict, "a table"),
        (list, "an array"),
        (datetime, "a date-time"),
        (date, "a date"),
        (time, "a time"),
    )
    return next((name for kind, name in names if isinstance(value, kind)), type(value).__name__)


# --------------------------------------------------------------------------- scalars


def text(value: object) -> str:
    """A non-empty string, stripped."""
    if not isinstance(value, str):
        raise problem(f"must be a string, got {toml_type(value)} {value!r}")
    if not value.strip():
        raise problem("must not be empty")
    return value.strip()


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise problem(f"must be true or false, got {toml_type(value)} {value!r}")
    return value


def site_code(value: object) -> str:
    """Exactly 3 letters or digits, upper-cased."""
    code = text(value)
    if not _SITE_CODE.fullmatch(code):
        raise problem(f"site code {code!r} must be exactly 3 letters or digits (such as CS1)")
    return code.upper()


def site_type(value: object) -> SiteType:
    return cast(SiteType, _one_of(value, SITE_TYPES, "unknown site type"))


def upstream_kind(value: object) -> UpstreamKind:
    return cast(UpstreamKind, _one_of(value, UPSTREAM_KINDS, "unknown upstream kind"))


def _one_of(value: object, choices: Sequence[str], unknown: str) -> str:
    given = text(value)
    if given.lower() not in choices:
        raise problem(f"{unknown} {given!r}; use one of: {', '.join(choices)}")
    return given.lower()


def host(value: object) -> str:
    """An FQDN or IPv4 address, lower-cased, without a trailing dot."""
    given = text(value)
    name = given.lower().rstrip(".")
    if _IPV4.fullmatch(name):
        if all(int(part) <= 255 for part in name.split(".")):
            return name
    elif len(name) <= 253 and all(_HOST_LABEL.fullmatch(p) for p in name.split(".")):
        return name
    raise problem(
        f"{given!r} is not a host name; write the server's FQDN, such as "
        "cs1site.contoso.com (letters, digits and hyphens, labels separated by dots)"
    )


def _port(told: str) -> Callable[[object], int]:
    def port(value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
            return value
        raise problem(f"must be an integer from 1 to 65535, got {value!r}; leave it out for {told}")

    return port


sup_port = _port("8530 (or 8531 with https = true)")
site_port = _port("8440")


def minutes_or_interval(value: object) -> timedelta:
    """Minutes as an integer, or an interval such as "60m"."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise problem(f"must be a positive number of minutes, got {value}")
        return timedelta(minutes=value)
    if isinstance(value, str):
        return _parsed(parse_duration, value)
    raise problem(f'must be minutes (an integer) or an interval like "60m", got {toml_type(value)}')


def days(value: object) -> timedelta:
    """A whole number of days, 0 included."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= 3650:
            return timedelta(days=value)
        raise problem(f"must be from 0 to 3650 days, got {value}")
    raise problem(f"must be a whole number of days (an integer), got {toml_type(value)} {value!r}")


def interval(value: object) -> timedelta:
    """An interval string such as "2d" or "1d12h"."""
    if not isinstance(value, str):
        raise problem(
            f'must be an interval such as "2d", "36h" or "1d12h", got {toml_type(value)} {value!r}'
        )
    return _parsed(parse_duration, value)


def size(value: object) -> int:
    return _parsed(parse_size, cast(int | str, value))


def tz_bias(value: object) -> int | Literal["local"]:
    if isinstance(value, str) and value.strip().lower() == "local":
        return "local"
    if isinstance(value, int) and not isinstance(value, bool):
        if MIN_TZ_BIAS <= value <= MAX_TZ_BIAS:
            return value
        raise problem(
            f"must be from {MIN_TZ_BIAS} to {MAX_TZ_BIAS} minutes (UTC = local + bias), got {value}"
        )
    raise problem(
        f'must be minutes (UTC = local + bias, e.g. 480 or -60) or "local", got {value!r}'
    )


def schedule(value: object) -> Schedule:
    """A cron expression or an interval; `schedule_start` is applied by the whole file's
    check, which knows where each was written."""
    if not isinstance(value, str):
        raise problem(
            f'must be a string (a cron expression or an interval like "1d"), got '
            f"{toml_type(value)} {value!r}"
        )
    return _parsed(parse_schedule, value)


def schedule_start(value: object) -> datetime:
    """A TOML date-time (or a date: midnight)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    raise problem(
        "must be a TOML date-time such as 2014-01-16T02:00:00 (local time) or "
        f"2014-01-16T02:00:00Z, got {toml_type(value)} {value!r}"
    )


def _parsed(parse: Callable[[T], R], value: T) -> R:
    try:
        return parse(value)
    except ValueError as exc:
        raise problem(str(exc)) from None


# --------------------------------------------------------------------------- lists


def _unique_list(
    title: str, item_value: Callable[[str], str]
) -> Callable[[object], tuple[str, ...]]:
    """A check of an array of strings: each item normalised by `item_value` (a ValueError
    refuses it), duplicates refused; every bad item is reported at its own index."""

    def check(value: object) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise problem(f"must be an array of strings, got {toml_type(value)}")
        found: list[InitErrorDetails] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(value):
            if not isinstance(item, str):
                found.append(at((index,), f"must be a string, got {toml_type(item)}", item))
                continue
            try:
                normal = item_value(item.strip())
            except ValueError as exc:
                found.append(at((index,), str(exc), item))
                continue
            if normal in seen:
                message = f"{normal} is listed twice (also {ALSO})"
                found.append(at((index,), message, item, also_item=seen[normal]))
            else:
                seen[normal] = index
        if found:
            raise ValidationError.from_exception_data(title, found)
        return tuple(seen)

    return check


def category_id(item: str) -> str:
    """A category id (GUID) in lower case; ValueError saying how to write one."""
    return _guid(item)


def language_code(item: str) -> str:
    """A language code (en, zh-cn) in lower case; ValueError saying how to write one."""
    return _language(item)


def _guid(item: str) -> str:
    match = _GUID.fullmatch(item)
    if match is None:
        raise ValueError(
            f"{item!r} is not a GUID; write the category id as "
            "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (such as "
            "0fa1201d-4330-4fa8-8ae9-b877473b6441 for Security Updates)"
        )
    return match.group(1).lower()


def _language(item: str) -> str:
    code = item.lower()
    if not _LANGUAGE.fullmatch(code):
        raise ValueError(
            f"{item!r} is not a language code; write codes such as en, de, zh-cn, pt-br"
        )
    return code


def _webhook(url: str) -> str:
    """An http(s) URL that a webhook can be POSTed to."""
    example = "write it as http://host:port/path or https://host/path"
    if not url:
        raise ValueError(f"is empty; {example}")
    if any(c.isspace() for c in url):
        raise ValueError(f"{url!r} contains white space; {example}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a URL ({exc}); {example}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL; {example}")
    if port == 0:
        raise ValueError(f"{url!r} has port 0; give the receiver's port (1 to 65535) or none")
    if parts.fragment:
        raise ValueError(
            f"{url!r} has a fragment (#...), which is never sent to the server; remove it"
        )
    return url


def webhook_url(value: object) -> str:
    """The URL of a webhook (`[[hierarchy.alerts.webhooks]]` url)."""
    if not isinstance(value, str):
        raise problem(f"must be a string, got {toml_type(value)} {value!r}")
    return _parsed(_webhook, value.strip())


_ROLE_PASSWORD: Final = (
    f"{PASSWORD_VARIABLE}_<ROLE> of the role's process (<ROLE>: the site code, or the SUP's "
    "FQDN in capitals with _ for every dot or dash)"
)


def database_url(value: object) -> str:
    """A role's database (`database` of a site or a SUP): an SQLite or PostgreSQL URL with
    no password in it (see `config.databases`)."""
    if not isinstance(value, str):
        raise problem(f"must be a string, got {toml_type(value)} {value!r}")
    return _parsed(lambda url: check_database_url(url, variable=_ROLE_PASSWORD), value)


guid_list = _unique_list("guids", _guid)
language_list = _unique_list("languages", _language)
