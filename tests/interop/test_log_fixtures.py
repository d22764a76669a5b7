"""The real SoftwareDistribution.log excerpt (Microsoft's sync-tracking article, 2014) parses, and
the lines our writer writes for the same events have the real lines' shape: same columns, same
level, process, source and message; only the time and the thread number differ."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from updatesync.logs.rollover import read_rolled_lines
from updatesync.logs.softwaredistribution import (
    SdEvent,
    SdLevel,
    SoftwareDistributionLog,
    parse_softwaredistribution,
)

EXCERPT = "logs/msdocs-2014-hierarchy/CS1SITE-SoftwareDistribution.log"
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} UTC\t")
_THREAD = re.compile(r"^([^\t]*\t[^\t]*\t[^\t.]+)\.\d+\t")


@pytest.fixture
def real_lines(fixtures_dir: Path) -> list[str]:
    return list(read_rolled_lines(fixtures_dir / EXCERPT))


def _shape(line: str) -> str:
    """The line with its time and its thread number masked."""
    masked = _TIME.sub("<time>\t", line)
    return _THREAD.sub(r"\1.<thread>\t", masked)


def test_real_excerpt_parses(real_lines: list[str]) -> None:
    garbage: list[tuple[int, str]] = []
    entries = list(
        parse_softwaredistribution(real_lines, on_garbage=lambda n, s: garbage.append((n, s)))
    )
    assert garbage == []
    assert len(entries) == 4
    assert all(not e.continuation for e in entries)
    first, started, done, finish = entries
    assert first.timestamp == datetime(2014, 1, 16, 18, 53, 54, 231_000, tzinfo=UTC)
    assert (first.level, first.process, first.thread) == (SdLevel.CHANGE, "w3wp", 58)
    assert first.source == "AdminDataAccess.StartSubscriptionManually"
    assert first.message == "Synchronization manually started"
    assert first.event is None
    assert started.event == SdEvent(
        382, "Information", "Synchronization", "A manual synchronization was started."
    )
    assert (started.process, started.thread) == ("WsusService", 15)
    assert done.event_id == 384
    assert (finish.source, finish.message, finish.thread) == (
        "CatalogSyncAgent.SetSubscriptionStateWithRetry",
        "Firing event SyncFinish...",
        31,
    )
    assert [e.header_line() for e in entries] == real_lines


def _written(tmp_path: Path, write: Callable[[SoftwareDistributionLog], object]) -> list[str]:
    path = tmp_path / "SoftwareDistribution.log"
    write(SoftwareDistributionLog(path, thread=4242))
    return list(read_rolled_lines(path))


def test_manual_start_lines_have_the_real_shape(tmp_path: Path, real_lines: list[str]) -> None:
    ours = _written(tmp_path, lambda log: log.manual_sync_started())
    assert [_shape(line) for line in ours] == [_shape(line) for line in real_lines[:2]]


def test_success_lines_have_the_real_shape(tmp_path: Path, real_lines: list[str]) -> None:
    ours = _written(tmp_path, lambda log: log.sync_succeeded())
    assert [_shape(line) for line in ours] == [_shape(line) for line in real_lines[2:]]


def test_writer_reproduces_the_excerpt_byte_for_byte(
    tmp_path: Path, real_lines: list[str], fixtures_dir: Path
) -> None:
    """Given the excerpt's times and thread numbers, the writer writes the very same lines."""
    real = list(parse_softwaredistribution(real_lines))
    times: Iterator[datetime] = iter(e.timestamp + timedelta(microseconds=789) for e in real)
    threads = iter(e.thread for e in real if e.thread is not None)
    path = tmp_path / "SoftwareDistribution.log"
    log = SoftwareDistributionLog(path, thread=lambda: next(threads), now=lambda: next(times))
    log.manual_sync_started()
    log.sync_succeeded()
    # Line endings aside (the excerpt was saved with LF, we write CRLF as Windows does):
    ours = path.read_bytes().replace(b"\r\n", b"\n")
    assert ours == (fixtures_dir / EXCERPT).read_bytes()
