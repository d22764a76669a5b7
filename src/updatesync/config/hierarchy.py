"""The hierarchy file: which sites exist, how they nest, which software update points (SUPs)
each one has, and what the top-level site syncs from, when and with which criteria.

The file is TOML (an annotated example is `src/updatesync/examples/hierarchy.toml`, the
article's hierarchy, which `updatesync demo` runs). `load_hierarchy` reads it into frozen
dataclasses; every problem found is collected and raised together as one `HierarchyError`,
each problem naming its key path (`sites[2].sups[0].port`) and, where it can be found, its
line in the file. Unknown keys are problems too, so that a misspelt key is never
silently ignored.

Layout::

    [hierarchy]            name, data_dir, retry_interval, replication_timeout, secret_file,
                           schedule, schedule_start
    [hierarchy.logs]       max_size, tz_bias
    [hierarchy.alerts]     overdue_after, webhooks
    [hierarchy.upstream]   kind, url
    [hierarchy.criteria]   products, classifications, languages
    [[sites]]              code, fqdn, type, parent, address, port
    [[sites.sups]]         fqdn, address, port, https, internet_facing   (in install order)

`schedule`, `schedule_start`, `upstream` and `criteria` belong to the top-level site. They are
written under `[hierarchy]` or in the top-level site's own `[[sites]]` table (not both); every
other site inherits them and may not set them.

Choices made here, each one a default an administrator can see:

- **Schedule**: a cron expression of exactly five fields (minute hour day-of-month month
  day-of-week, evaluated by the `cronsim` library with Debian cron's rules) or an interval such
  as `1d`, `7h`, `30m` or `1h30m`. An interval runs at `schedule_start` + k × interval
  (default start: 2000-01-01 00:00, so `1d` runs at midnight). Without a schedule the top-level
  site syncs every 7 days, as Configuration Manager does by default.
- **Retry interval**: 60 minutes unless set (SPEC section 4: "Will retry in 60 minutes").
- **Log size**: bytes as an integer, or a string such as `"5MB"`; KB/MB/GB are binary multiples
  (1 MB = 1,048,576 bytes), as Windows counts them. Default: the log writer's 5 MiB.
- **Time-zone bias**: minutes with UTC = local time + bias (Windows' convention, as written in
  CMTrace lines), from -840 to +720, or `"local"` for the machine's own zone.
- **SUP port**: 8530, or 8531 when `https = true` (WSUS's defaults).
- **Site server port**: 8440, where a site server takes the calls of its parent and child
  sites (file and database replication), the SMS Provider's API and the client policy.
- **Address**: a site or SUP is reached at its FQDN unless `address` names another host (an
  IP address, or `127.0.0.1` when every role runs on one machine).
- **Shared secret**: every call between sites and SUPs is signed with the secret in
  `secret_file` (default `<data_dir>/hierarchy.secret`); each host holds a copy.
- **Replication timeout**: how long a child site's sync waits for database replication to
  bring the parent's content version (default 30 minutes) before it fails.
- **Names**: site codes are upper-cased, FQDNs, GUIDs and language codes lower-cased, and all
  look-ups ignore case.
- **Overdue**: a site whose last successful sync is older than `overdue_after` (or that
  never synced and was set up longer ago) gets the `sync_overdue` alert. Default: the longest
  gap between two scheduled syncs plus one day, and at least 2 days ("2d" for a daily
  schedule, "8d" for ConfigMgr's weekly default). A value not longer than that gap is refused:
  every site would be overdue before its next scheduled sync.
- **Webhooks**: every raise and cancel of an alert is POSTed as JSON to each URL of
  `webhooks` (http or https; none by default).
- **Criteria**: products and classifications are category GUIDs. Both empty means no filter
  (every update the upstream has); exactly one of them empty is refused, because the
  server-to-server filter then selects nothing (SPEC section 7). No languages means all of them.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final, Literal, TypeAlias, cast
from urllib.parse import urlsplit

from cronsim import CronSim, CronSimError

from updatesync.logs.rollover import DEFAULT_MAX_BYTES
from updatesync.updateserver.sync import MICROSOFT_UPDATE_URL

__all__ = [
    "DEFAULT_HTTPS_PORT",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_OVERDUE_AFTER",
    "DEFAULT_REPLICATION_TIMEOUT",
    "DEFAULT_RETRY_INTERVAL",
    "DEFAULT_SCHEDULE",
    "DEFAULT_SITE_PORT",
    "AlertSettings",
    "Criteria",
    "CronSchedule",
    "Hierarchy",
    "HierarchyError",
    "IntervalSchedule",
    "LogSettings",
    "Problem",
    "Schedule",
    "Site",
    "SiteType",
    "Sup",
    "Upstream",
    "UpstreamKind",
    "load_hierarchy",
    "parse_duration",
    "parse_hierarchy",
    "parse_schedule",
    "parse_size",
]

SiteType: TypeAlias = Literal["cas", "primary", "secondary"]
UpstreamKind: TypeAlias = Literal["microsoft-update", "wsus", "none"]

DEFAULT_HTTP_PORT: Final = 8530
DEFAULT_HTTPS_PORT: Final = 8531
DEFAULT_SITE_PORT: Final = 8440
DEFAULT_REPLICATION_TIMEOUT: Final = timedelta(minutes=30)
DEFAULT_SECRET_FILE: Final = "hierarchy.secret"
DEFAULT_RETRY_INTERVAL: Final = timedelta(minutes=60)
DEFAULT_DATA_DIR: Final = "data"
DEFAULT_OVERDUE_AFTER: Final = timedelta(days=2)
"""The least `overdue_after` defaults to; see `default_overdue_after`."""
_OVERDUE_MARGIN: Final = timedelta(days=1)
MIN_TZ_BIAS: Final = -840
MAX_TZ_BIAS: Final = 720
_DEFAULT_INTERVAL_START: Final = datetime(2000, 1, 1)
_SITE_TYPES: Final[tuple[SiteType, ...]] = ("cas", "primary", "secondary")
_UPSTREAM_KINDS: Final[tuple[UpstreamKind, ...]] = ("microsoft-update", "wsus", "none")
_SITE_TYPE_NAMES: Final[Mapping[str, str]] = {
    "cas": "central administration site",
    "primary": "primary site",
    "secondary": "secondary site",
}
_CRON_FIELDS: Final = "minute hour day-of-month month day-of-week"
_TOP_ONLY_KEYS: Final = ("schedule", "schedule_start", "upstream", "criteria")

_SITE_CODE = re.compile(r"[A-Za-z0-9]{3}")
_GUID = re.compile(
    r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?"
)
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_DURATION = re.compile(r"(?:\d+[dhm])+")
_DURATION_PART = re.compile(r"(\d+)([dhm])")
_DURATION_UNITS: Final[Mapping[str, timedelta]] = {
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
}
_SIZE = re.compile(r"(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?", re.IGNORECASE)
_SIZE_UNITS: Final[Mapping[str, int]] = {
    "b": 1,
    "kb": 1024,
    "kib": 1024,
    "mb": 1024**2,
    "mib": 1024**2,
    "gb": 1024**3,
    "gib": 1024**3,
}
_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")

_Segment: TypeAlias = str | int
_Path: TypeAlias = tuple[_Segment, ...]


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a hierarchy file: where (key path, line when known) and what."""

    path: str
    """Key path such as `sites[2].sups[0].port`; empty for the file as a whole."""
    message: str
    """What is wrong and what to do about it."""
    line: int | None = None

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.path:
            where.append(self.path)
        return f"{', '.join(where)}: {self.message}" if where else self.message


