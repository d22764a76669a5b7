"""Reading a log a page at a time from a cursor: whole entries only, the end of the log
without a cursor, the `.lo_` rollover followed, lines without a type typed by their words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.logs.rollover import LogReadError
from updatesync.logs.simple import SimpleLog
from updatesync.logs.tail import FROM_START, Cursor, LogKind, find_time, pages, read_page


def cmtrace(path: Path, max_bytes: int = 5 * 1024 * 1024) -> CMTraceLog:
    return CMTraceLog(path, component="SMS_WSUS_SYNC_MANAGER", bias_minutes=0, max_bytes=max_bytes)


def test_a_half_written_entry_waits_for_the_next_read(tmp_path: Path) -> None:
    path = tmp_path / "WSyncMgr.log"
    cmtrace(path).info("Starting Sync")
    whole = path.read_bytes()
    with path.open("ab") as file:
        file.write(b"<![LOG[Sync half writ")
    page = read_page(path, LogKind.CMTRACE, FROM_START, 4096)
    assert [line.text for line in page.lines] == ["Starting Sync"]
    assert page.next.offset == len(whole) and page.more is False
    with path.open("ab") as file:
        file.write(whole[whole.index(b"]LOG]!>") :].replace(b"Starting", b""))
    rest = read_page(path, LogKind.CMTRACE, page.next, 4096)
    assert [line.text for line in rest.lines] == ["Sync half writ"]


def test_without_a_cursor_the_page_is_the_end_of_the_log(tmp_path: Path) -> None:
    path = tmp_path / "WSyncMgr.log"
    log = cmtrace(path)
    for number in range(50):
        log.info(f"line {number}")
    page = read_page(path, LogKind.CMTRACE, None, 1000)
    texts = [line.text for line in page.lines]
    assert texts[-1] == "line 49" and "line 0" not in texts
    assert all(text.startswith("line ") for text in texts)  # starts on an entry


def test_the_end_of_the_log_reaches_into_the_lo_(tmp_path: Path) -> None:
    path = tmp_path / "WSyncMgr.log"
    log = cmtrace(path, max_bytes=1000)
    for number in range(8):
        log.info(f"line {number}")
    assert (tmp_path / "WSyncMgr.lo_").exists()
    page = read_page(path, LogKind.CMTRACE, None, 100_000)
    assert [line.text for line in page.lines] == [f"line {n}" for n in range(8)]


def test_an_entry_larger_than_the_limit_is_passed_as_text(tmp_path: Path) -> None:
    path = tmp_path / "WSyncMgr.log"
    cmtrace(path).info("x" * 1000)
    cmtrace(path).info("after")
    page = read_page(path, LogKind.CMTRACE, FROM_START, 300)
    assert page.lines[0].component == "" and page.more
    assert page.lines[0].text.startswith("<![LOG[xxx")
    texts = [line.text for page in pages(path, LogKind.CMTRACE, 300) for line in page.lines]
    assert texts[-1] == "after"


def test_lines_without_a_type_are_typed_by_their_words(tmp_path: Path) -> None:
    path = tmp_path / "smsdbmon.log"
    log = SimpleLog(path, component="SMS_DATABASE_NOTIFICATION_MONITOR", bias_minutes=0)
    log.info("RCV: UPDATE on Update_SyncStatus")
    log.info("Failed with error 0x80004005")
    log.info("Warning: the inbox is slow")
    page = read_page(path, LogKind.SIMPLE, FROM_START, 4096)
    assert [line.type for line in page.lines] == ["info", "error", "warning"]
    assert page.lines[0].component == "SMS_DATABASE_NOTIFICATION_MONITOR"


def test_text_between_entries_is_shown_in_its_place(tmp_path: Path) -> None:
    path = tmp_path / "WSyncMgr.log"
    log = cmtrace(path)
    log.info("one")
    with path.open("ab") as file:
        file.write(b"a stray line from somewhere\r\n")
    log.error("two")
    page = read_page(path, LogKind.CMTRACE, FROM_START, 4096)
    assert [(line.text, line.type) for line in page.lines] == [
        ("one", "info"),
        ("a stray line from somewhere", "info"),
        ("two", "error"),
    ]


def test_find_time_and_a_utf16_log(tmp_path: Path) -> None:
    path = tmp_path / "WSyncMgr.log"
    start = datetime(2014, 1, 16, 18, 0, tzinfo=UTC)
    times = iter(start + timedelta(minutes=n) for n in range(30))
    log = CMTraceLog(
        path, component="SMS_WSUS_SYNC_MANAGER", bias_minutes=0, now=lambda: next(times)
    )
    for number in range(30):
        log.info(f"line {number}")
    found = find_time(path, LogKind.CMTRACE, start + timedelta(minutes=25), 1000)
    assert found is not None and "line 25" in [line.text for line in found.lines]
    assert found.start.offset > 0
    assert find_time(path, LogKind.CMTRACE, start + timedelta(days=1), 1000) is None
    wide = tmp_path / "wide.log"
    wide.write_bytes("\ufeffhello\r\n".encode("utf-16-le"))
    with pytest.raises(LogReadError, match=r"wide\.log is in UTF-16"):
        read_page(wide, LogKind.SIMPLE, None, 100)
    assert read_page(tmp_path / "none.log", LogKind.CMTRACE, Cursor("1-2", 5), 10).lines == []
