"""Process-wide memory settings of glibc's malloc: how many arenas a process keeps, and from
what size a buffer is mapped for itself.

Arenas. glibc gives each thread that meets a busy allocator an arena of its own, and an arena
keeps the largest size it ever grew to. A process whose threads take turns on large,
short-lived buffers (an upstream building answers in worker threads; a downstream sync
fetching, parsing and committing in three stages) then holds several copies of its high-water
mark. The GIL runs one thread at a time anyway, so one arena costs no speed worth measuring
and keeps peak memory flat: a downstream sync of 100,000 revisions peaked at 200-207 MiB with
glibc's default arenas on a busy machine and at about 110 MiB with one
(tests/updateserver/sync/test_flat_memory.py).

Mapped buffers. glibc maps a buffer of 128 KiB or more for itself and unmaps it when freed,
but each time it frees one it raises that threshold to the freed size (up to 32 MiB): after
the first large answer or update document, buffers of that size come from the heap, where a
freed one in the middle of live ones cannot be given back. An upstream writing fifty answers
at once to slow readers (chunks of 64 KB to a few hundred KB) then keeps its worst moment for
good. `MMAP_THRESHOLD` fixes the threshold, which turns the raising off. Measured with
GetUpdateData reading its documents as it writes them (bench/fanout.py, fifty downstreams
syncing the June 2024 export at once; bench/hierarchy_sync.py at 100k for the processor
time, quiet 2-core VM, single runs): upstream peak 304 MiB with glibc's own way; 222 and 276
MiB with 64 KiB (and the heap trimmed past 64 KiB free), but the hierarchy's processes then
took 640-659 s of processor time against 597 (mapping and faulting in every chunk); 277 MiB
with 256 KiB and the heap's own trimming, for 595 s.
"""

from __future__ import annotations

import ctypes
from typing import Final

__all__ = ["MALLOC_ARENAS", "MMAP_THRESHOLD", "tune_malloc"]

MALLOC_ARENAS: Final = 1
"""The arenas a serving or syncing process keeps (glibc's M_ARENA_MAX)."""

MMAP_THRESHOLD: Final = 256 * 1024
"""Buffers of this many bytes or more are mapped for themselves and given back when freed
(glibc's M_MMAP_THRESHOLD)."""

_M_MMAP_THRESHOLD: Final = -3  # glibc's malloc.h
_M_ARENA_MAX: Final = -8


def tune_malloc(arenas: int = MALLOC_ARENAS, mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """Keep this process's malloc to `arenas` arenas and map buffers of `mmap_threshold`
    bytes or more for themselves, from now on (glibc's `mallopt`; arenas made before stay).
    False where the C library has no such settings (musl, macOS), which then keeps its own
    ways."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    taken = [mallopt(_M_ARENA_MAX, arenas), mallopt(_M_MMAP_THRESHOLD, mmap_threshold)]
    return all(taken)
