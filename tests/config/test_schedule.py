"""Sync schedules (cron expressions and intervals, with time zones) and the duration and
size parsers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from updatesync.config import (
    CronSchedule,
    IntervalSchedule,
    parse_duration,
    parse_schedule,
    parse_size,
)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 2 * * *", datetime(2014, 1, 16, 18, 53), datetime(2014, 1, 17, 2, 0)),
        ("0 2 * * *", datetime(2014, 1, 16, 1, 59, 59), datetime(2014, 1, 16, 2, 0)),
        ("0 2 * * *", datetime(2014, 1, 16, 2, 0), datetime(2014, 1, 17, 2, 0)),
        ("*/15 * * * *", datetime(2014, 1, 16, 18, 53), datetime(2014, 1, 16, 19, 0)),
        ("30 4 * * 1-5", datetime(2014, 1, 17, 5, 0), datetime(2014, 1, 20, 4, 30)),  # Fri → Mon
        ("0 0 1 * *", datetime(2014, 1, 16), datetime(2014, 2, 1)),
        ("0 6 * * SUN", datetime(2014, 1, 16), datetime(2014, 1, 19, 6, 0)),
    ],
)
def test_cron_next_run(expression: str, after: datetime, expected: datetime) -> None:
    schedule = parse_schedule(expression)
    assert isinstance(schedule, CronSchedule)
    assert schedule.next_run(after) == expected


def test_cron_next_run_keeps_the_time_zone() -> None:
    tokyo = timezone(timedelta(hours=9))
    after = datetime(2014, 1, 16, 18, 53, tzinfo=tokyo)
    assert CronSchedule("0 2 * * *").next_run(after) == datetime(2014, 1, 17, 2, tzinfo=tokyo)
    utc_after = datetime(2014, 1, 16, 18, 53, tzinfo=UTC)
    assert CronSchedule("0 19 * * *").next_run(utc_after) == datetime(2014, 1, 16, 19, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "after", "expected"),
    [
        ("1d", None, datetime(2014, 1, 16, 18, 53), datetime(2014, 1, 17)),
        ("7h", None, datetime(2000, 1, 1, 7, 0), datetime(2000, 1, 1, 14, 0)),
        ("30m", None, datetime(2014, 1, 16, 18, 53), datetime(2014, 1, 16, 19, 0)),
        ("1h30m", None, datetime(2000, 1, 1, 2, 0), datetime(2000, 1, 1, 3, 0)),
        ("1d", datetime(2014, 1, 16, 2), datetime(2014, 1, 16, 2), datetime(2014, 1, 17, 2)),
        ("7d", datetime(2014, 1, 16, 2), datetime(2014, 1, 20), datetime(2014, 1, 23, 2)),
        ("7d", datetime(2014, 1, 16, 2), datetime(2013, 12, 1), datetime(2014, 1, 16, 2)),
    ],
)
def test_interval_next_run(
    text: str, start: datetime | None, after: datetime, expected: datetime
) -> None:
    schedule = parse_schedule(text, start)
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.next_run(after) == expected
    assert str(schedule) == text


def test_interval_next_run_with_time_zones() -> None:
    tokyo = timezone(timedelta(hours=9))
    naive_start = IntervalSchedule(timedelta(days=1), datetime(2014, 1, 16, 2))
    after = datetime(2014, 1, 16, 18, 53, tzinfo=tokyo)
    assert naive_start.next_run(after) == datetime(2014, 1, 17, 2, tzinfo=tokyo)
    aware_start = IntervalSchedule(timedelta(hours=12), datetime(2014, 1, 16, tzinfo=UTC))
    assert aware_start.next_run(after) == datetime(2014, 1, 16, 12, tzinfo=UTC).astimezone(tokyo)
    with pytest.raises(ValueError, match="pass an aware datetime"):
        aware_start.next_run(datetime(2014, 1, 16))


def test_duration_and_size_parsers() -> None:
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration(" 1H30M ") == timedelta(hours=1, minutes=30)
    with pytest.raises(ValueError, match="not an interval"):
        parse_duration("1.5h")
    assert parse_size(10) == 10
    assert parse_size("5MB") == 5 * 1024 * 1024
    assert parse_size("2kb") == 2048
    with pytest.raises(ValueError, match="not a size"):
        parse_size("5 TB")
    with pytest.raises(ValueError, match="must be positive"):
        IntervalSchedule(timedelta(0))
