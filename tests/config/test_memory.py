"""The malloc arena setting: taken on glibc, a harmless no where there is none."""

from __future__ import annotations

import ctypes
import platform

import pytest

from updatesync.config import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="M_ARENA_MAX is glibc's")
def test_glibc_takes_the_arena_limit() -> None:
    assert memory.limit_malloc_arenas() is True


def test_a_c_library_without_mallopt_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoMallopt:
        def __init__(self, _name: object) -> None:
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert memory.limit_malloc_arenas() is False