class HierarchyError(ValueError):
    """A hierarchy file that cannot be used; `problems` lists every problem found."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"{source}: {count} {noun} in the hierarchy file:"]
        lines.extend(f"  {problem}" for problem in self.problems)
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A five-field cron expression (minute hour day-of-month month day-of-week)."""

    expression: str

    def __post_init__(self) -> None:
        fields = self.expression.split()
        if len(fields) != 5:
            raise ValueError(
                f"cron expression {self.expression!r} has {len(fields)} field(s); "
                f"write exactly 5: {_CRON_FIELDS}"
            )
        try:
            CronSim(self.expression, _DEFAULT_INTERVAL_START)
        except CronSimError as exc:
            raise ValueError(
                f"invalid cron expression {self.expression!r}: {_lower_first(str(exc))} "
                f"(fields: {_CRON_FIELDS})"
            ) from None

    def next_run(self, after: datetime) -> datetime:
        """The first matching minute strictly after `after`, in `after`'s time zone (naive:
        wall-clock time)."""
        return next(CronSim(self.expression, after))

    def __str__(self) -> str:
        return self.expression


@dataclass(frozen=True, slots=True)
class IntervalSchedule:
    """Every `interval`, counted from `start` (2000-01-01 00:00 when None)."""

    interval: timedelta
    start: datetime | None = None
    text: str = ""

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0):
            raise ValueError(f"schedule interval must be positive, got {self.interval}")

    def next_run(self, after: datetime) -> datetime:
        """The first time `start + k * interval` strictly after `after`. A naive `start` is
        wall-clock time in `after`'s zone; an aware `start` needs an aware `after`."""
        anchor = self.start if self.start is not None else _DEFAULT_INTERVAL_START
        if anchor.tzinfo is None and after.tzinfo is not None:
            anchor = anchor.replace(tzinfo=after.tzinfo)
        elif anchor.tzinfo is not None and after.tzinfo is None:
            raise ValueError(
                "next_run: the schedule start has a UTC offset but `after` is naive; "
                "pass an aware datetime"
            )
        if after < anchor:
            result = anchor
        else:
            steps = (after - anchor) // self.interval + 1
            result = anchor + steps * self.interval
        return result.astimezone(after.tzinfo) if after.tzinfo is not None else result

    def __str__(self) -> str:
        return self.text or _format_duration(self.interval)


Schedule: TypeAlias = CronSchedule | IntervalSchedule

DEFAULT_SCHEDULE: Final = IntervalSchedule(timedelta(days=7), text="7d")
"""Configuration Manager's default software-update sync schedule: every 7 days."""


def parse_duration(text: str) -> timedelta:
    """`"1d"`, `"7h"`, `"30m"`, `"1h30m"` → timedelta; ValueError otherwise."""
    cleaned = text.strip().lower()
    if not _DURATION.fullmatch(cleaned):
        raise ValueError(
            f"{text!r} is not an interval; write a number and a unit d, h or m, "
            'such as "1d", "7h", "30m" or "1h30m"'
        )
    total = timedelta(0)
    for number, unit in _DURATION_PART.findall(cleaned):
        total += int(number) * _DURATION_UNITS[unit]
    if total <= timedelta(0):
        raise ValueError(f"interval {text!r} must be longer than zero")
    return total


def parse_schedule(text: str, start: datetime | None = None) -> Schedule:
    """A cron expression of 5 fields or an interval (`"1d"`, `"7h"`, `"30m"`); ValueError with
    the reason otherwise. `start` anchors an interval and is refused for a cron expression."""
    cleaned = text.strip()
    if not cleaned:
        raise ValueError('schedule is empty; write a cron expression or an interval like "1d"')
    if _DURATION.fullmatch(cleaned.lower()):
        return IntervalSchedule(parse_duration(cleaned), start, cleaned)
    if len(cleaned.split()) == 1:
        raise ValueError(
            f"{text!r} is neither an interval (a number and a unit d, h or m, such as "
            f'"1d", "7h" or "30m") nor a cron expression of 5 fields ({_CRON_FIELDS})'
        )
    schedule = CronSchedule(cleaned)
    if start is not None:
        raise ValueError(
            "schedule_start applies only to an interval schedule; a cron expression sets its "
            "own times, so remove schedule_start"
        )
    return schedule


def parse_size(value: int | str) -> int:
    """Bytes as an integer, or a string such as `"5MB"`, `"512 KB"`, `"1GiB"` (binary units)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f'size must be an integer (bytes) or a string like "5MB", got {value!r}')
    if isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueError(
                f'{value!r} is not a size; write bytes, or a number with KB, MB or GB ("5MB")'
            )
        number, unit = match.groups()
        size = int(number) * _SIZE_UNITS[(unit or "b").lower()]
    else:
        size = value
    if size <= 0:
        raise ValueError(f"size must be more than 0 bytes, got {value!r}")
    return size


def _format_duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return "".join(parts) or "0m"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class LogSettings:
    """How the components of every site write their logs."""

    max_bytes: int = DEFAULT_MAX_BYTES
    tz_bias: int | Literal["local"] = "local"
    """Minutes, UTC = local + bias; `"local"`: the machine's own time zone."""


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """`[hierarchy.alerts]`: when a site's sync is overdue, and where alerts are sent."""

    overdue_after: timedelta = DEFAULT_OVERDUE_AFTER
    """A site whose last successful sync is older than this gets the `sync_overdue` alert."""
    webhooks: tuple[str, ...] = ()
    """URLs each raise and cancel of an alert is POSTed to (JSON)."""


