"""Element text of each kind as .NET writes it: datetimes (7 fraction digits, zones, the
"no deadline" value) and protocol versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from updatesync.wsusss.messages import (
    NO_DEADLINE,
    format_datetime,
    parse_datetime,
    parse_protocol_version,
)


@pytest.mark.parametrize(
    ("text", "value", "back"),
    [
        ("2026-10-04T20:33:26.65455Z", datetime(2026, 10, 4, 20, 33, 26, 654550, tzinfo=UTC), None),
        ("2026-10-04T13:16:35.433Z", datetime(2026, 10, 4, 13, 16, 35, 433000, tzinfo=UTC), None),
        ("2026-10-04T13:16:35Z", datetime(2026, 10, 4, 13, 16, 35, tzinfo=UTC), None),
        (
            "2006-05-27T22:42:23.0632331Z",
            datetime(2006, 5, 27, 22, 42, 23, 63233, tzinfo=UTC),
            "2006-05-27T22:42:23.063233Z",
        ),
        ("9999-12-31T23:59:59.9999999", NO_DEADLINE, None),
        ("2006-05-24T15:37:08.887", datetime(2006, 5, 24, 15, 37, 8, 887000), None),
        (
            "2026-10-04T18:00:00+02:00",
            datetime(2026, 10, 4, 16, 0, tzinfo=UTC),
            "2026-10-04T16:00:00Z",
        ),
    ],
)
def test_datetimes_as_dotnet_writes_them(text: str, value: datetime, back: str | None) -> None:
    assert parse_datetime(text) == value
    assert format_datetime(value) == (back or text)


def test_datetime_refusals_and_zones() -> None:
    for bad in (
        "2026-10-04",
        "2026-13-01T00:00:00Z",
        "2026-10-04 16:00:00Z",
        "2026-10-04T16:00:00.12345678Z",
    ):
        with pytest.raises(ValueError):
            parse_datetime(bad)
    assert (
        format_datetime(datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=-5))))
        == "2026-01-01T06:00:00Z"
    )


def test_protocol_versions() -> None:
    assert parse_protocol_version("1.20") == (1, 20)
    assert parse_protocol_version("2.0") == (2, 0)
    for bad in ("1", "1.", "one.two", "1.2.3", ""):
        with pytest.raises(ValueError, match=r"major\.minor"):
            parse_protocol_version(bad)
