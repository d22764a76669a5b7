"""CMTrace-format component logs: the exact line shape, writer→parser round trips (multi-line
and unicode messages, every severity, several biases), the bias meaning (UTC = local + bias),
rollover keeping entries whole, tolerance of garbage, and the copied (rendered) form."""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from updatesync.logs.cmtrace import (
    CMTraceLog,
    LogEntry,
    Severity,
    log_helper,
    machine_bias_minutes,
    parse_cmtrace,
    parse_rendered,
    read_cmtrace,
)
from updatesync.logs.component import (
    ComponentLog,
    LogFormat,
    detect_format,
    parse_component_log,
    read_component_log,
)
from updatesync.logs.rollover import rolled_path

COMPONENT = "SMS_WSUS_SYNC_MANAGER"
# 18:53:52.608 Pacific Standard Time on 16 January 2014 (bias +480) is 02:53:52.608 UTC on the 17th.
SPEC_UTC = datetime(2014, 1, 17, 2, 53, 52, 608_000, tzinfo=UTC)
SPEC_LINE = (
    b'<![LOG[Wakeup by inbox drop]LOG]!><time="18:53:52.608+480" date="01-16-2014" '
    b'component="SMS_WSUS_SYNC_MANAGER" context="" type="1" thread="3404" '
    b'file="wsyncmgr.cpp:123">\r\n'
)
START = datetime(2014, 1, 16, 18, 53, 54, 231_456, tzinfo=UTC)
MESSAGES = [
    "Wakeup by inbox drop",
    "Sync failed: Request for principal permission failed.\nSource: AdminProxy\n   at Foo()",
    "Ünïcödé — 同期が完了しました ✓ 🚀",
    "",
    "ends with a line break\n",
    "\nstarts with one",
    'quotes " and <angle> brackets & ]LOG] and <![LOG[ inside',
    "tab\there and trailing spaces   ",
]


def _clock(step: timedelta = timedelta(milliseconds=937)) -> Callable[[], datetime]:
    ticks: Iterator[datetime] = iter(START + n * step for n in range(1_000_000))
    return lambda: next(ticks)


def _collect(text: str) -> tuple[list[LogEntry], list[tuple[int, str]]]:
    """The entries of `text` and the garbage reported while parsing it."""
    garbage: list[tuple[int, str]] = []
    entries = list(parse_cmtrace(text, on_garbage=lambda n, s: garbage.append((n, s))))
    return entries, garbage


def _log(path: Path, bias: int | None = 0, **kwargs: object) -> CMTraceLog:
    options: dict[str, object] = {"thread": 3404, "file_hint": "wsyncmgr.cpp:123", "now": _clock()}
    options.update(kwargs)
    return CMTraceLog(path, component=COMPONENT, bias_minutes=bias, **options)  # type: ignore[arg-type]


def test_written_line_has_the_spec_shape_byte_for_byte(tmp_path: Path) -> None:
    log = _log(tmp_path / "WSyncMgr.log", bias=480, now=lambda: SPEC_UTC)
    entry = log.info("Wakeup by inbox drop")
    assert (tmp_path / "WSyncMgr.log").read_bytes() == SPEC_LINE
    assert entry.time == SPEC_UTC
    assert entry.local_time == datetime(2014, 1, 16, 18, 53, 52, 608_000)


def test_the_spec_line_parses_to_utc_with_local_plus_bias() -> None:
    (entry,) = parse_cmtrace(SPEC_LINE.decode())
    assert entry == LogEntry(
        message="Wakeup by inbox drop",
        component=COMPONENT,
        time=SPEC_UTC,
        severity=Severity.INFO,
        thread=3404,
        file="wsyncmgr.cpp:123",
        context="",
        bias_minutes=480,
    )
    assert entry.line_number == 1


@pytest.mark.parametrize("bias", [480, 420, -120, -60, 0, -345, 720, -840])
def test_round_trip_every_message_and_severity(tmp_path: Path, bias: int) -> None:
    log = _log(tmp_path / "WSyncMgr.log", bias=bias)
    written: list[LogEntry] = []
    for n, message in enumerate(MESSAGES):
        method = (log.info, log.warning, log.error)[n % 3]
        written.append(method(message))
    garbage: list[tuple[int, str]] = []
    read = list(read_cmtrace(log.path, on_garbage=lambda n, s: garbage.append((n, s))))
    assert garbage == []
    assert read == written
    assert [e.message for e in read] == MESSAGES
    assert [e.severity for e in read] == [
        (Severity.INFO, Severity.WARNING, Severity.ERROR)[n % 3] for n in range(len(MESSAGES))
    ]
    assert all(e.bias_minutes == bias for e in read)