def longest_gap(schedule: Schedule) -> timedelta:
    """The longest time between two runs of `schedule`: its interval, or for a cron expression
    the longest gap over about a year of runs (from 2000-01-01, wall-clock time)."""
    if isinstance(schedule, IntervalSchedule):
        return schedule.interval
    runs = CronSim(schedule.expression, _DEFAULT_INTERVAL_START)
    horizon = _DEFAULT_INTERVAL_START + timedelta(days=400)
    previous: datetime | None = None
    gap = timedelta(0)
    for count, run in enumerate(runs):
        if previous is not None:
            gap = max(gap, run - previous)
        previous = run
        if count >= 2000 or (run > horizon and count >= 1):
            break
    return gap


def default_overdue_after(schedule: Schedule) -> timedelta:
    """`overdue_after` when the file leaves it out: the schedule's longest gap plus one day,
    and at least 2 days."""
    return max(DEFAULT_OVERDUE_AFTER, longest_gap(schedule) + _OVERDUE_MARGIN)


@dataclass(frozen=True, slots=True)
class Upstream:
    """What the top-level site's default SUP syncs from; `url` is None for `none`
    (disconnected: metadata arrives by importing a WSUS export)."""

    kind: UpstreamKind
    url: str | None


@dataclass(frozen=True, slots=True)
class Criteria:
    """What to sync, set at the top-level site and inherited below."""

    products: tuple[str, ...] = ()
    classifications: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sup:
    """A software update point: one update server attached to a site."""

    fqdn: str
    port: int = DEFAULT_HTTP_PORT
    https: bool = False
    internet_facing: bool = False
    address: str | None = None
    """The host to connect to when it is not the FQDN (an IP address, 127.0.0.1)."""

    @property
    def url(self) -> str:
        """`http(s)://host:port`, where other update servers and the site reach this one."""
        return f"{'https' if self.https else 'http'}://{self.address or self.fqdn}:{self.port}"


@dataclass(frozen=True, slots=True)
class Site:
    """A site; `sups` in install order, the first being the default SUP."""

    code: str
    fqdn: str
    type: SiteType
    parent: str | None = None
    sups: tuple[Sup, ...] = ()
    port: int = DEFAULT_SITE_PORT
    address: str | None = None
    """The host to connect to when it is not the FQDN."""

    @property
    def url(self) -> str:
        """`http://host:port` of the site server (replication, provider, client policy)."""
        return f"http://{self.address or self.fqdn}:{self.port}"

    @property
    def default_sup(self) -> Sup | None:
        return self.sups[0] if self.sups else None

    @property
    def replicas(self) -> tuple[Sup, ...]:
        return self.sups[1:]


@dataclass(frozen=True)
class Hierarchy:
    """A validated hierarchy. Build one with `load_hierarchy` or `parse_hierarchy`; the
    constructor itself does not validate."""

    name: str
    data_dir: Path
    sites: tuple[Site, ...]
    upstream: Upstream
    criteria: Criteria = Criteria()
    schedule: Schedule = DEFAULT_SCHEDULE
    retry_interval: timedelta = DEFAULT_RETRY_INTERVAL
    logs: LogSettings = LogSettings()
    source: str = "<string>"
    replication_timeout: timedelta = DEFAULT_REPLICATION_TIMEOUT
    secret_file: Path | None = None
    """The shared secret of site-to-site calls; None: `<data_dir>/hierarchy.secret`."""
    alerts: AlertSettings = AlertSettings()
    """`[hierarchy.alerts]`: the overdue limit and the webhooks."""
    _by_code: dict[str, Site] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_code", {site.code: site for site in self.sites})

    @property
    def top(self) -> Site:
        """The top-level site: the CAS, or a standalone primary."""
        for site in self.sites:
            if site.parent is None:
                return site
        raise LookupError(f"{self.source}: the hierarchy has no top-level site")

    def site(self, code: str) -> Site:
        """The site with this code (any case); KeyError naming the known codes otherwise."""
        found = self._by_code.get(code.strip().upper())
        if found is None:
            known = ", ".join(self._by_code) or "none"
            raise KeyError(f"no site {code!r} in hierarchy {self.name!r} (sites: {known})")
        return found

    def children(self, code: str) -> tuple[Site, ...]:
        """The sites whose parent is `code`, in file order."""
        parent = self.site(code).code
        return tuple(site for site in self.sites if site.parent == parent)

    def parent(self, code: str) -> Site | None:
        """The parent site, None for the top-level site."""
        site = self.site(code)
        return None if site.parent is None else self.site(site.parent)

    def default_sup(self, code: str) -> Sup | None:
        """The site's first-installed SUP, None when it has none."""
        return self.site(code).default_sup

    def replicas(self, code: str) -> tuple[Sup, ...]:
        """The site's other SUPs, replicas of its default SUP, in install order."""
        return self.site(code).replicas

    def walk(self) -> Iterator[Site]:
        """Every site top-down: the top-level site, then its children, then theirs (the order
        in which a sync travels through the hierarchy)."""
        queue = deque([self.top])
        while queue:
            site = queue.popleft()
            yield site
            queue.extend(self.children(site.code))

    def find_sup(self, fqdn: str) -> tuple[Site, Sup]:
        """The site holding the SUP with this FQDN (any case), and that SUP."""
        wanted = fqdn.strip().lower()
        for site in self.sites:
            for sup in site.sups:
                if sup.fqdn == wanted:
                    return site, sup
        known = ", ".join(sup.fqdn for site in self.sites for sup in site.sups) or "none"
        raise KeyError(
            f"no software update point {fqdn!r} in hierarchy {self.name!r} (SUPs: {known})"
        )

    def sup_upstream(self, site: str | Site, sup: str | Sup) -> str | None:
        """The URL of the update server that `sup` (a SUP of `site`) syncs from: the upstream
        for the top-level default SUP (None when disconnected), the site's default SUP for a
        replica, the parent site's default SUP for a child site's default SUP."""
        at = self.site(site.code if isinstance(site, Site) else site)
        fqdn = (sup.fqdn if isinstance(sup, Sup) else sup).strip().lower()
        position = next((i for i, s in enumerate(at.sups) if s.fqdn == fqdn), None)
        if position is None:
            have = ", ".join(s.fqdn for s in at.sups) or "none"
            raise KeyError(f"site {at.code} has no software update point {fqdn!r} (SUPs: {have})")
        if position > 0:
            return at.sups[0].url
        parent = self.parent(at.code)
        if parent is None:
            return self.upstream.url
        upstream_sup = parent.default_sup
        if upstream_sup is None:
            raise LookupError(
                f"site {at.code}'s default SUP syncs from its parent {parent.code}'s default "
                f"SUP, but {parent.code} has none"
            )
        return upstream_sup.url

    @property
    def secret_path(self) -> Path:
        """The file holding the hierarchy's shared secret."""
        return (
            self.secret_file
            if self.secret_file is not None
            else self.data_dir / DEFAULT_SECRET_FILE
        )

    def is_replica(self, site: str | Site, sup: str | Sup) -> bool:
        """True when `sup` syncs as a WSUS replica: a site's SUP after the first, and a
        secondary site's SUP (a replica of its parent primary's default SUP)."""
        at = self.site(site.code if isinstance(site, Site) else site)
        fqdn = (sup.fqdn if isinstance(sup, Sup) else sup).strip().lower()
        return at.type == "secondary" or any(s.fqdn == fqdn for s in at.sups[1:])

    def log_dir(self, site_code: str) -> Path:
        """`<data_dir>/<SITE>/logs`: the logs of the site's components (WSyncMgr.log, ...)."""
        return self.data_dir / self.site(site_code).code / "logs"

    def update_server_dir(self, fqdn: str) -> Path:
        """`<data_dir>/<fqdn>`: the update server of the SUP with this FQDN."""
        _, sup = self.find_sup(fqdn)
        return self.data_dir / sup.fqdn


