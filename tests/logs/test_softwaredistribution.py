"""SoftwareDistribution.log: what the writer writes parses back to the same entries; sync event
lines; exception stacks after their entry; the parser's tolerance of garbage."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from updatesync.logs.rollover import read_rolled_lines, rolled_path
from updatesync.logs.softwaredistribution import (
    SdEntry,
    SdEvent,
    SdLevel,
    SoftwareDistributionLog,
    format_timestamp,
    parse_event,
    parse_softwaredistribution,
    read_softwaredistribution,
)

START = datetime(2014, 1, 16, 18, 53, 54, 231_456, tzinfo=UTC)


def _clock(step: timedelta = timedelta(milliseconds=937)) -> Callable[[], datetime]:
    ticks = iter(START + n * step for n in range(1_000_000))
    return lambda: next(ticks)


@pytest.fixture
def sdlog(tmp_path: Path) -> SoftwareDistributionLog:
    return SoftwareDistributionLog(tmp_path / "SoftwareDistribution.log", thread=7, now=_clock())


def _read(log: SoftwareDistributionLog) -> list[SdEntry]:
    return list(read_softwaredistribution(log.path))


def test_timestamp_format_is_milliseconds_and_utc() -> None:
    assert format_timestamp(START) == "2014-01-16 18:53:54.231 UTC"
    pacific = START.astimezone(timezone(timedelta(hours=-8)))
    assert format_timestamp(pacific) == "2014-01-16 18:53:54.231 UTC"


def test_written_entries_parse_back_equal(sdlog: SoftwareDistributionLog) -> None:
    written = [
        sdlog.info("Foo.Bar", "plain info"),
        sdlog.change("AdminDataAccess.SetConfiguration", "config changed", process="w3wp"),
        sdlog.warning("DataAccess.GetNextQueuedSubscription", "Index #0\nMessage: deadlocked"),
        sdlog.error("SoapUtilities.LogException", "USS ThrowException: tab\tinside"),
        sdlog.info("Foo.Bar", "ünïcödé ✓"),
    ]
    read = _read(sdlog)
    assert read == written
    assert read[2].continuation == ("Message: deadlocked",)
    assert read[3].message == "USS ThrowException: tab\tinside"
    assert [e.level for e in read] == ["Info", "Change", "Warning", "Error", "Info"]
    assert all(e.timestamp.tzinfo is UTC and e.timestamp.microsecond % 1000 == 0 for e in read)


def test_line_bytes_are_the_real_shape(sdlog: SoftwareDistributionLog) -> None:
    sdlog.change("AdminDataAccess.StartSubscriptionManually", "Synchronization manually started")
    assert Path(sdlog.path).read_bytes() == (
        b"2014-01-16 18:53:54.231 UTC\tChange\tw3wp.7\t"
        b"AdminDataAccess.StartSubscriptionManually\tSynchronization manually started\r\n"
    )


def test_manual_sync_started_writes_change_then_event_382(tmp_path: Path) -> None:
    log = SoftwareDistributionLog(tmp_path / "sd.log", thread=3, now=_clock())
    entries = log.manual_sync_started()
    lines = list(read_rolled_lines(tmp_path / "sd.log"))
    assert lines == [
        "2014-01-16 18:53:54.231 UTC\tChange\tw3wp.3\tAdminDataAccess.StartSubscriptionManually"
        "\tSynchronization manually started",
        "2014-01-16 18:53:55.168 UTC\tInfo\tWsusService.3\tEventLogEventReporter.ReportEvent"
        "\tEventId=382,Type=Information,Category=Synchronization,"
        "Message=A manual synchronization was started.",
    ]
    assert [e.event_id for e in entries] == [None, 382]


@pytest.mark.parametrize(
    ("helper", "event_id", "text"),
    [
        ("scheduled_sync_started", 381, "A scheduled synchronization was started."),
        ("content_sync_started", 361, "Content synchronization started."),
    ],
)
def test_single_event_helpers(
    sdlog: SoftwareDistributionLog, helper: str, event_id: int, text: str
) -> None:
    (entry,) = getattr(sdlog, helper)()
    assert _read(sdlog) == [entry]
    assert entry.process == "WsusService"
    assert entry.level is SdLevel.INFO
    assert entry.source == "EventLogEventReporter.ReportEvent"
    assert entry.event == SdEvent(event_id, "Information", "Synchronization", text)


def test_sync_succeeded_fires_syncfinish_after_384(sdlog: SoftwareDistributionLog) -> None:
    entries = sdlog.sync_succeeded()
    assert _read(sdlog) == entries
    assert entries[0].event_id == 384
    assert (entries[1].source, entries[1].message) == (
        "CatalogSyncAgent.SetSubscriptionStateWithRetry",
        "Firing event SyncFinish...",
    )


def _fail_inner() -> None:
    raise ConnectionError("The remote name could not be resolved: 'upstream.contoso.com'")


def _fail_outer() -> None:
    _fail_inner()


def test_error_with_exception_puts_stack_lines_after_its_entry(
    sdlog: SoftwareDistributionLog,
) -> None:
    sdlog.info("Before.Entry", "before")
    try:
        _fail_outer()
    except ConnectionError as exc:
        written = sdlog.error("CatalogSyncAgentCore.ExecuteSyncProtocol", "sync broke", exc=exc)
    sdlog.info("After.Entry", "after")
    before, error, after = _read(sdlog)
    assert error == written
    assert (before.message, after.message) == ("before", "after")
    assert error.continuation, "the stack lines belong to the error entry"
    assert all(line.startswith("   at ") for line in error.continuation)
    # .NET order: the frame that raised first, then its callers; `module.function()`, no
    # file path of this machine.
    assert error.continuation[0] == "   at test_softwaredistribution._fail_inner()"
    assert error.continuation[1] == "   at test_softwaredistribution._fail_outer()"
    assert not any("/" in line or ".py" in line for line in error.continuation)


def test_chained_exception_is_written_like_an_inner_exception(
    sdlog: SoftwareDistributionLog,
) -> None:
    try:
        try:
            _fail_inner()
        except ConnectionError as inner:
            raise RuntimeError("sync failed") from inner
    except RuntimeError as exc:
        entry = sdlog.error("X.Y", "outer", exc=exc)
    lines = entry.continuation
    assert lines[0].startswith(" ---> ConnectionError: The remote name could not be resolved")
    assert "   --- End of inner exception stack trace ---" in lines
    assert _read(sdlog) == [entry]


def test_sync_failed_writes_the_error_then_event_386(
    sdlog: SoftwareDistributionLog,
) -> None:
    """The error entry is the failure's .NET form (`Type: message`), with no stack after it."""
    entries = sdlog.sync_failed(
        "The remote name could not be resolved: 'upstream.contoso.com'",
        error="System.Net.WebException: The remote name could not be resolved: "
        "'upstream.contoso.com'",
    )
    error, event = entries
    assert _read(sdlog) == entries
    assert error.level is SdLevel.ERROR and error.process == "WsusService"
    assert error.message == (
        "System.Net.WebException: The remote name could not be resolved: 'upstream.contoso.com'"
    )
    assert error.continuation == ()
    assert event.event == SdEvent(
        386,
        "Error",
        "Synchronization",
        "Synchronization failed. Reason: The remote name could not be resolved: "
        "'upstream.contoso.com'.",
    )


