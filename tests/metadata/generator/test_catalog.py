"""generate_catalog and catalog_stats: determinism, exact counts, laziness, memory."""

from __future__ import annotations

import itertools
import tracemalloc
from collections import Counter

import pytest
from generated_catalog import UPDATE_TYPES, UPDATES

from updatesync.metadata.export import ExportRecord
from updatesync.metadata.generator import (
    catalog_stats,
    evolve_catalog,
    generate_catalog,
)
from updatesync.metadata.model import (
    UpdateRevision,
    UpdateType,
)

# ------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_output(catalog: list[ExportRecord]) -> None:
    assert list(generate_catalog(UPDATES, 2024)) == catalog


def test_different_seed_gives_different_output(catalog: list[ExportRecord]) -> None:
    other = list(generate_catalog(UPDATES, 2025))
    assert other != catalog
    assert {r.update_id for r in other[130:]}.isdisjoint(r.update_id for r in catalog[130:])


def test_counts_are_exact_and_categories_come_first(parsed: list[UpdateRevision]) -> None:
    kinds = [r.update_type for r in parsed]
    first_update = next(i for i, kind in enumerate(kinds) if kind in UPDATE_TYPES)
    assert all(kind in UPDATE_TYPES for kind in kinds[first_update:])
    assert all(kind not in UPDATE_TYPES for kind in kinds[:first_update])
    assert len(kinds) - first_update == UPDATES
    assert Counter(kinds)[UpdateType.DRIVER] > 0
    assert Counter(kinds)[UpdateType.SOFTWARE] > Counter(kinds)[UpdateType.DRIVER]


def test_the_stream_is_lazy() -> None:
    head = list(itertools.islice(generate_catalog(10**12, 1), 200))
    assert len(head) == 200


def test_bad_counts_are_refused_at_call_time() -> None:
    with pytest.raises(ValueError):
        generate_catalog(-1, 1)
    with pytest.raises(ValueError):
        evolve_catalog([], -1, 1)


def test_catalog_stats(catalog: list[ExportRecord], parsed: list[UpdateRevision]) -> None:
    stats = catalog_stats(catalog)
    assert stats.revisions == len(catalog)
    assert stats.by_update_type == Counter(r.update_type.value for r in parsed)
    assert stats.by_category_type == Counter(
        r.category_type.value for r in parsed if r.category_type
    )
    assert stats.bundles == sum(1 for r in parsed if r.bundled_updates)
    assert stats.superseding == sum(1 for r in parsed if r.superseded_updates)
    assert stats.with_files == sum(1 for r in parsed if r.files)
    assert stats.expired == 0
    assert str(stats.revisions) in stats.summary()


# ------------------------------------------------------------------ memory


def _peak(updates: int, seed: int) -> int:
    tracemalloc.start()
    try:
        count = sum(1 for _record in generate_catalog(updates, seed))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == updates + 127  # 87 categories and 40 detectoids come first
    return peak


def test_memory_does_not_grow_with_the_count() -> None:
    small, large = _peak(300, 77), _peak(3_000, 77)
    assert large < 2 * small + 1024 * 1024, (small, large)


@pytest.mark.slow
def test_memory_stays_flat_while_generating_10000() -> None:
    """The generator's peak is about 3.5 MB at any count (the same at 50,000): with the bound
    of 8 MiB at 10,000, anything it kept of about 500 bytes an update (an id and a title)
    would show."""
    peak = _peak(10_000, 77)
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
