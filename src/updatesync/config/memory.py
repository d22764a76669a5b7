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

The cycle collector. CPython looks for reference cycles each time 700 more container objects
(lists, tuples, dataclass instances, ...) have been made than freed, promotes what survives,
and every so often walks every object alive (a full collection). An import or a sync makes
and drops a dozen objects per document element, nearly all freed by their reference counts
once their batch is written, and the process holds hundreds of thousands that live as long
as it does (SQLAlchemy's, lxml's, the modules'): a downstream sync of 100,000 real-shape
revisions ran 6,349 young, 578 middle and 52 full collections, 7.0 s of its 80 with the
GIL held. With a first threshold of 5,000 it ran 194, 18 and 1: 1.3 s, the sync 13% faster
and its peak 1.7 MiB higher. 10,000 left 0.2 s but a peak 5 MiB higher: the older
generations then are never collected within a sync, and what turns into cyclic garbage
there stays (the peak grows with the catalog).
"""

from __future__ import annotations

import ctypes
import gc
from typing import Final

__all__ = ["GC_THRESHOLD", "MALLOC_ARENAS", "MMAP_THRESHOLD", "tune_gc", "tune_malloc"]

MALLOC_ARENAS: Final = 1
"""The arenas a serving or syncing process keeps (glibc's M_ARENA_MAX)."""

MMAP_THRESHOLD: Final = 256 * 1024
"""Buffers of this many bytes or more are mapped for themselves and given back when freed
(glibc's M_MMAP_THRESHOLD)."""

GC_THRESHOLD: Final = 5_000
"""Container objects made (less those freed) between two runs of the cycle collector
(CPython's first threshold, 700 by default)."""

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


def tune_gc(threshold: int = GC_THRESHOLD) -> None:
    """Run the cycle collector after `threshold` new container objects, not fewer: the
    first threshold is raised to it, never lowered (a process that set a higher one keeps
    it); the older generations' thresholds stay as they are."""
    young, middle, old = gc.get_threshold()
    if young < threshold:
        gc.set_threshold(threshold, middle, old)
