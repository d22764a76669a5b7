"""The real ConfigMgr log excerpts (as CMTrace copies them: `message<TAB>component`) parse, and
our writers reproduce them: every fixture message written with `CMTraceLog` (and with
`SimpleLog`) reads back as the same (message, component) sequence."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from updatesync.logs.cmtrace import CMTraceLog, parse_rendered, read_cmtrace
from updatesync.logs.component import read_component_log
from updatesync.logs.rollover import decode_log_bytes
from updatesync.logs.simple import SimpleLog, read_simple

LOGS = Path("logs")
RENDERED = sorted(
    [
        "msdocs-2014-hierarchy/CS1-SMSDBMON.rendered.txt",
        "msdocs-2014-hierarchy/CS1-SMSProv.rendered.txt",
        "msdocs-2014-hierarchy/CS1-WSyncMgr.rendered.txt",
        "msdocs-2014-hierarchy/PS1-WSyncMgr.rendered.txt",
        "patchmypc-2024-failures/CHQ-wsyncmgr-permission.rendered.txt",
        "patchmypc-2024-failures/wsyncmgr-timeout.rendered.txt",
    ]
)
KNOWN_COMPONENTS = {
    "SMS_WSUS_SYNC_MANAGER",
    "SMS_DATABASE_NOTIFICATION_MONITOR",
    "SMS Provider",
}


def _clock() -> Callable[[], datetime]:
    start = datetime(2014, 1, 16, 18, 53, 52, 608_000, tzinfo=UTC)
    ticks: Iterator[datetime] = iter(start + n * timedelta(milliseconds=517) for n in range(10**6))
    return lambda: next(ticks)


def _pairs(fixtures_dir: Path, name: str) -> list[tuple[str, str]]:
    text = decode_log_bytes((fixtures_dir / LOGS / name).read_bytes())
    garbage: list[tuple[int, str]] = []
    pairs = parse_rendered(text, on_garbage=lambda n, s: garbage.append((n, s)))
    assert garbage == [], f"{name}: lines without a component: {garbage}"
    return pairs


def test_the_fixture_list_is_complete(fixtures_dir: Path) -> None:
    found = sorted(
        str(p.relative_to(fixtures_dir / LOGS))
        for p in (fixtures_dir / LOGS).rglob("*.rendered.txt")
    )
    assert found == RENDERED


@pytest.mark.parametrize("name", RENDERED)
def test_every_rendered_fixture_parses(fixtures_dir: Path, name: str) -> None:
    pairs = _pairs(fixtures_dir, name)
    lines = [
        line
        for line in (fixtures_dir / LOGS / name).read_text(encoding="utf-8").splitlines()
        if line
    ]
    assert len(pairs) == len(lines)
    assert all(message and "\t" not in component for message, component in pairs)
    assert {component for _, component in pairs} <= KNOWN_COMPONENTS


def test_the_cas_sync_reads_as_the_article_tells_it(fixtures_dir: Path) -> None:
    pairs = _pairs(fixtures_dir, "msdocs-2014-hierarchy/CS1-WSyncMgr.rendered.txt")
    messages = [message for message, _ in pairs]
    assert messages[0] == "Wakeup by inbox drop"
    statmsg_ids = [m.split()[1] for m in messages if m.startswith("STATMSG:")]
    assert statmsg_ids == ["ID=6701", "ID=6704", "ID=6705", "ID=6702"]
    assert pairs[-1][1] == "SMS_WSUS_SYNC_MANAGER"


@pytest.mark.parametrize("bias", [480, -120])
@pytest.mark.parametrize("name", RENDERED)
def test_cmtrace_writer_reproduces_the_fixture(
    fixtures_dir: Path, tmp_path: Path, name: str, bias: int
) -> None:
    pairs = _pairs(fixtures_dir, name)
    path = tmp_path / "component.log"
    clock = _clock()
    logs: dict[str, CMTraceLog] = {}
    for message, component in pairs:
        log = logs.setdefault(
            component,
            CMTraceLog(
                path,
                component=component,
                bias_minutes=bias,
                now=clock,
                thread=3404,
                file_hint="wsyncmgr.cpp:1",
            ),
        )
        log.info(message)
    garbage: list[tuple[int, str]] = []
    read = list(read_cmtrace(path, on_garbage=lambda n, s: garbage.append((n, s))))
    assert garbage == []
    assert [(e.message, e.component) for e in read] == pairs
    times = [e.time for e in read]
    assert all(t is not None for t in times)
    assert times == sorted(times)  # type: ignore[type-var]
    assert list(read_component_log(path)) == read


@pytest.mark.parametrize("name", RENDERED)
def test_simple_writer_reproduces_the_fixture(
    fixtures_dir: Path, tmp_path: Path, name: str
) -> None:
    pairs = _pairs(fixtures_dir, name)
    assert not any("~" in message for message, _ in pairs)  # `~~` would read back as a break
    path = tmp_path / "component.log"
    clock = _clock()
    logs: dict[str, SimpleLog] = {}
    for message, component in pairs:
        log = logs.setdefault(
            component,
            SimpleLog(path, component=component, bias_minutes=420, now=clock, thread=2832),
        )
        log.info(message)
    garbage: list[tuple[int, str]] = []
    read = list(read_simple(path, on_garbage=lambda n, s: garbage.append((n, s))))
    assert garbage == []
    assert [(e.message, e.component) for e in read] == pairs
    assert list(read_component_log(path)) == read
