"""Simple-format (site server) component logs: the exact line shape, `~~` for line breaks,
writer→parser round trips for several biases, the bias meaning shared with the CMTrace format,
rollover keeping lines whole, and tolerance of garbage."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from updatesync.logs.cmtrace import CMTraceLog, LogEntry, read_cmtrace
from updatesync.logs.rollover import rolled_path
from updatesync.logs.simple import (
    SimpleLog,
    decode_message,
    encode_message,
    parse_simple,
    read_simple,
)

COMPONENT = "SMS_WSUS_SYNC_MANAGER"
SPEC_UTC = datetime(2014, 1, 17, 2, 53, 52, 608_000, tzinfo=UTC)
SPEC_LINE = (
    b"Wakeup by inbox drop  $$<SMS_WSUS_SYNC_MANAGER><01-16-2014 18:53:52.608+480>"
    b"<thread=3404 (0xD4C)>\r\n"
)
START = datetime(2014, 1, 16, 18, 53, 54, 231_456, tzinfo=UTC)
MESSAGES = [
    "Wakeup by inbox drop",
    "Sync failed: The operation has timed out.\nSource: GetWebResponse\r\nsecond break",
    "Ünïcödé — 同期が完了しました ✓ 🚀",
    "",
    "ends with a line break\n",
    "holds $$<FAKE><01-01-2000 00:00:00.000+000><thread=1 (0x1)> inside",
    "trailing spaces   ",
    "a single ~ stays",
]


def _clock(step: timedelta = timedelta(milliseconds=937)) -> Callable[[], datetime]:
    ticks: Iterator[datetime] = iter(START + n * step for n in range(1_000_000))
    return lambda: next(ticks)


def _millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _collect(text: str) -> tuple[list[LogEntry], list[tuple[int, str]]]:
    """The entries of `text` and the garbage reported while parsing it."""
    garbage: list[tuple[int, str]] = []
    entries = list(parse_simple(text, on_garbage=lambda n, s: garbage.append((n, s))))
    return entries, garbage


def _log(path: Path, bias: int | None = 0, **kwargs: object) -> SimpleLog:
    options: dict[str, object] = {"thread": 3404, "now": _clock()}
    options.update(kwargs)
    return SimpleLog(path, component=COMPONENT, bias_minutes=bias, **options)  # type: ignore[arg-type]


def test_written_line_has_the_spec_shape_byte_for_byte(tmp_path: Path) -> None:
    log = _log(tmp_path / "WSyncMgr.log", bias=480, now=lambda: SPEC_UTC)
    entry = log.info("Wakeup by inbox drop")
    assert (tmp_path / "WSyncMgr.log").read_bytes() == SPEC_LINE
    assert entry == LogEntry(
        message="Wakeup by inbox drop",
        component=COMPONENT,
        time=SPEC_UTC,
        thread=3404,
        bias_minutes=480,
    )


def test_the_spec_line_parses_with_utc_equal_to_local_plus_bias() -> None:
    (entry,) = parse_simple(SPEC_LINE.decode())
    assert entry.time == SPEC_UTC
    assert entry.local_time == datetime(2014, 1, 16, 18, 53, 52, 608_000)
    assert (entry.component, entry.thread, entry.bias_minutes) == (COMPONENT, 3404, 480)
    assert entry.severity is None and entry.file is None and entry.line_number == 1


def test_line_breaks_are_written_as_double_tildes(tmp_path: Path) -> None:
    log = _log(tmp_path / "a.log")
    entry = log.error("first\nsecond\r\nthird\rfourth")
    raw = log.path.read_bytes()
    assert raw.startswith(b"first~~second~~third~~fourth  $$<")
    assert raw.count(b"\r\n") == 1
    assert entry.message == "first\nsecond\nthird\nfourth"
    assert encode_message("a\nb") == "a~~b" and decode_message("a~~b") == "a\nb"


@pytest.mark.parametrize("bias", [480, 420, -120, -60, 0, -345, -600])
def test_round_trip(tmp_path: Path, bias: int) -> None:
    log = _log(tmp_path / "WSyncMgr.log", bias=bias)
    written = [
        (log.info, log.warning, log.error)[n % 3](message) for n, message in enumerate(MESSAGES)
    ]
    garbage: list[tuple[int, str]] = []
    read = list(read_simple(log.path, on_garbage=lambda n, s: garbage.append((n, s))))
    assert garbage == []
    assert read == written
    expected = [m.replace("\r\n", "\n") for m in MESSAGES]
    assert [e.message for e in read] == expected
    assert all(e.severity is None for e in read)  # the format has no severity
    clock = _clock()
    assert [e.time for e in read] == [_millis(clock()) for _ in MESSAGES]


def test_a_literal_double_tilde_reads_back_as_a_line_break(tmp_path: Path) -> None:
    entry = _log(tmp_path / "a.log").info("a~~b")
    assert entry.message == "a\nb"  # the entry as a reader reads it back
    assert list(read_simple(tmp_path / "a.log")) == [entry]


@pytest.mark.parametrize(
    ("bias", "field"),
    [
        (480, "01-16-2014 10:53:54.231+480"),
        (420, "01-16-2014 11:53:54.231+420"),
        (-120, "01-16-2014 20:53:54.231-120"),
        (-60, "01-16-2014 19:53:54.231-60"),
        (0, "01-16-2014 18:53:54.231+000"),
        (-600, "01-17-2014 04:53:54.231-600"),
    ],
)
def test_bias_means_the_same_as_in_cmtrace(tmp_path: Path, bias: int, field: str) -> None:
    simple = _log(tmp_path / "s.log", bias=bias, now=lambda: START)
    cm = CMTraceLog(
        tmp_path / "c.log", component=COMPONENT, bias_minutes=bias, now=lambda: START, thread=1
    )
    simple.info("x")
    cm.info("x")
    local_time, local_date = field.split(" ")[1], field.split(" ")[0]
    assert f"<{field}>" in simple.path.read_text(encoding="utf-8")
    assert f'time="{local_time}" date="{local_date}"' in cm.path.read_text(encoding="utf-8")
    (from_simple,) = read_simple(simple.path)
    (from_cm,) = read_cmtrace(cm.path)
    assert from_simple.time == from_cm.time == START.replace(microsecond=231_000)


def test_real_site_server_lines_parse() -> None:
    # Shapes of real lines: unpadded negative bias (UK, June) and a positive one (US, August).
    text = (
        "CSendFileAction::SendContent failed; 0x80041002 $$<SMS_PACKAGE_TRANSFER_MANAGER>"
        "<06-14-2018 06:26:25.828-60><thread=9112 (0x2398)>\n"
        "remote host.~~  $$<Configuration Manager Setup><08-22-2016 04:15:01.917+420>"
        "<thread=2868 (0xB34)>\n"
    )
    first, second = parse_simple(text)
    assert first.message == "CSendFileAction::SendContent failed; 0x80041002"
    assert first.time == datetime(2018, 6, 14, 5, 26, 25, 828_000, tzinfo=UTC)
    assert (first.thread, first.bias_minutes) == (9112, -60)
    assert second.message == "remote host.\n"
    assert second.component == "Configuration Manager Setup"
    assert second.time == datetime(2016, 8, 22, 11, 15, 1, 917_000, tzinfo=UTC)


def test_garbage_is_reported_and_odd_dates_keep_the_entry() -> None:
    good = SPEC_LINE.decode().rstrip("\r\n")
    text = "\r\n".join(
        [
            "\ufeff" + good,
            "a line that is not an entry",
            "",
            "old  $$<SMS_SITE_COMPONENT_MANAGER><Fri Mar 26 10:43:41.547 1999 Eastern Standard "
            "Time><thread=281 (0x119)>",
            "bad date  $$<C><02-30-2014 10:00:00.000+480><thread=1 (0x1)>",
            good + "junk",
            "no hex  $$<C><01-16-2014 10:00:00.000+480><thread=12>",
        ]
    )
    garbage: list[tuple[int, str]] = []
    entries = list(parse_simple(text, on_garbage=lambda n, s: garbage.append((n, s))))
    assert [(e.message, e.line_number) for e in entries] == [
        ("Wakeup by inbox drop", 1),
        ("old", 4),
        ("bad date", 5),
        ("no hex", 7),
    ]
    assert [e.time is None for e in entries] == [False, True, True, False]
    assert garbage == [(2, "a line that is not an entry"), (6, good + "junk")]
    assert list(parse_simple(text.splitlines())) == entries


def test_rollover_at_the_limit_keeps_lines_whole(tmp_path: Path) -> None:
    path = tmp_path / "WSyncMgr.log"
    log = _log(path, bias=420, max_bytes=700)
    written = [log.info(f"entry {n:03d}\nwith a break {'y' * (n % 30)}") for n in range(50)]
    assert rolled_path(path).exists()
    for part in (rolled_path(path), path):
        assert part.stat().st_size <= 700
        entries, garbage = _collect(part.read_text(encoding="utf-8"))
        assert entries and garbage == []
    read = list(read_simple(path))
    assert read == written[len(written) - len(read) :]


@pytest.mark.parametrize("component", ["", "a<b", "a>b", "a\nb"])
def test_bad_component_says_what_and_where(tmp_path: Path, component: str) -> None:
    with pytest.raises(ValueError, match=r"a\.log: component"):
        SimpleLog(tmp_path / "a.log", component=component)


def test_bad_bias_says_what_and_where(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"a\.log: bias_minutes -1500"):
        SimpleLog(tmp_path / "a.log", component="C", bias_minutes=-1500)
    with pytest.raises(TypeError, match="bias_minutes must be an int"):
        SimpleLog(tmp_path / "a.log", component="C", bias_minutes=1.5)  # type: ignore[arg-type]
