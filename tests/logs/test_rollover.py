"""Rollover log files: `.log` → `.lo_` at the size limit, whole entries, one `.lo_`, the reader
across both files, and concurrent writers (threads and processes) that never interleave."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from updatesync.logs.rollover import (
    RolloverLog,
    decode_log_bytes,
    read_rolled_lines,
    rolled_path,
)

ENTRY = re.compile(r"w(?P<writer>\d+)-(?P<seq>\d{4}) x+ end")


def _entry(writer: int, seq: int, width: int = 40) -> str:
    return f"w{writer}-{seq:04d} {'x' * width} end"


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_rolled_path_swaps_the_extension() -> None:
    assert rolled_path("/var/log/WSyncMgr.log") == Path("/var/log/WSyncMgr.lo_")


def test_small_log_stays_in_one_file_with_crlf(tmp_path: Path) -> None:
    log = RolloverLog(tmp_path / "a.log")
    log.write_entry("first")
    log.write_entry("second\nwith a second line")
    assert (tmp_path / "a.log").read_bytes() == b"first\r\nsecond\r\nwith a second line\r\n"
    assert _files(tmp_path) == ["a.log"]
    assert list(read_rolled_lines(tmp_path / "a.log")) == [
        "first",
        "second",
        "with a second line",
    ]


def test_rollover_at_the_limit_keeps_entries_whole_and_one_lo_(tmp_path: Path) -> None:
    path = tmp_path / "WSyncMgr.log"
    log = RolloverLog(path, max_bytes=500)
    written = []
    for seq in range(200):
        text = _entry(1, seq, width=10 + seq % 37)
        log.write_entry(text)
        written.append(text)
        assert path.stat().st_size <= 500
        assert _files(tmp_path) in (["WSyncMgr.log"], ["WSyncMgr.lo_", "WSyncMgr.log"])
        for file in (path, rolled_path(path)):
            if file.exists():
                data = file.read_bytes()
                assert data.endswith(b"\r\n")
                assert all(ENTRY.fullmatch(line) for line in data.decode().split("\r\n")[:-1])
    assert _files(tmp_path) == ["WSyncMgr.lo_", "WSyncMgr.log"]
    # The reader gives the newest entries, in order, with no gap: a suffix of what was written.
    lines = list(read_rolled_lines(path))
    assert lines == written[-len(lines) :]
    assert len(lines) > 500 // 70  # more than one file's worth


def test_reader_yields_all_entries_across_one_rollover(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    log = RolloverLog(path, max_bytes=1000)
    written = [_entry(1, seq) for seq in range(25)]  # 25 * 52 bytes: exactly one rollover
    for text in written:
        log.write_entry(text)
    assert rolled_path(path).exists()
    assert list(read_rolled_lines(path)) == written


def test_entry_larger_than_the_limit_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    log = RolloverLog(path, max_bytes=100)
    log.write_entry("small")
    big = "line one\n" + "y" * 300
    log.write_entry(big)
    assert rolled_path(path).read_bytes() == b"small\r\n"
    assert path.read_bytes() == ("line one\r\n" + "y" * 300 + "\r\n").encode()
    log.write_entry("after")
    assert rolled_path(path).read_bytes().startswith(b"line one\r\n")
    assert path.read_bytes() == b"after\r\n"


def test_a_rollover_replaces_the_older_lo_(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    rolled_path(path).write_bytes(b"ancient\r\n")
    log = RolloverLog(path, max_bytes=20)
    log.write_entry("0123456789")
    log.write_entry("abcdefghij")  # 12 + 12 > 20: rolls over
    assert rolled_path(path).read_bytes() == b"0123456789\r\n"
    assert list(read_rolled_lines(path)) == ["0123456789", "abcdefghij"]


def test_threads_never_interleave_within_a_line(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    log = RolloverLog(path, max_bytes=10_000_000)
    n_threads, per_thread = 8, 250

    def work(writer: int) -> None:
        for seq in range(per_thread):
            log.write_entry(_entry(writer, seq, width=100))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = list(read_rolled_lines(path))
    assert len(lines) == n_threads * per_thread
    seen: dict[int, list[int]] = {w: [] for w in range(n_threads)}
    for line in lines:
        match = ENTRY.fullmatch(line)
        assert match, f"interleaved or torn line: {line!r}"
        seen[int(match["writer"])].append(int(match["seq"]))
    assert all(seqs == list(range(per_thread)) for seqs in seen.values())


def test_threads_with_rollovers_keep_lines_whole(tmp_path: Path) -> None:
    path = tmp_path / "t.log"
    log = RolloverLog(path, max_bytes=4096)
    other = RolloverLog(path, max_bytes=4096)  # a second writer object on the same path

    def work(writer: int) -> None:
        target = log if writer % 2 else other
        for seq in range(300):
            target.write_entry(_entry(writer, seq, width=30 + writer))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _files(tmp_path) == ["t.lo_", "t.log"]
    for file in (path, rolled_path(path)):
        assert file.stat().st_size <= 4096
    lines = list(read_rolled_lines(path))
    assert lines and all(ENTRY.fullmatch(line) for line in lines)
    last_seen: dict[int, int] = {}
    for line in lines:  # per writer, sequence numbers only grow across .lo_ + .log
        match = ENTRY.fullmatch(line)
        assert match
        writer, seq = int(match["writer"]), int(match["seq"])
        assert seq > last_seen.get(writer, -1)
        last_seen[writer] = seq


_PROCESS_WRITER = """
import sys
from updatesync.logs.rollover import RolloverLog
path, writer, count, max_bytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
log = RolloverLog(path, max_bytes=max_bytes)
for seq in range(count):
    log.write_entry(f"w{writer}-{seq:04d} {'x' * 80} end")