# --------------------------------------------------------------------------- loading


def load_hierarchy(path: str | Path) -> Hierarchy:
    """Read and validate a hierarchy file; relative paths in it resolve against its folder."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise HierarchyError(
            str(file),
            [Problem("", f"cannot read the file: {reason}; check the path and its permissions")],
        ) from exc
    return parse_hierarchy(text, source=str(file), base_dir=file.absolute().parent)


def parse_hierarchy(
    text: str, *, source: str = "<string>", base_dir: str | Path | None = None
) -> Hierarchy:
    """Parse and validate hierarchy TOML; `base_dir` (default: the current folder) anchors a
    relative `data_dir`. Raises `HierarchyError` listing every problem found."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_LINE.search(message)
        line = int(match.group(1)) if match else None
        message = _TOML_LINE.sub("", message).strip()
        raise HierarchyError(
            source, [Problem("", f"not valid TOML: {message}; fix the syntax", line)]
        ) from None
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    reader = _Reader(source, base.absolute())
    hierarchy = reader.read(document)
    if reader.problems or hierarchy is None:
        lines = _key_lines(text)
        problems = [
            Problem(_format_path(path), message, _line_of(path, lines))
            for path, message in reader.problems
        ]
        problems.sort(key=lambda problem: problem.line or 0)  # stable: file order kept
        raise HierarchyError(source, problems)
    return hierarchy


def _format_path(path: _Path) -> str:
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        else:
            key = segment if re.fullmatch(r"[A-Za-z0-9_-]+", segment) else json.dumps(segment)
            out += f".{key}" if out else key
    return out


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time"
    return type(value).__name__


@dataclass
class _SiteDraft:
    """What was read of one `[[sites]]` entry; None where the value was missing or invalid."""

    index: int
    code: str | None
    fqdn: str | None
    type: SiteType | None
    parent: str | None
    has_parent_key: bool
    sups: list[Sup]
    sup_paths: list[_Path]
    top_only: dict[str, object]
    port: int = DEFAULT_SITE_PORT
    address: str | None = None

    @property
    def path(self) -> _Path:
        return ("sites", self.index)


