"""The rules of the hierarchy file that span tables: unique names, parent links, site types and
their SUPs, exactly one top-level site, where the top-level site's settings are written, and
`overdue_after` against the schedule.

They read the parsed TOML document itself, taking each value through the same check as its key
(`updatesync.config.values`) and leaving out the ones refused, so that they are reported
together with the problems of single keys, as one list (`HierarchyFile` runs them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, NamedTuple, TypeVar

from updatesync.config import values
from updatesync.config.defaults import OVERDUE_MARGIN
from updatesync.config.hierarchy import SiteType
from updatesync.config.schedule import (
    DEFAULT_SCHEDULE,
    Schedule,
    format_duration,
    longest_gap,
    parse_schedule,
)
from updatesync.config.values import Loc, format_path

__all__ = ["TOP_ONLY_KEYS", "Findings", "check"]

TOP_ONLY_KEYS: Final = ("schedule", "schedule_start", "upstream", "criteria")
"""Keys set at the top-level site (under [hierarchy] or in its [[sites]] table) and inherited
by every other site."""

_SITE_TYPE_NAMES: Final[Mapping[str, str]] = {
    "cas": "central administration site",
    "primary": "primary site",
    "secondary": "secondary site",
}

T = TypeVar("T")
Found = list[tuple[Loc, str]]


def _valid(check: Callable[[object], T], value: object) -> T | None:
    """`value` through `check`, None when absent or refused (its key reports why)."""
    if value is None:
        return None
    try:
        return check(value)
    except ValueError:  # PydanticCustomError is a ValueError
        return None


def _table(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


@dataclass
class _Outline:
    """What the rules need of one [[sites]] table; None where missing or refused."""

    index: int
    table: Mapping[str, object]
    code: str | None = None
    fqdn: str | None = None
    type: SiteType | None = None
    parent: str | None = None
    sups: list[tuple[Loc, str]] = field(default_factory=list)
    """(path, fqdn) of each SUP whose FQDN is valid."""

    @property
    def path(self) -> Loc:
        return ("sites", self.index)

    @property
    def has_parent_key(self) -> bool:
        return "parent" in self.table


class Findings(NamedTuple):
    """What the rules found in a document."""

    problems: Found
    """The problems of the rules spanning tables, as (key path, message)."""
    unread: set[Loc]
    """The top-only keys of sites other than the top-level site: refused as a whole (or, on
    a second top-level site, left alone), their values not read."""


def check(document: object) -> Findings:
    """The rules spanning tables."""
    found: Found = []
    document = _table(document)
    head = _table(document.get("hierarchy"))
    sites = _outlines(document.get("sites"), found)
    _check_unique_names(sites, found)
    top = _check_structure(sites, found)
    settings = _top_settings(head, sites, top, found)
    schedule = _check_schedule(settings, found)
    if "upstream" not in settings:
        found.append(
            (
                ("hierarchy", "upstream"),
                'missing; add [hierarchy.upstream] with kind = "microsoft-update", "wsus" '
                '(and url) or "none" (disconnected: import WSUS exports)',
            )
        )
    _check_overdue_after(head, schedule, "schedule" in settings, found)
    read = {where for where, _ in settings.values()}
    unread = {
        (*site.path, key) for site in sites for key in TOP_ONLY_KEYS if key in site.table
    } - read
    return Findings(found, unread)


def _outlines(value: object, found: Found) -> list[_Outline]:
    """An outline of each [[sites]] table; a site naming itself as parent is refused here."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        return []
    sites = []
    for index, table in enumerate(value):
        site = _Outline(index, table)
        site.code = _valid(values.site_code, table.get("code"))
        site.fqdn = _valid(values.host, table.get("fqdn"))
        site.type = _valid(values.site_type, table.get("type"))
        site.parent = _valid(values.site_code, table.get("parent"))
        if site.parent is not None and site.parent == site.code:
            found.append(((*site.path, "parent"), f"site {site.code} cannot be its own parent"))
            site.parent = None
        sups = table.get("sups")
        if isinstance(sups, list) and all(isinstance(sup, dict) for sup in sups):
            for number, sup in enumerate(sups):
                fqdn = _valid(values.host, sup.get("fqdn"))
                if fqdn is not None:
                    site.sups.append(((*site.path, "sups", number), fqdn))
        sites.append(site)
    return sites