"""


def _run_processes(path: Path, n: int, count: int, max_bytes: int) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS_WRITER, str(path), str(w), str(count), str(max_bytes)]
        )
        for w in range(n)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0


@pytest.mark.skipif(sys.platform == "win32", reason="cross-process locking is POSIX-only")
def test_processes_append_whole_entries(tmp_path: Path) -> None:
    path = tmp_path / "p.log"
    _run_processes(path, n=4, count=400, max_bytes=10_000_000)
    lines = list(read_rolled_lines(path))
    assert len(lines) == 4 * 400
    assert all(ENTRY.fullmatch(line) for line in lines)


@pytest.mark.skipif(sys.platform == "win32", reason="cross-process locking is POSIX-only")
def test_processes_rolling_over_keep_one_lo_and_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.log"
    _run_processes(path, n=4, count=400, max_bytes=8192)
    assert _files(tmp_path) == ["p.lo_", "p.log"]
    for file in (path, rolled_path(path)):
        assert file.stat().st_size <= 8192
    lines = list(read_rolled_lines(path))
    assert len(lines) > 8192 // 100
    assert all(ENTRY.fullmatch(line) for line in lines)


def test_reader_accepts_bom_utf16_and_ansi(tmp_path: Path) -> None:
    path = tmp_path / "enc.log"
    rolled_path(path).write_bytes("\ufeffold é\r\n".encode("utf-8"))
    path.write_bytes("\ufeffnew é\r\nlast\r\n".encode("utf-16-le"))
    assert list(read_rolled_lines(path)) == ["old é", "new é", "last"]
    assert decode_log_bytes("café\n".encode("cp1252")) == "café\n"


def test_reader_of_a_missing_log_yields_nothing(tmp_path: Path) -> None:
    assert list(read_rolled_lines(tmp_path / "absent.log")) == []


def test_max_bytes_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        RolloverLog(tmp_path / "z.log", max_bytes=0)


def test_a_batch_of_entries_rolls_over_exactly_as_one_at_a_time(tmp_path: Path) -> None:
    texts = [_entry(1, seq, width=10 + seq % 37) for seq in range(200)]
    texts[50] = "a line\n" + "z" * 700  # larger than the limit: a file of its own
    one_by_one, batched = tmp_path / "one" / "x.log", tmp_path / "batch" / "x.log"
    single = RolloverLog(one_by_one, max_bytes=500)
    for text in texts:
        single.write_entry(text)
    log = RolloverLog(batched, max_bytes=500)
    assert log.write_entries(texts[:120]) == 120
    assert log.write_entries(iter(texts[120:])) == 80
    assert log.write_entries([]) == 0
    for part in (rolled_path, Path):
        assert part(batched).read_bytes() == part(one_by_one).read_bytes()
    assert list(read_rolled_lines(batched)) == list(read_rolled_lines(one_by_one))


def test_a_batch_goes_on_in_the_log_another_writer_rolled_over(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    log = RolloverLog(path, max_bytes=120)
    other = RolloverLog(path, max_bytes=120)
    log.write_entries([_entry(1, 0), _entry(1, 1)])  # 2 * 54 bytes
    other.write_entry(_entry(2, 0))  # rolls over: the batch writer's file is now the .lo_
    log.write_entries([_entry(1, 2)])
    assert rolled_path(path).read_bytes().decode().split("\r\n")[:-1] == [
        _entry(1, 0),
        _entry(1, 1),
    ]
    assert path.read_bytes().decode().split("\r\n")[:-1] == [_entry(2, 0), _entry(1, 2)]
