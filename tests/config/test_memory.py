"""The malloc settings (config.memory): on glibc, large buffers freed between small live ones
are given back to the system; a C library without them is left alone."""

from __future__ import annotations

import ctypes
import gc
import platform
import subprocess
import sys

import pytest

from updatesync.config import memory

_HELD_AFTER_FREEING = """
import sys
from updatesync.config.memory import tune_malloc

if sys.argv[1] == "tuned":
    assert tune_malloc()

def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def touched(size):
    buffer = bytearray(size)
    for at in range(0, size, 4096):
        buffer[at] = 1
    return buffer

first = touched(400_000)  # glibc's own way: freeing it raises its threshold to its size
del first
before = rss_kib()
chunks, live = [], []
for n in range(300):  # answer chunks of 300 KB, each followed by something that stays
    chunks.append(touched(300_000))
    live.append(touched(2_000))
del chunks
print(rss_kib() - before)
"""


def _held_kib(how: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _HELD_AFTER_FREEING, how],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's settings are glibc's")
def test_large_buffers_freed_between_live_ones_are_given_back() -> None:
    allocated = 300 * 300_000 // 1024
    assert _held_kib("default") > allocated / 2, "glibc's default keeps them: the test's premise"
    assert _held_kib("tuned") < allocated / 20


def test_a_c_library_without_mallopt_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoMallopt:
        def __init__(self, _name: object) -> None:
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert memory.tune_malloc() is False


def test_the_cycle_collector_threshold_is_raised_never_lowered() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        memory.tune_gc()
        assert gc.get_threshold() == (memory.GC_THRESHOLD, 10, 10)
        gc.set_threshold(memory.GC_THRESHOLD * 5, 3, 4)
        memory.tune_gc()
        assert gc.get_threshold() == (memory.GC_THRESHOLD * 5, 3, 4)
    finally:
        gc.set_threshold(*before)