def _check_unique_names(sites: Sequence[_Outline], found: Found) -> None:
    codes: dict[str, Loc] = {}
    site_hosts: dict[str, Loc] = {}
    sup_hosts: dict[str, Loc] = {}
    for site in sites:
        if site.code is not None:
            if site.code in codes:
                found.append(
                    (
                        (*site.path, "code"),
                        f"duplicate site code {site.code} (also {format_path(codes[site.code])})"
                        "; every site needs its own code",
                    )
                )
            else:
                codes[site.code] = (*site.path, "code")
        if site.fqdn is not None:
            if site.fqdn in site_hosts:
                found.append(
                    (
                        (*site.path, "fqdn"),
                        f"site server {site.fqdn} is already used by "
                        f"{format_path(site_hosts[site.fqdn])}; each site has its own server",
                    )
                )
            else:
                site_hosts[site.fqdn] = (*site.path, "fqdn")
        for where, fqdn in site.sups:
            if fqdn in sup_hosts:
                found.append(
                    (
                        (*where, "fqdn"),
                        f"software update point {fqdn} is already defined at "
                        f"{format_path(sup_hosts[fqdn])}; a server holds one update server",
                    )
                )
            else:
                sup_hosts[fqdn] = (*where, "fqdn")


def _check_structure(sites: Sequence[_Outline], found: Found) -> _Outline | None:
    """Parent links, site types, SUP counts; returns the top-level site when there is
    exactly one."""
    by_code = {site.code: site for site in sites if site.code is not None}
    known = ", ".join(by_code) or "none"
    for site in sites:
        where = (*site.path, "parent")
        parent = by_code.get(site.parent) if site.parent is not None else None
        parent_type = _SITE_TYPE_NAMES.get(parent.type or "", "site") if parent else ""
        if site.parent is not None and parent is None:
            found.append(
                (where, f"unknown parent site {site.parent}; use one of the site codes ({known})")
            )
        if site.type == "cas" and site.has_parent_key:
            found.append(
                (
                    where,
                    "a central administration site is always the top-level site; remove its parent",
                )
            )
        elif site.type == "primary" and parent is not None and parent.type != "cas":
            found.append(
                (
                    where,
                    f"a primary site's parent must be a central administration site, but "
                    f"{parent.code} is a {parent_type}",
                )
            )
        elif site.type == "secondary":
            if not site.has_parent_key:
                found.append(
                    (where, "missing; a secondary site needs parent = the code of its primary site")
                )
            elif parent is not None and parent.type != "primary":
                found.append(
                    (
                        where,
                        f"a secondary site's parent must be a primary site, but {parent.code} "
                        f"is a {parent_type}",
                    )
                )
            if len(site.sups) > 1:
                found.append(
                    (
                        (*site.path, "sups", 1),
                        f"a secondary site has at most one software update point; "
                        f"{site.code or 'this site'} lists {len(site.sups)}: keep one",
                    )
                )
        if parent is not None and site.sups and not parent.sups:
            found.append(
                (
                    (*site.path, "sups"),
                    f"{site.code}'s default SUP syncs from its parent {parent.code}'s default "
                    f"SUP, but {parent.code} has none; add a [[sites.sups]] to {parent.code}",
                )
            )
    _check_cycles(sites, by_code, found)
    # A CAS is top-level even when it wrongly names a parent (reported above); a parentless
    # secondary is reported above too and not counted again here.
    tops = [s for s in sites if s.type == "cas" or not (s.has_parent_key or s.type == "secondary")]
    if sites and not tops:
        found.append(
            (
                ("sites",),
                "no top-level site: every site names a parent; the central administration site "
                "(or a standalone primary site) has no parent",
            )
        )
    elif len(tops) > 1:
        names = ", ".join(f"{s.code or format_path(s.path)} ({s.type or 'no type'})" for s in tops)
        found.append(
            (
                ("sites",),
                f"{len(tops)} top-level sites ({names}); exactly one site may have no parent: "
                "give a primary site under a central administration site parent = its code",
            )
        )
    return tops[0] if len(tops) == 1 else None


