"""Process-wide memory settings: how many malloc arenas a process keeps.

glibc gives each thread that meets a busy allocator an arena of its own, and an arena keeps
the largest size it ever grew to. A process whose threads take turns on large, short-lived
buffers (an upstream building answers in worker threads; a downstream sync fetching, parsing
and committing in three stages) then holds several copies of its high-water mark. The GIL
runs one thread at a time anyway, so one arena costs no speed worth measuring and keeps peak
memory flat: a downstream sync of 100,000 revisions peaked at 200-207 MiB with glibc's
default arenas on a busy machine and at about 110 MiB with one
(tests/updateserver/sync/test_flat_memory.py); fifty downstreams syncing from one upstream at
once, 300 MiB against 214-285 (bench/fanout.py).
"""

from __future__ import annotations

import ctypes
from typing import Final

__all__ = ["MALLOC_ARENAS", "limit_malloc_arenas"]

MALLOC_ARENAS: Final = 1
"""The arenas a serving or syncing process keeps (glibc's M_ARENA_MAX)."""

_M_ARENA_MAX: Final = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Keep this process's malloc arenas to `arenas` from now on (glibc's
    `mallopt(M_ARENA_MAX)`; arenas made before stay). False where the C library has no such
    setting (musl, macOS), which then keeps its own ways."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))