@pytest.mark.parametrize(
    ("bias", "time_attr", "date_attr"),
    [
        (420, "11:53:54.231+420", "01-16-2014"),
        (-120, "20:53:54.231-120", "01-16-2014"),
        (0, "18:53:54.231+000", "01-16-2014"),
        (480, "10:53:54.231+480", "01-16-2014"),
        (-600, "04:53:54.231-600", "01-17-2014"),
    ],
)
def test_local_time_is_utc_minus_bias_and_reads_back_as_the_same_instant(
    tmp_path: Path, bias: int, time_attr: str, date_attr: str
) -> None:
    log = _log(tmp_path / "a.log", bias=bias)
    entry = log.info("x")
    text = log.path.read_text(encoding="utf-8")
    assert f'time="{time_attr}" date="{date_attr}"' in text
    (read,) = read_cmtrace(log.path)
    assert read.time == entry.time == START.replace(microsecond=231_000)


def test_date_rolls_back_across_midnight_and_year_end(tmp_path: Path) -> None:
    moment = datetime(2014, 1, 1, 3, 0, 0, 5_000, tzinfo=UTC)
    log = _log(tmp_path / "a.log", bias=480, now=lambda: moment)
    log.info("new year in UTC, not yet in Redmond")
    assert 'time="19:00:00.005+480" date="12-31-2013"' in log.path.read_text(encoding="utf-8")
    assert next(read_cmtrace(log.path)).time == moment


def test_machine_bias_is_used_when_none_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is POSIX only")
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        winter = datetime(2014, 1, 17, 2, 53, 52, 608_000, tzinfo=UTC)
        summer = datetime(2014, 7, 17, 2, 53, 52, 608_000, tzinfo=UTC)
        assert machine_bias_minutes(winter) == 480
        assert machine_bias_minutes(summer) == 420
        moments = iter([winter, summer])
        log = _log(tmp_path / "a.log", bias=None, now=lambda: next(moments))
        log.info("winter")
        log.info("summer")
        text = log.path.read_text(encoding="utf-8")
        assert 'time="18:53:52.608+480" date="01-16-2014"' in text
        assert 'time="19:53:52.608+420" date="07-16-2014"' in text
        assert [e.time for e in read_cmtrace(log.path)] == [winter, summer]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_time_is_truncated_to_the_millisecond_and_naive_is_utc(tmp_path: Path) -> None:
    naive = datetime(2014, 1, 16, 18, 53, 54, 999_999)
    entry = _log(tmp_path / "a.log", now=lambda: naive).info("x")
    assert entry.time == datetime(2014, 1, 16, 18, 53, 54, 999_000, tzinfo=UTC)


def test_thread_per_call_callable_and_default(tmp_path: Path) -> None:
    log = _log(tmp_path / "a.log", thread=lambda: 77)
    assert log.info("a").thread == 77
    assert log.info("b", thread=5).thread == 5
    default = CMTraceLog(tmp_path / "b.log", component="C", bias_minutes=0)
    assert isinstance(default.info("c").thread, int)
    assert [e.thread for e in read_cmtrace(log.path)] == [77, 5]


def test_file_hint_defaults_to_the_callers_file_and_line(tmp_path: Path) -> None:
    log = CMTraceLog(tmp_path / "a.log", component="C", bias_minutes=0)
    entry = log.info("where am I")
    assert entry.file is not None
    name, _, line = entry.file.rpartition(":")
    assert name == Path(__file__).name and line.isdigit()
    via_facade = ComponentLog(tmp_path / "a.log", component="C", bias_minutes=0).info("again")
    assert via_facade.file is not None and via_facade.file.startswith(Path(__file__).name + ":")
    assert _log(tmp_path / "b.log", file_hint="").info("x").file == ""


@log_helper
def _say_twice(log: CMTraceLog, text: str) -> list[LogEntry]:
    return [log.info(text), _say_once(log, text)]


@log_helper
def _say_once(log: CMTraceLog, text: str) -> LogEntry:
    return log.info(text)


def test_a_helper_s_lines_name_the_line_that_called_it(tmp_path: Path) -> None:
    """A helper marked with `log_helper` (a status message writer, say) is skipped, nested
    or not: `file=` names the caller's line, not the helper's."""
    log = CMTraceLog(tmp_path / "a.log", component="C", bias_minutes=0)
    line = sys._getframe().f_lineno + 1
    entries = _say_twice(log, "said")
    assert [e.file for e in entries] == [f"{Path(__file__).name}:{line}"] * 2
    assert [e.file for e in read_cmtrace(tmp_path / "a.log")] == [
        f"{Path(__file__).name}:{line}"
    ] * 2