def _check_cycles(sites: Sequence[_Outline], by_code: Mapping[str, _Outline], found: Found) -> None:
    reported: set[str] = set()
    for site in sites:
        chain: list[str] = []
        current: _Outline | None = site
        while current is not None and current.code is not None:
            if current.code in chain:
                cycle = chain[chain.index(current.code) :]
                if not reported.intersection(cycle):
                    reported.update(cycle)
                    loop = " → ".join([*cycle, current.code])
                    found.append(
                        (
                            (*by_code[cycle[0]].path, "parent"),
                            f"the parent links form a cycle ({loop}); the chain of parents "
                            "must end at the top-level site",
                        )
                    )
                break
            chain.append(current.code)
            current = by_code.get(current.parent) if current.parent is not None else None


def _top_settings(
    head: Mapping[str, object], sites: Sequence[_Outline], top: _Outline | None, found: Found
) -> dict[str, tuple[Loc, object]]:
    """schedule/schedule_start/upstream/criteria with the path each was found at."""
    settings: dict[str, tuple[Loc, object]] = {
        key: (("hierarchy", key), head[key]) for key in TOP_ONLY_KEYS if key in head
    }
    top_code = top.code if top is not None else None
    for site in sites:
        for key in TOP_ONLY_KEYS:
            if key not in site.table:
                continue
            where = (*site.path, key)
            if site.has_parent_key:
                found.append(
                    (
                        where,
                        f"{key} is set only at the top-level site"
                        f"{f' ({top_code})' if top_code else ''} and inherited by "
                        f"{site.code or 'this site'}; remove it here and set it under "
                        "[hierarchy]",
                    )
                )
            elif key in settings:
                found.append(
                    (
                        where,
                        f"{key} is also set at {format_path(settings[key][0])}; "
                        "set it in one place",
                    )
                )
            elif site is top:
                settings[key] = (where, site.table[key])
    return settings


def _check_schedule(settings: Mapping[str, tuple[Loc, object]], found: Found) -> Schedule | None:
    """`schedule_start` against the schedule; the schedule, None when refused."""
    start: datetime | None = None
    if "schedule_start" in settings:
        start = _valid(values.schedule_start, settings["schedule_start"][1])
        if start is None:
            return None
    if "schedule" not in settings:
        return DEFAULT_SCHEDULE
    where, text = settings["schedule"]
    if _valid(values.schedule, text) is None:
        return None
    try:
        return parse_schedule(str(text), start)
    except ValueError as exc:
        found.append((where, str(exc)))
        return None


def _check_overdue_after(
    head: Mapping[str, object], schedule: Schedule | None, scheduled: bool, found: Found
) -> None:
    """An `overdue_after` not longer than the longest gap between two scheduled syncs would
    make every site overdue before its next sync."""
    given = _table(head.get("alerts")).get("overdue_after")
    limit = _valid(values.interval, given)
    if limit is None or schedule is None:
        return
    gap = longest_gap(schedule)
    if limit <= gap:
        told = f'schedule "{schedule}"' if scheduled else f"the default schedule, every {schedule}"
        found.append(
            (
                ("hierarchy", "alerts", "overdue_after"),
                f"{str(given).strip()!r} is not longer than the longest time between two "
                f"scheduled syncs ({format_duration(gap)}, {told}): every site would be overdue "
                f"before its next scheduled sync; make it longer, such as "
                f'"{format_duration(gap + OVERDUE_MARGIN)}", or leave it out for that default',
            )
        )