def test_sync_failed_without_exception_keeps_the_reason_on_one_line(
    sdlog: SoftwareDistributionLog,
) -> None:
    (event,) = sdlog.sync_failed("first line\nsecond line.")
    assert event.event is not None
    assert event.event.message == "Synchronization failed. Reason: first line second line."


def test_default_threads_get_small_distinct_numbers(tmp_path: Path) -> None:
    log = SoftwareDistributionLog(tmp_path / "sd.log")
    main_entry = log.info("A.B", "main")
    other: list[SdEntry] = []
    worker = threading.Thread(target=lambda: other.append(log.info("A.B", "worker")))
    worker.start()
    worker.join()
    assert main_entry.thread is not None and other[0].thread is not None
    assert main_entry.thread != other[0].thread
    assert log.info("A.B", "again").thread == main_entry.thread


def test_concurrent_writers_with_rollover_keep_every_entry_whole(tmp_path: Path) -> None:
    log = SoftwareDistributionLog(tmp_path / "sd.log", max_bytes=8192)

    def work(n: int) -> None:
        for i in range(150):
            try:
                raise ValueError(f"writer {n} failure {i}")
            except ValueError as exc:
                log.error("Worker.Run", f"writer {n} entry {i}", exc=exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert rolled_path(tmp_path / "sd.log").exists()
    entries = _read(log)
    assert entries
    for entry in entries:
        assert entry.level is SdLevel.ERROR and entry.message.startswith("writer ")
        assert len(entry.continuation) == 1 and entry.continuation[0].startswith("   at ")
        assert "work()" in entry.continuation[0]


def test_columns_with_tabs_or_breaks_are_refused(sdlog: SoftwareDistributionLog) -> None:
    with pytest.raises(ValueError, match="source"):
        sdlog.info("Bad\tSource", "x")
    with pytest.raises(ValueError, match="process"):
        sdlog.info("Good.Source", "x", process="w3\nwp")


def test_a_continuation_that_looks_like_a_header_stays_in_its_entry(
    sdlog: SoftwareDistributionLog,
) -> None:
    forged = "2014-01-16 18:00:00.000 UTC\tError\tw3wp.1\tForged.Source\tnot an entry"
    entry = sdlog.warning("Real.Source", f"quoted:\n{forged}")
    assert _read(sdlog) == [entry]


def test_parser_tolerates_garbage() -> None:
    lines = [
        "\ufeffgarbage before the first entry",
        "2014-01-16 18:53:54.231 UTC\tInfo\tWsusService.15\tA.B\tfirst",
        "",
        "random junk",
        "2014-02-30 18:53:54.231 UTC\tInfo\tWsusService.15\tA.B\timpossible date",
        "2014-01-16 18:53:55.000 UTC\tInfo\tweird-origin\tC.D\tsecond\r\n",
        "2014-01-16 18:53:56.000 UTC\tVerbose\tWsusService.9\tE.F\tunknown level",
    ]
    garbage: list[tuple[int, str]] = []
    entries = list(
        parse_softwaredistribution(lines, on_garbage=lambda n, line: garbage.append((n, line)))
    )
    assert garbage == [(1, "garbage before the first entry")]
    assert [e.message for e in entries] == ["first", "second", "unknown level"]
    assert entries[0].continuation == ("", "random junk", lines[4])
    assert (entries[1].process, entries[1].thread, entries[1].origin) == (
        "weird-origin",
        None,
        "weird-origin",
    )
    assert entries[2].level == "Verbose"
    assert [e.line_number for e in entries] == [2, 6, 7]


def _noise(seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    alphabet = "\t .:-0123456789UTCInfoError\x00\ufffdé"
    for _ in range(400):
        yield "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80)))


@pytest.mark.parametrize("seed", range(5))
def test_parser_never_crashes_on_noise(seed: int) -> None:
    list(parse_softwaredistribution(_noise(seed)))


def test_parse_event_needs_the_whole_pattern() -> None:
    assert parse_event("EventId=384,Type=Information,Category=Synchronization,Message=x") == (
        SdEvent(384, "Information", "Synchronization", "x")
    )
    assert parse_event("Firing event SyncFinish...") is None
    assert parse_event("EventId=abc,Type=Information,Category=X,Message=y") is None