def test_text_that_looks_like_structure_is_defused(tmp_path: Path) -> None:
    log = _log(tmp_path / "a.log")
    tricky = 'first\n<![LOG[fake]LOG]!><time="1:2:3.000+0" date="1-1-2000" type="3">\nlast'
    entry = log.error(tricky)
    assert entry.message != tricky  # what was written, as a reader reads it back
    assert entry.message == (
        'first\n <![LOG[fake]LOG]!> <time="1:2:3.000+0" date="1-1-2000" type="3">\nlast'
    )
    assert list(read_cmtrace(log.path)) == [entry]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"component": 'bad"name'}, "component"),
        ({"component": ""}, "component"),
        ({"component": "C", "bias_minutes": 1440}, "bias_minutes"),
        ({"component": "C", "file_hint": "a\nb"}, "file_hint"),
        ({"component": "C", "context": 'x"'}, "context"),
    ],
)
def test_bad_settings_say_what_and_where(
    tmp_path: Path, kwargs: dict[str, object], words: str
) -> None:
    with pytest.raises(ValueError, match=words) as info:
        CMTraceLog(tmp_path / "a.log", **kwargs)  # type: ignore[arg-type]
    assert "a.log" in str(info.value)


def test_rollover_at_the_limit_keeps_entries_whole(tmp_path: Path) -> None:
    path = tmp_path / "WSyncMgr.log"
    log = _log(path, bias=-120, max_bytes=1_200)
    written = [
        log.info(f"entry {n:03d}\nsecond line of {n:03d}\n{'x' * (n % 40)}") for n in range(60)
    ]
    assert rolled_path(path).exists()
    for part in (rolled_path(path), path):
        assert part.stat().st_size <= 1_200
        entries, garbage = _collect(part.read_text(encoding="utf-8"))
        assert garbage == [] and entries
    read = list(read_cmtrace(path))
    assert read == written[len(written) - len(read) :]
    assert read[-1] == written[-1]


def test_garbage_is_reported_and_entries_around_it_survive() -> None:
    good = SPEC_LINE.decode().rstrip("\r\n")
    text = "\r\n".join(
        [
            "\ufeffleft over from a truncated copy",
            good,
            "   ",
            "a stray line",
            '<![LOG[cut short by a crash]LOG]!><time="18:5',
            good.replace("Wakeup by inbox drop", "after the crash"),
            good + " trailing junk",
            "<![LOG[never closed",
        ]
    )
    garbage: list[tuple[int, str]] = []
    entries = list(parse_cmtrace(text, on_garbage=lambda n, s: garbage.append((n, s))))
    assert [e.message for e in entries] == [
        "Wakeup by inbox drop",
        "after the crash",
        "Wakeup by inbox drop",
    ]
    assert [e.line_number for e in entries] == [2, 6, 7]
    assert garbage == [
        (1, "left over from a truncated copy"),
        (4, "a stray line"),
        (5, '<![LOG[cut short by a crash]LOG]!><time="18:5'),
        (7, "trailing junk"),
        (8, "<![LOG[never closed"),
    ]
    assert list(parse_cmtrace(text)) == entries  # without a handler: skipped silently


def test_lines_and_text_parse_alike() -> None:
    text = (
        SPEC_LINE.decode()
        + '<![LOG[a\r\nb]LOG]!><time="1:02:03.4-60" date="2-3-2020" type="2">\r\n'
    )
    from_text = list(parse_cmtrace(text))
    from_lines = list(parse_cmtrace(text.splitlines(keepends=True)))
    assert from_text == from_lines
    assert from_text[1].message == "a\nb"
    assert from_text[1].time == datetime(2020, 2, 3, 0, 2, 3, 400_000, tzinfo=UTC)
    assert from_text[1].severity is Severity.WARNING
    assert from_text[1].thread is None and from_text[1].file is None


@pytest.mark.parametrize(
    ("attrs", "expected_time", "bias"),
    [
        ('time="11:16:37.3093207" date="3-12-2026"', None, None),  # Intune style: no bias
        ('time="25:00:00.000+000" date="01-16-2014"', None, 0),
        ('time="10:00:00.000+480" date="02-30-2014"', None, 480),
        ('time="10:00:00.000+9999" date="01-16-2014"', None, 9999),
        ('date="01-16-2014" time="10:00:00.000-60"', datetime(2014, 1, 16, 9, tzinfo=UTC), -60),
        ('component="X"', None, None),
    ],
)
def test_unreadable_times_leave_the_entry_with_no_time(
    attrs: str, expected_time: datetime | None, bias: int | None
) -> None:
    garbage: list[tuple[int, str]] = []
    (entry,) = parse_cmtrace(
        f"<![LOG[m]LOG]!><{attrs}>", on_garbage=lambda n, s: garbage.append((n, s))
    )
    assert garbage == []
    assert (entry.message, entry.time, entry.bias_minutes) == ("m", expected_time, bias)


