"""Anchors: the Windows text form, refusals, and ordering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from updatesync.wsusss.anchors import MAX_CHANGE_NUMBER, Anchor, AnchorError


def test_windows_anchor_round_trips() -> None:
    anchor = Anchor.parse("9438,2026-10-04 16:33:26.671")
    assert anchor.change_number == 9438
    assert anchor.timestamp == datetime(2026, 10, 4, 16, 33, 26, 671000, tzinfo=UTC)
    assert str(anchor) == anchor.format() == "9438,2026-10-04 16:33:26.671"


def test_issue_cuts_to_milliseconds_and_converts_to_utc() -> None:
    now = datetime(2026, 10, 4, 18, 33, 26, 671999, tzinfo=timezone(timedelta(hours=2)))
    anchor = Anchor.issue(17, now)
    assert anchor.format() == "17,2026-10-04 16:33:26.671"
    assert Anchor.parse(anchor.format()) == anchor
    assert Anchor.issue(0, datetime(2026, 1, 1, tzinfo=UTC)).format() == "0,2026-01-01 00:00:00.000"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,2026-10-04 16:33:26", "1,2026-10-04 16:33:26.000"),
        ("1,2026-10-04 16:33:26.5", "1,2026-10-04 16:33:26.500"),
        ("1,2026-10-04 16:33:26.1234567", "1,2026-10-04 16:33:26.123"),
    ],
)
def test_lenient_fractions(text: str, expected: str) -> None:
    assert Anchor.parse(text).format() == expected


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "",
        " 1,2026-10-04 16:33:26.671",
        "1,2026-10-04T16:33:26.671",
        "2026-10-04 16:33:26.671",
        "-1,2026-10-04 16:33:26.671",
        "1;2026-10-04 16:33:26.671",
        "1,2026-13-04 16:33:26.671",
        "1,2026-02-30 16:33:26.671",
        "1,2026-10-04 25:33:26.671",
        "99999999999,2026-10-04 16:33:26.671",
        f"{MAX_CHANGE_NUMBER + 1},2026-10-04 16:33:26.671",
        "١,2026-10-04 16:33:26.671",  # an Arabic-Indic digit is not an ASCII digit
        "1,2026-10-04 16:33:26.671 extra",
    ],
)
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises(AnchorError) as caught:
        Anchor.parse(text)
    assert isinstance(caught.value, ValueError)
    assert "anchor" in str(caught.value)


def test_optional() -> None:
    assert Anchor.parse_optional(None) is None
    assert Anchor.parse_optional("") is None
    assert Anchor.parse_optional("5,2026-10-04 16:33:26.671") == Anchor.parse(
        "5,2026-10-04 16:33:26.671"
    )
    with pytest.raises(AnchorError):
        Anchor.parse_optional("garbage")


def test_construction_refusals() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        Anchor(1, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="outside"):
        Anchor(-1, datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(TypeError):
        Anchor(True, datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(TypeError):
        Anchor.parse(b"1,2026-10-04 16:33:26.671")  # type: ignore[arg-type]


def test_ordering_is_change_number_then_time() -> None:
    early = datetime(2026, 10, 4, 16, 9, 27, 371000, tzinfo=UTC)
    late = early + timedelta(minutes=24)
    assert Anchor(9438, early) < Anchor(9438, late)
    assert Anchor(9439, early) > Anchor(9438, late)  # the counter decides for updatesync
    assert sorted([Anchor(2, early), Anchor(1, late), Anchor(1, early)]) == [
        Anchor(1, early),
        Anchor(1, late),
        Anchor(2, early),
    ]
    assert Anchor(3, early) == Anchor.parse(Anchor(3, early).format())
