"""Sync schedules and the durations and sizes of the hierarchy file.

A schedule is a cron expression of exactly five fields (minute hour day-of-month month
day-of-week, evaluated by the `cronsim` library with Debian cron's rules) or an interval such
as `1d`, `7h`, `30m` or `1h30m`. An interval runs at `schedule_start` + k × interval (default
start: 2000-01-01 00:00, so `1d` runs at midnight). Without a schedule the top-level site syncs
every 7 days, as Configuration Manager does by default.

Sizes are bytes as an integer, or a string such as `"5MB"`; KB/MB/GB are binary multiples
(1 MB = 1,048,576 bytes), as Windows counts them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, TypeAlias

from cronsim import CronSim, CronSimError

from updatesync.config.defaults import DEFAULT_OVERDUE_AFTER, OVERDUE_MARGIN

__all__ = [
    "CRON_FIELDS",
    "DEFAULT_SCHEDULE",
    "CronSchedule",
    "IntervalSchedule",
    "Schedule",
    "default_overdue_after",
    "format_duration",
    "longest_gap",
    "parse_duration",
    "parse_schedule",
    "parse_size",
]

CRON_FIELDS: Final = "minute hour day-of-month month day-of-week"
_DEFAULT_INTERVAL_START: Final = datetime(2000, 1, 1)
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


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A five-field cron expression (minute hour day-of-month month day-of-week)."""

    expression: str

    def __post_init__(self) -> None:
        fields = self.expression.split()
        if len(fields) != 5:
            raise ValueError(
                f"cron expression {self.expression!r} has {len(fields)} field(s); "
                f"write exactly 5: {CRON_FIELDS}"
            )
        try:
            CronSim(self.expression, _DEFAULT_INTERVAL_START)
        except CronSimError as exc:
            raise ValueError(
                f"invalid cron expression {self.expression!r}: {_lower_first(str(exc))} "
                f"(fields: {CRON_FIELDS})"
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
        return self.text or format_duration(self.interval)


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
            f'"1d", "7h" or "30m") nor a cron expression of 5 fields ({CRON_FIELDS})'
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


def format_duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return "".join(parts) or "0m"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


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
    return max(DEFAULT_OVERDUE_AFTER, longest_gap(schedule) + OVERDUE_MARGIN)
