"""`updatesync.logs.component`: one writer for a component log in either format (CMTrace or
the simple site-server format), format recognition, and reading either back (with its `.lo_`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from updatesync.logs.component import (
    ComponentLog,
    LogFormat,
    detect_format,
    parse_component_log,
    read_component_log,
)

COMP = "SMS_WSUS_SYNC_MANAGER"
T0 = datetime(2014, 1, 16, 18, 53, 52, 608000, tzinfo=UTC)


def fixed() -> datetime:
    return T0


def write(path: Path, fmt: LogFormat) -> ComponentLog:
    log = ComponentLog(path, component=COMP, format=fmt, now=fixed, thread=3404, bias_minutes=0)
    log.info("Starting Sync")
    log.warning("Sync failed. Will retry in 60 minutes")
    log.error("Sync failed: boom. Source: here")
    return log


@pytest.mark.parametrize("fmt", [LogFormat.CMTRACE, LogFormat.SIMPLE])
def test_a_log_written_in_either_format_reads_back(tmp_path: Path, fmt: LogFormat) -> None:
    path = tmp_path / "WSyncMgr.log"
    log = write(path, fmt)
    assert log.format is fmt
    assert log.path == path
    assert log.component == COMP
    assert detect_format(path.read_text(encoding="utf-8")) is fmt
    entries = list(read_component_log(path))
    assert [e.message for e in entries] == [
        "Starting Sync",
        "Sync failed. Will retry in 60 minutes",
        "Sync failed: boom. Source: here",
    ]
    assert {e.component for e in entries} == {COMP}
    assert {e.thread for e in entries} == {3404}
    assert all(e.time is not None and abs((e.time - T0).total_seconds()) < 1 for e in entries)


def test_the_format_is_accepted_by_its_name(tmp_path: Path) -> None:
    log = ComponentLog(tmp_path / "x.log", component=COMP, format="simple")  # type: ignore[arg-type]
    assert log.format is LogFormat.SIMPLE


def test_cmtrace_keeps_severity_the_simple_format_has_none(tmp_path: Path) -> None:
    cm, simple = tmp_path / "cm.log", tmp_path / "simple.log"
    write(cm, LogFormat.CMTRACE)
    write(simple, LogFormat.SIMPLE)
    assert len({e.severity for e in read_component_log(cm)}) == 3
    assert {e.severity for e in read_component_log(simple)} == {None}


def test_an_entry_written_is_the_entry_returned(tmp_path: Path) -> None:
    path = tmp_path / "WSyncMgr.log"
    log = ComponentLog(path, component=COMP, now=fixed, thread=7, bias_minutes=0)
    entry = log.info("Found 1 SUPs", thread=9)
    assert entry.message == "Found 1 SUPs"
    assert entry.thread == 9
    assert list(read_component_log(path)) == [entry]


def test_file_hint_and_context_are_cmtrace_only(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    with pytest.raises(ValueError, match="file_hint and context exist in the CMTrace format only"):
        ComponentLog(path, component=COMP, format=LogFormat.SIMPLE, file_hint="sync.cpp")
    with pytest.raises(ValueError, match="CMTrace format only"):
        ComponentLog(path, component=COMP, format=LogFormat.SIMPLE, context="x")
    log = ComponentLog(path, component=COMP, file_hint="sync.cpp:12", now=fixed)
    entry = log.info("hello")
    assert entry.file == "sync.cpp:12"


def test_detect_format() -> None:
    assert detect_format('<![LOG[Starting Sync]LOG]!><time="..."') is LogFormat.CMTRACE
    assert detect_format("Starting Sync  $$<SMS_WSUS_SYNC_MANAGER><...>") is LogFormat.SIMPLE
    assert detect_format("") is LogFormat.SIMPLE


@pytest.mark.parametrize("fmt", [LogFormat.CMTRACE, LogFormat.SIMPLE])
def test_parse_accepts_text_or_lines(tmp_path: Path, fmt: LogFormat) -> None:
    path = tmp_path / "WSyncMgr.log"
    write(path, fmt)
    text = path.read_text(encoding="utf-8")
    from_text = [e.message for e in parse_component_log(text)]
    from_lines = [e.message for e in parse_component_log(text.splitlines(keepends=True))]
    assert from_text == from_lines
    assert len(from_text) == 3


def test_garbage_is_handed_to_the_handler() -> None:
    seen: list[tuple[int, str]] = []
    text = (
        "not a log line at all\n"
        "Starting Sync  $$<SMS_WSUS_SYNC_MANAGER><01-16-2014 10:53:52.608+480>"
        "<thread=3404 (0xD4C)>\n"
    )
    entries = list(parse_component_log(text, on_garbage=lambda n, line: seen.append((n, line))))
    assert [e.message for e in entries] == ["Starting Sync"]
    assert seen and seen[0][1].startswith("not a log line")


def test_the_rolled_over_half_is_read_first(tmp_path: Path) -> None:
    path = tmp_path / "WSyncMgr.log"
    log = ComponentLog(path, component=COMP, format=LogFormat.SIMPLE, now=fixed, max_bytes=400)
    for n in range(12):
        log.info(f"line {n}")
    assert path.with_suffix(".lo_").exists()
    messages = [e.message for e in read_component_log(path)]
    numbers = [int(m.split()[1]) for m in messages]
    assert numbers == sorted(numbers)
    assert numbers[-1] == 11
