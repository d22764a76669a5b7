"""The hierarchy sync timeline's pure part (`updatesync.console.timeline`): durations and
clock text, the choice of the sync to show, and `build_timeline` on hand-written status
messages of the article's hierarchy (CS1 over PS1 with its replica ps1sys): rows per site and
replica, phase bars and 6702/6703 marks, failures, unreachable sites and the summary. A fixed
`now` is always given: nothing depends on the wall clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from updatesync.config import Site, Sup
from updatesync.console.providers import ProviderDown, SiteSnapshot
from updatesync.console.timeline import (
    CHART_WIDTH,
    LABEL_WIDTH,
    MARK_WIDTH,
    Bar,
    Row,
    build_timeline,
    chosen,
    clock,
    format_duration,
)

CS1 = Site("CS1", "cs1site.contoso.com", "cas", sups=(Sup("cs1site.contoso.com"),))
PS1 = Site(
    "PS1",
    "ps1site.contoso.com",
    "primary",
    parent="CS1",
    sups=(Sup("ps1site.contoso.com"), Sup("ps1sys.contoso.com")),
)
T0 = datetime(2014, 1, 16, 18, 53, 52, 608000, tzinfo=UTC)
NOW = datetime(2014, 1, 16, 20, 0, 0, tzinfo=UTC)

Message = dict[str, Any]


def msg(ident: int, seconds: float, *strings: str) -> Message:
    return {
        "MessageID": ident,
        "Time": T0 + timedelta(seconds=seconds),
        "InsertionStrings": list(strings),
    }


CS1_OK = [msg(6701, 0), msg(6704, 1), msg(6705, 196), msg(6702, 234)]
PS1_OK = [msg(6701, 285), msg(6704, 286), msg(6706, 400), msg(6702, 463)]


def build(
    messages: Mapping[str, Sequence[Message] | ProviderDown],
    *,
    starts: Sequence[datetime] = (T0,),
    since: datetime | None = None,
    snapshots: Sequence[SiteSnapshot] = (),
) -> Any:
    return build_timeline(
        [CS1, PS1],
        starts,
        messages,
        snapshots,
        since=since,
        now=NOW,
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "0.25 s"),
        (1.5, "1.5 s"),
        (2.0, "2 s"),
        (12.34, "12.3 s"),
        (125, "2m 05s"),
        (3840, "1h 04m"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_clock_is_utc_with_milliseconds() -> None:
    assert clock(T0) == "18:53:52.608"
    local = T0.astimezone(timezone(timedelta(hours=-8)))
    assert clock(local) == "18:53:52.608"


def test_chosen_sync() -> None:
    starts = [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert chosen(starts, None) == 2
    assert chosen(starts, T0 + timedelta(minutes=30)) == 1
    assert chosen(starts, T0 + timedelta(hours=1, microseconds=500)) == 1  # to the millisecond
    assert chosen(starts, T0 + timedelta(hours=3)) == -1
    assert chosen([], None) == -1


def test_bar_and_row_helpers() -> None:
    bar = Bar(6704, T0, T0 + timedelta(seconds=5), x=300.0, width=20.0)
    assert bar.seconds == 5.0
    assert bar.name
    assert Bar(9999, T0, T0).name == "9999"
    assert Row("CS1", "cas").note_x == LABEL_WIDTH + 6
    assert Row("CS1", "cas", bars=[bar]).note_x == 328.0


def test_no_sync_yet() -> None:
    timeline = build({}, starts=())
    assert timeline.rows == []
    assert timeline.problem == "No sync of the hierarchy yet: CS1 has sent no 6701."


def test_no_sync_after_the_time_asked() -> None:
    timeline = build({}, since=T0 + timedelta(days=1))
    assert timeline.rows == []
    assert timeline.problem == (
        "No sync of the hierarchy started at or after 2014-01-17T18:53:52.608000Z."
    )


def test_a_successful_sync_of_the_hierarchy() -> None:
    timeline = build({"CS1": CS1_OK, "PS1": PS1_OK})
    assert [(r.code, r.label, r.sup, r.state) for r in timeline.rows] == [
        ("CS1", "cas", None, "done"),
        ("PS1", "primary", None, "done"),
        ("PS1", "ps1sys.contoso.com", "ps1sys.contoso.com", "done"),
    ]
    cs1, ps1, replica = timeline.rows
    assert [(b.phase, b.mark) for b in cs1.bars] == [
        (6701, False),
        (6704, False),
        (6705, False),
        (6702, True),
    ]
    # Each phase lasts until the site's next message.
    assert [b.seconds for b in cs1.bars] == [1.0, 195.0, 38.0, 0.0]
    assert [b.phase for b in ps1.bars] == [6701, 6704, 6702]
    assert [(b.phase, b.seconds) for b in replica.bars] == [(6706, 63.0)]
    assert timeline.start == T0
    assert timeline.end == T0 + timedelta(seconds=463)
    assert not timeline.live
    assert timeline.summary == (
        "Started 2014-01-16 18:53:52 UTC at CS1; 2 of 2 sites done, 0 failed, span 7m 43s"
    )
    assert "CS1: 4 status messages, 18:53:52.608 → 18:57:46.608 UTC (3m 54s)" in cs1.title


def test_bars_are_placed_on_the_chart() -> None:
    timeline = build({"CS1": CS1_OK, "PS1": PS1_OK})
    cs1 = timeline.rows[0]
    first, mark = cs1.bars[0], cs1.bars[-1]
    assert first.x == LABEL_WIDTH
    assert mark.width == MARK_WIDTH
    right = max(b.x + b.width for r in timeline.rows for b in r.bars)
    assert right <= LABEL_WIDTH + CHART_WIDTH + MARK_WIDTH
    assert [r.y for r in timeline.rows] == sorted(r.y for r in timeline.rows)
    assert timeline.ticks[0] == (LABEL_WIDTH, "0")
    assert all(label.startswith("+") for _, label in timeline.ticks[1:])


def test_a_failed_site_shows_its_error_on_the_mark() -> None:
    failed = [
        msg(6701, 0),
        msg(6704, 1),
        msg(6703, 6, "AdminProxy.CreateUpdateServer", "Request for principal permission failed"),
    ]
    timeline = build({"CS1": failed, "PS1": []})
    cs1, ps1 = timeline.rows
    assert cs1.state == "failed"
    assert cs1.note == "failed: Request for principal permission failed"
    assert cs1.bars[-2].failed  # the phase that was running
    mark = cs1.bars[-1]
    assert mark.mark and mark.failed
    assert mark.text.endswith(
        "Error: Request for principal permission failed\nSource: AdminProxy.CreateUpdateServer"
    )
    assert (ps1.state, ps1.note, ps1.bars) == ("none", "no sync in this window", [])
    assert "0 of 2 sites done, 1 failed" in timeline.summary


def test_a_replica_failure_marks_the_replica_not_the_site() -> None:
    failure = "Replica WSUS server ps1sys.contoso.com: connection refused"
    ps1 = [msg(6701, 285), msg(6704, 286), msg(6706, 400), msg(6703, 410, "", failure)]
    ps1.append(msg(6702, 463))
    timeline = build({"CS1": CS1_OK, "PS1": ps1})
    site, replica = timeline.rows[1], timeline.rows[2]
    assert site.state == "done"
    assert (replica.state, replica.note) == ("failed", f"failed: {failure}")
    assert replica.bars[0].failed
    assert replica.bars[0].end == T0 + timedelta(seconds=410)
    assert replica.bars[-1].mark


def test_an_unreachable_site_has_a_row_with_the_reason() -> None:
    down = ProviderDown("PS1", "http://ps1site.contoso.com:8440", "did not answer")
    timeline = build({"CS1": CS1_OK, "PS1": down})
    row = timeline.rows[1]
    assert (row.code, row.state) == ("PS1", "unreachable")
    assert (
        row.note == "The SMS Provider of site PS1 at http://ps1site.contoso.com:8440 did not answer"
    )


def test_a_sync_without_an_end_did_not_finish() -> None:
    timeline = build({"CS1": CS1_OK[:2], "PS1": []})
    cs1 = timeline.rows[0]
    assert (cs1.state, cs1.note) == ("none", "did not finish")
    assert cs1.bars[-1].seconds == 0.0
    assert not cs1.bars[-1].running


def test_a_running_site_of_the_latest_sync_runs_until_now() -> None:
    running = SiteSnapshot(
        site=CS1, url=CS1.url, status={"InProgress": True, "LastSyncState": 6704}
    )
    timeline = build({"CS1": CS1_OK[:2], "PS1": []}, snapshots=[running])
    cs1 = timeline.rows[0]
    assert cs1.state == "running"
    assert cs1.bars[-1].running
    assert cs1.bars[-1].end == NOW
    assert "now (running)" in cs1.bars[-1].text
    assert timeline.live
    assert timeline.end == NOW
    assert timeline.summary.endswith(", still running")


def test_an_earlier_sync_links_to_its_neighbours_and_ignores_the_next_6701() -> None:
    later = T0 + timedelta(hours=1)
    cs1 = [*CS1_OK, {"MessageID": 6701, "Time": later, "InsertionStrings": []}]
    timeline = build({"CS1": cs1, "PS1": PS1_OK}, starts=[T0, later], since=T0)
    assert (timeline.earlier, timeline.later) == (None, later)
    assert [b.phase for b in timeline.rows[0].bars] == [6701, 6704, 6705, 6702]
    latest = build({"CS1": [], "PS1": []}, starts=[T0, later])
    assert (latest.start, latest.earlier, latest.later) == (later, T0, None)


REFUSED = (
    "Unable to connect to the remote server ---> System.Net.Sockets.SocketException: No "
    "connection could be made because the target machine actively refused it 127.0.0.1:8531"
)


def test_the_failed_note_of_the_last_site_to_end_goes_before_its_bars() -> None:
    """Issue 15: the failure note of a site whose 6703 ends the sync was drawn after its
    mark, at the edge of the picture, and cut to "fa". It goes before the bars now, cut to
    the room there with "…", its whole text in the hover."""
    ps1 = [msg(6701, 285), msg(6704, 286), msg(6703, 463, "AdminProxy.CreateUpdateServer", REFUSED)]
    timeline = build({"CS1": CS1_OK, "PS1": ps1})
    row = next(r for r in timeline.rows if r.code == "PS1" and r.sup is None)
    assert row.note == f"failed: {REFUSED}"
    assert row.note_x > timeline.width - 20  # no room after the mark
    assert (row.note_anchor, row.note_below) == ("end", False)
    first = min(b.x for b in row.bars)
    assert row.note_at == first - 8
    assert row.note_at - row.note_chars * 7.2 >= LABEL_WIDTH
    assert row.shown_note.startswith("failed: Unable to connect")
    assert row.shown_note.endswith("…") and len(row.shown_note) == row.note_chars
    assert row.height == row.band  # on the bars' line


def test_a_note_with_no_room_beside_the_bars_takes_a_line_below() -> None:
    failed = [msg(6701, 0), msg(6704, 1), msg(6703, 234, "AdminProxy.CreateUpdateServer", REFUSED)]
    timeline = build({"CS1": failed, "PS1": []})
    cs1 = timeline.rows[0]
    assert cs1.note_below and cs1.note_anchor == "start"
    assert cs1.note_at == LABEL_WIDTH + 6
    assert cs1.height > cs1.band
    assert cs1.note_y > cs1.y + cs1.band
    assert LABEL_WIDTH + 6 + cs1.note_chars * 7.2 <= timeline.width - 8
    assert timeline.rows[1].y == cs1.y + cs1.height  # the rows below move down
    assert cs1.shown_note.startswith("failed: Unable to connect")


def test_a_short_note_after_the_bars_is_whole() -> None:
    timeline = build({"CS1": CS1_OK, "PS1": [msg(6701, 50), msg(6704, 51)]})
    ps1 = timeline.rows[1]
    assert ps1.note == "did not finish"
    assert ps1.shown_note == "did not finish"
    assert (ps1.note_at, ps1.note_anchor) == (ps1.note_x, "start")
