"""The WSyncMgr.log `sync:` lines written for the update server's progress: `WsusProgress` (the
default SUP: a line per phase, one every 10% of the updates with the ETA, the 100% line when
the count completes and again at the end), `ReplicaProgress` (a replica's "other items" only),
and WSyncMgr's time formats `format_sync_time` and `format_eta`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from updatesync.logs.cmtrace import CMTraceLog, read_cmtrace
from updatesync.site.sync.progress import (
    ReplicaProgress,
    WsusProgress,
    format_eta,
    format_sync_time,
)

COMP = "SMS_WSUS_SYNC_MANAGER"
T0 = datetime(2014, 1, 16, 18, 53, 53, tzinfo=UTC)


class Lines:
    """A log that keeps the messages written to it."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


def progress(kind: type[WsusProgress] = WsusProgress) -> tuple[WsusProgress, list[str]]:
    log = Lines()
    return kind(log), log.lines  # type: ignore[arg-type]


# -- the default SUP ------------------------------------------------------------------------


def test_the_article_sync_is_written_as_wsyncmgr_writes_it() -> None:
    """Microsoft's article: categories, updates, 93% with its ETA, the 100% line twice."""
    report, lines = progress()
    report("categories", 0, 0, None)
    report("updates", 0, 130, None)
    report("updates", 122, 130, 3.2)
    report("updates", 130, 130, None)
    report.finish()
    assert lines == [
        "sync: WSUS synchronizing categories",
        "sync: WSUS synchronizing updates",
        "sync: WSUS synchronizing updates, processed 122 out of 130 items (93%), ETA in 00:00:03",
        "sync: WSUS synchronizing updates, processed 130 out of 130 items (100%)",
        "sync: WSUS synchronizing updates, processed 130 out of 130 items (100%)",
    ]


def test_a_line_every_ten_percent_and_none_in_between() -> None:
    report, lines = progress()
    for done in range(0, 1001, 25):
        report("updates", done, 1000, None)
    progress_lines = [line for line in lines if "processed" in line]
    assert progress_lines == [
        f"sync: WSUS synchronizing updates, processed {done} out of 1000 items ({done // 10}%)"
        for done in (100, 200, 300, 400, 500, 600, 700, 800, 900, 1000)
    ]


def test_the_eta_is_written_only_when_known() -> None:
    report, lines = progress()
    report("updates", 10, 100, None)
    report("updates", 20, 100, 3725.0)
    assert lines == [
        "sync: WSUS synchronizing updates",
        "sync: WSUS synchronizing updates, processed 10 out of 100 items (10%)",
        "sync: WSUS synchronizing updates, processed 20 out of 100 items (20%), ETA in 01:02:05",
    ]


def test_the_same_count_reported_again_adds_nothing() -> None:
    report, lines = progress()
    report("updates", 50, 100, 10.0)
    report("updates", 50, 100, 8.0)
    report("updates", 100, 100, None)
    report("updates", 100, 100, None)
    assert lines == [
        "sync: WSUS synchronizing updates",
        "sync: WSUS synchronizing updates, processed 50 out of 100 items (50%), ETA in 00:00:10",
        "sync: WSUS synchronizing updates, processed 100 out of 100 items (100%)",
    ]


def test_a_count_past_the_total_is_written_as_complete() -> None:
    report, lines = progress()
    report("updates", 105, 100, None)
    assert lines[-1] == "sync: WSUS synchronizing updates, processed 100 out of 100 items (100%)"


def test_a_phase_is_named_once_and_only_updates_are_counted() -> None:
    report, lines = progress()
    report("categories", 1, 10, None)
    report("categories", 5, 10, None)
    report("categories", 10, 10, None)
    report("updates", 0, 0, None)
    report("updates", 0, 0, None)
    assert lines == ["sync: WSUS synchronizing categories", "sync: WSUS synchronizing updates"]


def test_leaving_a_completed_updates_phase_writes_the_100_percent_line_again() -> None:
    report, lines = progress()
    report("updates", 4, 4, None)
    report("other items", 0, 0, None)
    assert lines == [
        "sync: WSUS synchronizing updates",
        "sync: WSUS synchronizing updates, processed 4 out of 4 items (100%)",
        "sync: WSUS synchronizing updates, processed 4 out of 4 items (100%)",
        "sync: WSUS synchronizing other items",
    ]