class _Reader:
    """Reads the parsed TOML document, collecting (path, message) problems as it goes."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir
        self.problems: list[tuple[_Path, str]] = []

    def add(self, path: _Path, message: str) -> None:
        self.problems.append((path, message))

    # -- generic helpers

    def check_keys(self, table: Mapping[str, object], path: _Path, allowed: Sequence[str]) -> None:
        for key in table:
            if key in allowed:
                continue
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = (
                f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
            )
            self.add((*path, key), f"unknown key {key!r}; {hint}")

    def table(self, parent: Mapping[str, object], key: str, path: _Path) -> dict[str, object]:
        value = parent.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add((*path, key), f"must be a table, got {_toml_type(value)}")
            return {}
        return cast(dict[str, object], value)

    def string(
        self, table: Mapping[str, object], key: str, path: _Path, *, required: bool = False
    ) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                self.add((*path, key), f'missing; add {key} = "..."')
            return None
        if not isinstance(value, str):
            self.add((*path, key), f"must be a string, got {_toml_type(value)} {value!r}")
            return None
        if not value.strip():
            self.add((*path, key), "must not be empty")
            return None
        return value.strip()

    def boolean(self, table: Mapping[str, object], key: str, path: _Path) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            self.add((*path, key), f"must be true or false, got {_toml_type(value)} {value!r}")
            return False
        return value

    # -- the document

    def read(self, document: Mapping[str, object]) -> Hierarchy | None:
        self.check_keys(document, (), ("hierarchy", "sites"))
        if "hierarchy" not in document:
            self.add(("hierarchy",), 'missing; add a [hierarchy] table with at least name = "..."')
        head = self.table(document, "hierarchy", ())
        path: _Path = ("hierarchy",)
        self.check_keys(
            head,
            path,
            (
                "name",
                "data_dir",
                "retry_interval",
                "replication_timeout",
                "secret_file",
                "logs",
                "alerts",
                *_TOP_ONLY_KEYS,
            ),
        )
        name = self.string(head, "name", path, required="hierarchy" in document)
        data_dir = self.read_data_dir(head, path)
        retry = self.read_retry(head, path, "retry_interval", DEFAULT_RETRY_INTERVAL)
        replication_timeout = self.read_retry(
            head, path, "replication_timeout", DEFAULT_REPLICATION_TIMEOUT
        )
        secret = self.string(head, "secret_file", path)
        secret_file = None
        if secret is not None:
            secret_file = Path(secret).expanduser()
            if not secret_file.is_absolute():
                secret_file = self.base_dir / secret_file
        logs = self.read_logs(head, path)
        drafts = self.read_sites(document)
        top = self.check_structure(drafts)
        settings = self.top_settings(head, drafts, top)
        before = len(self.problems)
        schedule = self.read_schedule(settings)
        schedule_read = len(self.problems) == before
        upstream = self.read_upstream(settings)
        criteria = self.read_criteria(settings)
        alerts = self.read_alerts(
            head, path, schedule if schedule_read else None, "schedule" in settings
        )
        if self.problems or name is None or upstream is None:
            return None
        sites = tuple(
            Site(
                code=cast(str, d.code),
                fqdn=cast(str, d.fqdn),
                type=cast(SiteType, d.type),
                parent=d.parent,
                sups=tuple(d.sups),
                port=d.port,
                address=d.address,
            )
            for d in drafts
        )
        return Hierarchy(
            name=name,
            data_dir=data_dir,
            sites=sites,
            upstream=upstream,
            criteria=criteria,
            schedule=schedule,
            retry_interval=retry,
            logs=logs,
            source=self.source,
            replication_timeout=replication_timeout,
            secret_file=secret_file,
            alerts=alerts,
        )

    def read_data_dir(self, head: Mapping[str, object], path: _Path) -> Path:
        value = self.string(head, "data_dir", path)
        folder = Path(value if value is not None else DEFAULT_DATA_DIR).expanduser()
        return folder if folder.is_absolute() else self.base_dir / folder

    def read_retry(
        self, head: Mapping[str, object], path: _Path, key: str, default: timedelta
    ) -> timedelta:
        """A duration: minutes as an integer or an interval such as "60m"."""
        value = head.get(key)
        where = (*path, key)
        if value is None:
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            if value <= 0:
                self.add(where, f"must be a positive number of minutes, got {value}")
                return default
            return timedelta(minutes=value)
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except ValueError as exc:
                self.add(where, str(exc))
                return default
        self.add(
            where,
            f'must be minutes (an integer) or an interval like "60m", got {_toml_type(value)}',
        )
        return default

    def read_logs(self, head: Mapping[str, object], path: _Path) -> LogSettings:
        table = self.table(head, "logs", path)
        path = (*path, "logs")
        self.check_keys(table, path, ("max_size", "tz_bias"))
        max_bytes = DEFAULT_MAX_BYTES
        if "max_size" in table:
            try:
                max_bytes = parse_size(cast(int | str, table["max_size"]))
            except ValueError as exc:
                self.add((*path, "max_size"), str(exc))
        bias: int | Literal["local"] = "local"
        value = table.get("tz_bias", "local")
        if isinstance(value, str) and value.strip().lower() == "local":
            bias = "local"
        elif isinstance(value, int) and not isinstance(value, bool):
            if MIN_TZ_BIAS <= value <= MAX_TZ_BIAS:
                bias = value
            else:
                self.add(
                    (*path, "tz_bias"),
                    f"must be from {MIN_TZ_BIAS} to {MAX_TZ_BIAS} minutes (UTC = local + bias), "
                    f"got {value}",
                )
        else:
            self.add(
                (*path, "tz_bias"),
                f'must be minutes (UTC = local + bias, e.g. 480 or -60) or "local", got {value!r}',
            )
        return LogSettings(max_bytes=max_bytes, tz_bias=bias)

    def read_alerts(
        self, head: Mapping[str, object], path: _Path, schedule: Schedule | None, scheduled: bool
    ) -> AlertSettings:
        """`[hierarchy.alerts]`; `schedule` None when the schedule itself was refused (then
        overdue_after is not compared with it)."""
        table = self.table(head, "alerts", path)
        path = (*path, "alerts")
        self.check_keys(table, path, ("overdue_after", "webhooks"))
        default = default_overdue_after(schedule or DEFAULT_SCHEDULE)
        overdue_after = default
        if "overdue_after" in table:
            overdue_after = self.read_overdue_after(
                table["overdue_after"], (*path, "overdue_after"), schedule, scheduled, default
            )
        return AlertSettings(overdue_after, self.read_webhooks(table, path))

    def read_overdue_after(
        self,
        value: object,
        where: _Path,
        schedule: Schedule | None,
        scheduled: bool,
        default: timedelta,
    ) -> timedelta:
        if not isinstance(value, str):
            self.add(
                where,
                f'must be an interval such as "2d", "36h" or "1d12h", got {_toml_type(value)} '
                f"{value!r}",
            )
            return default
        try:
            limit = parse_duration(value)
        except ValueError as exc:
            self.add(where, str(exc))
            return default
        if schedule is None:
            return limit
        gap = longest_gap(schedule)
        if limit <= gap:
            suggested = _format_duration(gap + _OVERDUE_MARGIN)
            told = (
                f'schedule "{schedule}"' if scheduled else f"the default schedule, every {schedule}"
            )
            self.add(
                where,
                f"{value.strip()!r} is not longer than the longest time between two scheduled "
                f"syncs ({_format_duration(gap)}, {told}): every site would be overdue before "
                f'its next scheduled sync; make it longer, such as "{suggested}", or leave it '
                "out for that default",
            )
            return default
        return limit

    def read_webhooks(self, table: Mapping[str, object], path: _Path) -> tuple[str, ...]:
        seen: dict[str, _Path] = {}
        for where, url in self.string_list(table, "webhooks", path):
            problem = _webhook_problem(url)
            if problem is not None:
                self.add(where, problem)
                continue
            if url in seen:
                self.add(where, f"{url} is listed twice (also {_format_path(seen[url])})")
                continue
            seen[url] = where
        return tuple(seen)

    # -- sites

    def read_sites(self, document: Mapping[str, object]) -> list[_SiteDraft]:
        value = document.get("sites")
        if value is None:
            self.add(("sites",), "missing; add one [[sites]] table per site, the top-level first")
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.add(("sites",), "must be an array of tables: write each site as [[sites]]")
            return []
        if not value:
            self.add(("sites",), "no sites; add at least the top-level site as [[sites]]")
        drafts = [self.read_site(i, cast(dict[str, object], v)) for i, v in enumerate(value)]
        self.check_unique_names(drafts)
        return drafts

    def read_site(self, index: int, table: Mapping[str, object]) -> _SiteDraft:
        path: _Path = ("sites", index)
        self.check_keys(
            table,
            path,
            ("code", "fqdn", "type", "parent", "sups", "address", "port", *_TOP_ONLY_KEYS),
        )
        code = self.site_code(table, "code", path, required=True)
        fqdn = self.host(table, "fqdn", path)
        address = self.host(table, "address", path) if "address" in table else None
        port = self.port(table, path, DEFAULT_SITE_PORT, f"{DEFAULT_SITE_PORT}")
        site_type: SiteType | None = None
        raw_type = self.string(table, "type", path, required=True)
        if raw_type is not None:
            if raw_type.lower() in _SITE_TYPES:
                site_type = cast(SiteType, raw_type.lower())
            else:
                self.add(
                    (*path, "type"),
                    f"unknown site type {raw_type!r}; use one of: {', '.join(_SITE_TYPES)}",
                )
        parent = self.site_code(table, "parent", path, required=False)
        if parent is not None and parent == code:
            self.add((*path, "parent"), f"site {code} cannot be its own parent")
            parent = None
        sups, sup_paths = self.read_sups(table, path)
        top_only = {key: table[key] for key in _TOP_ONLY_KEYS if key in table}
        return _SiteDraft(
            index,
            code,
            fqdn,
            site_type,
            parent,
            "parent" in table,
            sups,
            sup_paths,
            top_only,
            port,
            address,
        )

    def site_code(
        self, table: Mapping[str, object], key: str, path: _Path, *, required: bool
    ) -> str | None:
        value = self.string(table, key, path, required=required)
        if value is None:
            return None
        if not _SITE_CODE.fullmatch(value):
            self.add(
                (*path, key),
                f"site code {value!r} must be exactly 3 letters or digits (such as CS1)",
            )
            return None
        return value.upper()

    def host(self, table: Mapping[str, object], key: str, path: _Path) -> str | None:
        value = self.string(table, key, path, required=True)
        if value is None:
            return None
        name = value.lower().rstrip(".")
        if _IPV4.fullmatch(name):
            if all(int(part) <= 255 for part in name.split(".")):
                return name
        elif len(name) <= 253 and all(_HOST_LABEL.fullmatch(p) for p in name.split(".")):
            return name
        self.add(
            (*path, key),
            f"{value!r} is not a host name; write the server's FQDN, such as "
            "cs1site.contoso.com (letters, digits and hyphens, labels separated by dots)",
        )
        return None

    def read_sups(self, table: Mapping[str, object], path: _Path) -> tuple[list[Sup], list[_Path]]:
        value = table.get("sups")
        if value is None:
            return [], []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.add(
                (*path, "sups"),
                "must be an array of tables: write each SUP as [[sites.sups]] under its site",
            )
            return [], []
        sups: list[Sup] = []
        paths: list[_Path] = []
        for index, raw in enumerate(cast(list[dict[str, object]], value)):
            where: _Path = (*path, "sups", index)
            self.check_keys(raw, where, ("fqdn", "address", "port", "https", "internet_facing"))
            fqdn = self.host(raw, "fqdn", where)
            address = self.host(raw, "address", where) if "address" in raw else None
            https = self.boolean(raw, "https", where)
            internet_facing = self.boolean(raw, "internet_facing", where)
            port = self.port(
                raw,
                where,
                DEFAULT_HTTPS_PORT if https else DEFAULT_HTTP_PORT,
                f"{DEFAULT_HTTP_PORT} (or {DEFAULT_HTTPS_PORT} with https = true)",
            )
            if fqdn is not None:
                sups.append(Sup(fqdn, port, https, internet_facing, address))
                paths.append(where)
        return sups, paths

    def port(self, table: Mapping[str, object], path: _Path, default: int, told: str) -> int:
        if "port" not in table:
            return default
        given = table["port"]
        if isinstance(given, int) and not isinstance(given, bool) and 1 <= given <= 65535:
            return given
        self.add(
            (*path, "port"),
            f"must be an integer from 1 to 65535, got {given!r}; leave it out for {told}",
        )
        return default

    def check_unique_names(self, drafts: Sequence[_SiteDraft]) -> None:
        codes: dict[str, _Path] = {}
        site_hosts: dict[str, _Path] = {}
        sup_hosts: dict[str, _Path] = {}
        for draft in drafts:
            if draft.code is not None:
                if draft.code in codes:
                    self.add(
                        (*draft.path, "code"),
                        f"duplicate site code {draft.code} (also {_format_path(codes[draft.code])})"
                        "; every site needs its own code",
                    )
                else:
                    codes[draft.code] = (*draft.path, "code")
            if draft.fqdn is not None:
                if draft.fqdn in site_hosts:
                    self.add(
                        (*draft.path, "fqdn"),
                        f"site server {draft.fqdn} is already used by "
                        f"{_format_path(site_hosts[draft.fqdn])}; each site has its own server",
                    )
                else:
                    site_hosts[draft.fqdn] = (*draft.path, "fqdn")
            for sup, where in zip(draft.sups, draft.sup_paths, strict=True):
                if sup.fqdn in sup_hosts:
                    self.add(
                        (*where, "fqdn"),
                        f"software update point {sup.fqdn} is already defined at "
                        f"{_format_path(sup_hosts[sup.fqdn])}; a server holds one update server",
                    )
                else:
                    sup_hosts[sup.fqdn] = (*where, "fqdn")

    def check_structure(self, drafts: Sequence[_SiteDraft]) -> _SiteDraft | None:
        """Parent links, site types, SUP counts; returns the top-level site when there is
        exactly one."""
        by_code = {d.code: d for d in drafts if d.code is not None}
        known = ", ".join(by_code) or "none"
        for draft in drafts:
            where = draft.path
            parent = by_code.get(draft.parent) if draft.parent is not None else None
            if draft.parent is not None and parent is None:
                self.add(
                    (*where, "parent"),
                    f"unknown parent site {draft.parent}; use one of the site codes ({known})",
                )
            if draft.type == "cas" and draft.has_parent_key:
                self.add(
                    (*where, "parent"),
                    "a central administration site is always the top-level site; remove its parent",
                )
            elif draft.type == "primary" and parent is not None and parent.type != "cas":
                self.add(
                    (*where, "parent"),
                    f"a primary site's parent must be a central administration site, but "
                    f"{parent.code} is a {_SITE_TYPE_NAMES.get(parent.type or '', 'site')}",
                )
            elif draft.type == "secondary":
                if not draft.has_parent_key:
                    self.add(
                        (*where, "parent"),
                        "missing; a secondary site needs parent = the code of its primary site",
                    )
                elif parent is not None and parent.type != "primary":
                    self.add(
                        (*where, "parent"),
                        f"a secondary site's parent must be a primary site, but {parent.code} "
                        f"is a {_SITE_TYPE_NAMES.get(parent.type or '', 'site')}",
                    )
                if len(draft.sups) > 1:
                    self.add(
                        (*where, "sups", 1),
                        f"a secondary site has at most one software update point; "
                        f"{draft.code or 'this site'} lists {len(draft.sups)}: keep one",
                    )
            if parent is not None and draft.sups and not parent.sups:
                self.add(
                    (*where, "sups"),
                    f"{draft.code}'s default SUP syncs from its parent {parent.code}'s default "
                    f"SUP, but {parent.code} has none; add a [[sites.sups]] to {parent.code}",
                )
        self.check_cycles(drafts, by_code)
        # A CAS is top-level even when it wrongly names a parent (reported above); a
        # parentless secondary is reported above too and not counted again here.
        tops = [
            d for d in drafts if d.type == "cas" or (not d.has_parent_key and d.type != "secondary")
        ]
        if drafts and not tops:
            self.add(
                ("sites",),
                "no top-level site: every site names a parent; the central administration site "
                "(or a standalone primary site) has no parent",
            )
        elif len(tops) > 1:
            names = ", ".join(
                f"{d.code or _format_path(d.path)} ({d.type or 'no type'})" for d in tops
            )
            self.add(
                ("sites",),
                f"{len(tops)} top-level sites ({names}); exactly one site may have no parent: "
                "give a primary site under a central administration site parent = its code",
            )
        return tops[0] if len(tops) == 1 else None

    def check_cycles(self, drafts: Sequence[_SiteDraft], by_code: dict[str, _SiteDraft]) -> None:
        reported: set[str] = set()
        for draft in drafts:
            chain: list[str] = []
            current: _SiteDraft | None = draft
            while current is not None and current.code is not None:
                if current.code in chain:
                    cycle = chain[chain.index(current.code) :]
                    if not reported.intersection(cycle):
                        reported.update(cycle)
                        loop = " → ".join([*cycle, current.code])
                        self.add(
                            (*by_code[cycle[0]].path, "parent"),
                            f"the parent links form a cycle ({loop}); the chain of parents "
                            "must end at the top-level site",
                        )
                    break
                chain.append(current.code)
                current = by_code.get(current.parent) if current.parent is not None else None

    # -- settings of the top-level site

    def top_settings(
        self, head: Mapping[str, object], drafts: Sequence[_SiteDraft], top: _SiteDraft | None
    ) -> dict[str, tuple[_Path, object]]:
        """schedule/schedule_start/upstream/criteria with the path each was found at."""
        settings = {key: (("hierarchy", key), head[key]) for key in _TOP_ONLY_KEYS if key in head}
        top_code = top.code if top is not None else None
        for draft in drafts:
            for key, value in draft.top_only.items():
                where = (*draft.path, key)
                if draft.has_parent_key:
                    self.add(
                        where,
                        f"{key} is set only at the top-level site"
                        f"{f' ({top_code})' if top_code else ''} and inherited by "
                        f"{draft.code or 'this site'}; remove it here and set it under "
                        "[hierarchy]",
                    )
                elif key in settings:
                    self.add(
                        where,
                        f"{key} is also set at {_format_path(settings[key][0])}; "
                        "set it in one place",
                    )
                elif draft is top:
                    settings[key] = (where, value)
        return settings

    def read_schedule(self, settings: Mapping[str, tuple[_Path, object]]) -> Schedule:
        start: datetime | None = None
        if "schedule_start" in settings:
            where, value = settings["schedule_start"]
            if isinstance(value, datetime):
                start = value
            elif isinstance(value, date):
                start = datetime.combine(value, time())
            else:
                self.add(
                    where,
                    "must be a TOML date-time such as 2014-01-16T02:00:00 (local time) or "
                    f"2014-01-16T02:00:00Z, got {_toml_type(value)} {value!r}",
                )
        if "schedule" not in settings:
            return (
                DEFAULT_SCHEDULE
                if start is None
                else IntervalSchedule(DEFAULT_SCHEDULE.interval, start, DEFAULT_SCHEDULE.text)
            )
        where, value = settings["schedule"]
        if not isinstance(value, str):
            self.add(
                where,
                f'must be a string (a cron expression or an interval like "1d"), got '
                f"{_toml_type(value)} {value!r}",
            )
            return DEFAULT_SCHEDULE
        try:
            return parse_schedule(value, start)
        except ValueError as exc:
            self.add(where, str(exc))
            return DEFAULT_SCHEDULE

    def read_upstream(self, settings: Mapping[str, tuple[_Path, object]]) -> Upstream | None:
        if "upstream" not in settings:
            self.add(
                ("hierarchy", "upstream"),
                'missing; add [hierarchy.upstream] with kind = "microsoft-update", "wsus" '
                '(and url) or "none" (disconnected: import WSUS exports)',
            )
            return None
        path, value = settings["upstream"]
        if not isinstance(value, dict):
            self.add(path, f"must be a table, got {_toml_type(value)}")
            return None
        table = cast(dict[str, object], value)
        self.check_keys(table, path, ("kind", "url"))
        raw_kind = self.string(table, "kind", path, required=True)
        if raw_kind is None:
            return None
        kind = raw_kind.lower()
        if kind not in _UPSTREAM_KINDS:
            self.add(
                (*path, "kind"),
                f"unknown upstream kind {raw_kind!r}; use one of: {', '.join(_UPSTREAM_KINDS)}",
            )
            return None
        url = self.string(table, "url", path)
        if kind == "none":
            if "url" in table:
                self.add(
                    (*path, "url"),
                    'kind = "none" (disconnected) has no upstream server; remove url',
                )
            return Upstream("none", None)
        if url is None:
            if kind == "wsus":
                if "url" not in table:
                    self.add(
                        (*path, "url"),
                        'missing; kind = "wsus" needs the upstream server, such as '
                        'url = "http://wsus.contoso.com:8530"',
                    )
                return None
            if "url" in table:
                return None
            return Upstream("microsoft-update", MICROSOFT_UPDATE_URL)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.add(
                (*path, "url"),
                f"{url!r} is not an http(s) URL; write it as http://host:port or https://host",
            )
            return None
        if parts.query or parts.fragment:
            self.add((*path, "url"), f"{url!r} has a query or fragment; remove it")
            return None
        return Upstream(cast(UpstreamKind, kind), url.rstrip("/"))

    def read_criteria(self, settings: Mapping[str, tuple[_Path, object]]) -> Criteria:
        if "criteria" not in settings:
            return Criteria()
        path, value = settings["criteria"]
        if not isinstance(value, dict):
            self.add(path, f"must be a table, got {_toml_type(value)}")
            return Criteria()
        table = cast(dict[str, object], value)
        self.check_keys(table, path, ("products", "classifications", "languages"))
        products = self.id_list(table, "products", path)
        classifications = self.id_list(table, "classifications", path)
        languages = self.language_list(table, path)
        if bool(products) != bool(classifications) and not (
            self.has_problem_under((*path, "products"))
            or self.has_problem_under((*path, "classifications"))
        ):
            given, empty = (
                ("products", "classifications") if products else ("classifications", "products")
            )
            self.add(
                (*path, empty),
                f"{given} are set but {empty} are not, so no update would be selected (an "
                f"update must match one of each); list {empty} too, or neither to sync all",
            )
        return Criteria(products, classifications, languages)

    def has_problem_under(self, prefix: _Path) -> bool:
        return any(path[: len(prefix)] == prefix for path, _ in self.problems)

    def string_list(
        self, table: Mapping[str, object], key: str, path: _Path
    ) -> list[tuple[_Path, str]]:
        value = table.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.add((*path, key), f"must be an array of strings, got {_toml_type(value)}")
            return []
        items: list[tuple[_Path, str]] = []
        for index, item in enumerate(value):
            if isinstance(item, str):
                items.append(((*path, key, index), item.strip()))
            else:
                self.add((*path, key, index), f"must be a string, got {_toml_type(item)}")
        return items

    def id_list(self, table: Mapping[str, object], key: str, path: _Path) -> tuple[str, ...]:
        seen: dict[str, _Path] = {}
        for where, item in self.string_list(table, key, path):
            match = _GUID.fullmatch(item)
            if match is None:
                self.add(
                    where,
                    f"{item!r} is not a GUID; write the category id as "
                    "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (such as "
                    "0fa1201d-4330-4fa8-8ae9-b877473b6441 for Security Updates)",
                )
                continue
            guid = match.group(1).lower()
            if guid in seen:
                self.add(where, f"{guid} is listed twice (also {_format_path(seen[guid])})")
                continue
            seen[guid] = where
        return tuple(seen)

    def language_list(self, table: Mapping[str, object], path: _Path) -> tuple[str, ...]:
        seen: dict[str, _Path] = {}
        for where, item in self.string_list(table, "languages", path):
            code = item.lower()
            if not _LANGUAGE.fullmatch(code):
                self.add(
                    where,
                    f"{item!r} is not a language code; write codes such as en, de, zh-cn, pt-br",
                )
                continue
            if code in seen:
                self.add(where, f"{code} is listed twice (also {_format_path(seen[code])})")
                continue
            seen[code] = where
        return tuple(seen)


def _webhook_problem(url: str) -> str | None:
    """What is wrong with a webhook URL, or None."""
    example = "write it as http://host:port/path or https://host/path"
    if not url:
        return f"is empty; {example}"
    if any(c.isspace() for c in url):
        return f"{url!r} contains white space; {example}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc}); {example}"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL; {example}"
    if port == 0:
        return f"{url!r} has port 0; give the receiver's port (1 to 65535) or none"
    if parts.fragment:
        return f"{url!r} has a fragment (#...), which is never sent to the server; remove it"
    return None


# --------------------------------------------------------------------------- line numbers

_KEY_TOKEN = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY_TOKEN}(?:\s*\.\s*{_KEY_TOKEN})*"
_ARRAY_HEADER = re.compile(rf"\s*\[\[\s*({_DOTTED})\s*\]\]")
_TABLE_HEADER = re.compile(rf"\s*\[\s*({_DOTTED})\s*\]")
_KEY_VALUE = re.compile(rf"\s*({_DOTTED})\s*=")
_TOKEN = re.compile(_KEY_TOKEN)


def _split_keys(dotted: str) -> list[str]:
    keys = []
    for token in _TOKEN.findall(dotted):
        if token.startswith('"'):
            try:
                keys.append(json.loads(token))
            except ValueError:
                keys.append(token[1:-1])
        elif token.startswith("'"):
            keys.append(token[1:-1])
        else:
            keys.append(token)
    return keys


def _strip_comment(text: str) -> str:
    """`text` without a trailing `# comment` (a `#` inside a quoted string is kept)."""
    quote: str | None = None
    escaped = False
    for index, char in enumerate(text):
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            return text[:index]
    return text


def _key_lines(text: str) -> dict[_Path, int]:
    """Best effort: the line where each table, key and item of a multi-line array of plain
    values is written. tomllib keeps no positions, so this scans headers, `key =` lines and
    array items the way TOML nests them."""
    found: dict[_Path, int] = {}
    counts: dict[_Path, int] = {}
    prefix: _Path = ()
    open_string: str | None = None
    open_array: _Path | None = None
    item = 0

    def resolve(keys: Sequence[str]) -> _Path:
        path: _Path = ()
        for key in keys:
            path = (*path, key)
            if path in counts:
                path = (*path, counts[path] - 1)
        return path

    def array_items(body: str, number: int) -> None:
        """Note the items of an open array found in `body`; close it at `]`."""
        nonlocal open_array, item
        if open_array is None:
            return
        if "[" in body or "{" in body:  # nested arrays or tables: too complex to follow
            open_array = None
            return
        closed = "]" in body
        for piece in body.split("]", 1)[0].split(","):
            if piece.strip():
                found.setdefault((*open_array, item), number)
                item += 1
        if closed:
            open_array = None

    for number, line in enumerate(text.splitlines(), start=1):
        if open_string is not None:
            if line.count(open_string) % 2 == 1:
                open_string = None
            continue
        if open_array is not None:
            array_items(_strip_comment(line), number)
            continue
        if match := _ARRAY_HEADER.match(line):
            keys = _split_keys(match.group(1))
            array = (*resolve(keys[:-1]), keys[-1])
            counts[array] = counts.get(array, 0) + 1
            prefix = (*array, counts[array] - 1)
            found.setdefault(array, number)
            found.setdefault(prefix, number)
        elif match := _TABLE_HEADER.match(line):
            prefix = resolve(_split_keys(match.group(1)))
            found.setdefault(prefix, number)
        elif match := _KEY_VALUE.match(line):
            path = prefix
            for key in _split_keys(match.group(1)):
                path = (*path, key)
                found.setdefault(path, number)
            value = _strip_comment(line[match.end() :]).strip()
            if value.startswith("[") and "]" not in value:
                open_array, item = path, 0
                array_items(value[1:], number)
                continue
        for delimiter in ('"""', "'''"):
            if line.count(delimiter) % 2 == 1:
                open_string = delimiter
                break
    return found


def _line_of(path: _Path, lines: Mapping[_Path, int]) -> int | None:
    """The line of `path`, else of the nearest enclosing table or key that was found."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