def test_unknown_type_has_no_severity() -> None:
    (entry,) = parse_cmtrace('<![LOG[m]LOG]!><time="1:02:03.000+000" date="1-1-2020" type="0">')
    assert entry.severity is None


def test_random_damage_never_crashes(tmp_path: Path) -> None:
    log = _log(tmp_path / "a.log", bias=480)
    for message in MESSAGES:
        log.warning(message)
    text = log.path.read_text(encoding="utf-8")
    rng = random.Random(20140116)
    alphabet = '<>![]"=LOG\r\n ab0+-:.'
    for _ in range(300):
        chars = list(text)
        for _ in range(rng.randint(1, 12)):
            at = rng.randrange(len(chars))
            if rng.random() < 0.5:
                del chars[at]
            else:
                chars.insert(at, rng.choice(alphabet))
        entries, garbage = _collect("".join(chars))
        assert all(isinstance(e, LogEntry) for e in entries)
        assert all(n >= 1 for n, _ in garbage)


def test_component_facade_and_format_detection(tmp_path: Path) -> None:
    cm = ComponentLog(tmp_path / "cm.log", component=COMPONENT, bias_minutes=420, now=_clock())
    simple = ComponentLog(
        tmp_path / "simple.log",
        component=COMPONENT,
        format=LogFormat.SIMPLE,
        bias_minutes=420,
        now=_clock(),
    )
    written_cm = [cm.info("a"), cm.warning("b\nc"), cm.error("d")]
    written_simple = [simple.info("a"), simple.warning("b\nc"), simple.error("d")]
    assert detect_format(cm.path.read_text(encoding="utf-8")) is LogFormat.CMTRACE
    assert detect_format(simple.path.read_text(encoding="utf-8")) is LogFormat.SIMPLE
    assert list(read_component_log(cm.path)) == written_cm
    assert list(read_component_log(simple.path)) == written_simple
    lines = cm.path.read_text(encoding="utf-8").splitlines()
    assert list(parse_component_log(lines)) == written_cm
    with pytest.raises(ValueError, match="CMTrace format only"):
        ComponentLog(tmp_path / "x.log", component="C", format=LogFormat.SIMPLE, file_hint="a:1")


def test_rendered_form() -> None:
    text = (
        "\ufeffWakeup by inbox drop\tSMS_WSUS_SYNC_MANAGER\r\n"
        "\r\n"
        "a\tmessage with a tab\tSMS Provider\r\n"
        "first line of two\r\n"
        "second line\tSMS_WSUS_SYNC_MANAGER\r\n"
        "dangling line without component\r\n"
    )
    garbage: list[tuple[int, str]] = []
    pairs = parse_rendered(text, on_garbage=lambda n, s: garbage.append((n, s)))
    assert pairs == [
        ("Wakeup by inbox drop", "SMS_WSUS_SYNC_MANAGER"),
        ("a\tmessage with a tab", "SMS Provider"),
        ("first line of two\nsecond line", "SMS_WSUS_SYNC_MANAGER"),
    ]
    assert garbage == [(6, "dangling line without component")]
    assert parse_rendered(text.splitlines()) == pairs
    assert parse_rendered("") == []


def test_a_batch_writes_the_lines_that_one_entry_each_would(tmp_path: Path) -> None:
    at = lambda: SPEC_UTC  # noqa: E731 - one instant for both logs
    one, batch = (
        _log(tmp_path / "one.log", bias=480, now=at),
        _log(tmp_path / "batch.log", bias=480, now=at),
    )
    messages = [f"Synchronizing update {n:08d}-0000 - Title {n}" for n in range(50)] + MESSAGES
    for message in messages:
        one.info(message)
    assert batch.info_many(iter(messages)) == len(messages)
    assert (tmp_path / "batch.log").read_bytes() == (tmp_path / "one.log").read_bytes()
    assert [e.message for e in read_cmtrace(tmp_path / "batch.log")] == [
        e.message for e in read_cmtrace(tmp_path / "one.log")
    ]
    assert batch.write_many(Severity.WARNING, []) == 0


def test_a_batch_keeps_entries_whole_across_rollovers(tmp_path: Path) -> None:
    path = tmp_path / "WSyncMgr.log"
    log = _log(path, bias=-120, max_bytes=1_200)
    messages = [f"entry {n:03d}\nsecond line\n{'x' * (n % 40)}" for n in range(60)]
    for start in range(0, 60, 25):
        log.write_many(Severity.ERROR, messages[start : start + 25])
    for part in (rolled_path(path), path):
        assert part.stat().st_size <= 1_200
        entries, garbage = _collect(part.read_text(encoding="utf-8"))
        assert garbage == [] and entries
    read = [e.message for e in read_cmtrace(path)]
    assert read == messages[len(messages) - len(read) :]
    assert {e.severity for e in read_cmtrace(path)} == {Severity.ERROR}