def test_an_unfinished_updates_phase_ends_without_a_100_percent_line() -> None:
    report, lines = progress()
    report("updates", 50, 100, None)
    report.finish()
    report.finish()
    assert lines == [
        "sync: WSUS synchronizing updates",
        "sync: WSUS synchronizing updates, processed 50 out of 100 items (50%)",
    ]


def test_finish_writes_the_final_line_once() -> None:
    report, lines = progress()
    report("updates", 7, 7, None)
    report.finish()
    report.finish()
    assert lines.count("sync: WSUS synchronizing updates, processed 7 out of 7 items (100%)") == 2


def test_finish_before_any_progress_writes_nothing() -> None:
    report, lines = progress()
    report.finish()
    assert lines == []


def test_the_lines_land_in_a_cmtrace_log(tmp_path: Path) -> None:
    path = tmp_path / "WSyncMgr.log"
    log = CMTraceLog(path, component=COMP, bias_minutes=0, now=lambda: T0, thread=1, file_hint="")
    report = WsusProgress(log)
    report("updates", 0, 20, None)
    report("updates", 10, 20, 61.0)
    report("updates", 20, 20, None)
    report.finish()
    entries = list(read_cmtrace(path))
    assert [e.message for e in entries] == [
        "sync: WSUS synchronizing updates",
        "sync: WSUS synchronizing updates, processed 10 out of 20 items (50%), ETA in 00:01:01",
        "sync: WSUS synchronizing updates, processed 20 out of 20 items (100%)",
        "sync: WSUS synchronizing updates, processed 20 out of 20 items (100%)",
    ]
    assert {(e.component, e.time) for e in entries} == {(COMP, T0)}


# -- a replica ------------------------------------------------------------------------------


def test_a_replica_writes_its_other_items_as_the_article_shows() -> None:
    report, lines = progress(ReplicaProgress)
    report("other items", 0, 0, None)
    report("other items", 0, 4, None)
    report("other items", 4, 4, None)
    report("other items", 4, 4, None)
    report.finish()
    assert lines == [
        "sync: Replica WSUS synchronizing other items",
        "sync: Replica WSUS synchronizing other items, processed 4 out of 4 items (100%)",
    ]


def test_a_replica_writes_each_new_count_of_other_items() -> None:
    report, lines = progress(ReplicaProgress)
    report("other items", 1, 3, None)
    report("other items", 2, 3, None)
    report("other items", 3, 3, None)
    assert lines == [
        "sync: Replica WSUS synchronizing other items",
        "sync: Replica WSUS synchronizing other items, processed 1 out of 3 items (33%)",
        "sync: Replica WSUS synchronizing other items, processed 2 out of 3 items (66%)",
        "sync: Replica WSUS synchronizing other items, processed 3 out of 3 items (100%)",
    ]


def test_a_long_replica_metadata_sync_writes_no_line_of_its_own() -> None:
    """WSyncMgr writes a replica's "other items" only: no `sync: Replica WSUS synchronizing
    updates` line, however long the replica's metadata sync runs."""
    report, lines = progress(ReplicaProgress)
    report("categories", 3, 3, None)
    for done in range(0, 1001, 50):
        report("updates", done, 1000, 120.0 if done == 500 else None)
    report("other items", 2, 2, None)
    assert lines == [
        "sync: Replica WSUS synchronizing other items",
        "sync: Replica WSUS synchronizing other items, processed 2 out of 2 items (100%)",
    ]


def test_a_replica_writes_nothing_for_a_small_or_empty_metadata_sync() -> None:
    report, lines = progress(ReplicaProgress)
    report("categories", 0, 0, None)
    report("updates", 0, 5, None)
    report("updates", 5, 5, None)
    report("updates", 0, 0, None)
    report.finish()
    assert lines == []


# -- time formats ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0d00h00m00s"),
        (233, "0d00h03m53s"),
        (177.9, "0d00h02m57s"),
        (3600, "0d01h00m00s"),
        (86399, "0d23h59m59s"),
        (90061, "1d01h01m01s"),
        (12 * 86400, "12d00h00m00s"),
    ],
)
def test_format_sync_time(seconds: float, text: str) -> None:
    assert format_sync_time(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "00:00:00"),
        (3, "00:00:03"),
        (1.4, "00:00:01"),
        (1.6, "00:00:02"),
        (59.6, "00:01:00"),
        (3725, "01:02:05"),
        (100 * 3600, "100:00:00"),
        (-5, "00:00:00"),
    ],
)
def test_format_eta(seconds: float, text: str) -> None:
    assert format_eta(seconds) == text
