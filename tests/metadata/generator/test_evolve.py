"""evolve_catalog: exact changes, determinism, new updates filed later, over a cabinet."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from generated_catalog import UPDATE_TYPES, latest, parse_all

from updatesync.metadata.document import parse_update
from updatesync.metadata.export import ExportRecord, read_export, write_export
from updatesync.metadata.generator import (
    catalog_stats,
    evolve_catalog,
    generate_catalog,
)
from updatesync.metadata.model import (
    PublicationState,
    UpdateRevision,
    category_type_map,
)

# ------------------------------------------------------------------ evolution


def _compare(before: list[ExportRecord], after: list[ExportRecord]) -> Counter[str]:
    """Count the changes between two catalogs: new ids, new revisions, expirations."""
    old = latest(parse_update(r.xml) for r in before)
    new = latest(parse_update(r.xml) for r in after)
    assert set(old) <= set(new), "every update is still there"
    changes: Counter[str] = Counter()
    for uid, revision in new.items():
        previous = old.get(uid)
        if previous is None:
            changes["new"] += 1
        elif revision.revision > previous.revision:
            if revision.publication_state is PublicationState.EXPIRED:
                assert previous.publication_state is PublicationState.PUBLISHED
                assert revision.title() == previous.title()
                changes["expired"] += 1
            else:
                assert (revision.title(), revision.description()) != (
                    previous.title(),
                    previous.description(),
                )
                changes["revised"] += 1
        else:
            assert revision.xml == previous.xml
    return changes


def test_evolve_applies_exactly_n_changes(catalog: list[ExportRecord]) -> None:
    evolved = list(evolve_catalog(catalog, 120, 5))
    changes = _compare(catalog, evolved)
    assert sum(changes.values()) == 120
    assert changes["new"] and changes["revised"] and changes["expired"]
    # one revision per update: a changed update is emitted only in its new revision
    assert len(evolved) == len(catalog) + changes["new"]
    assert len({r.update_id for r in evolved}) == len(evolved)


def test_evolve_is_deterministic_and_seed_dependent(catalog: list[ExportRecord]) -> None:
    first = list(evolve_catalog(catalog, 60, 5))
    assert list(evolve_catalog(iter(catalog), 60, 5)) == first
    assert list(evolve_catalog(catalog, 60, 6)) != first


def test_evolve_with_no_changes_passes_everything_through(catalog: list[ExportRecord]) -> None:
    assert list(evolve_catalog(catalog, 0, 5)) == catalog


def test_evolved_new_updates_are_filed_later_and_supersede_existing(
    catalog: list[ExportRecord], parsed: list[UpdateRevision]
) -> None:
    types = category_type_map(parsed)
    old = {r.update_id: r for r in parsed}
    last_date = max(r.creation_date or "" for r in parsed)
    evolved = parse_all(evolve_catalog(catalog, 200, 11))
    new = [r for r in evolved if r.update_id not in old]
    assert new
    superseding_existing = 0
    for update in new:
        assert update.update_type in UPDATE_TYPES
        assert (update.creation_date or "") > last_date
        products, classifications = update.products_and_classifications(types)
        assert len(products) == 1 and len(classifications) == 1
        for superseded in update.superseded_updates:
            if superseded in old:
                superseding_existing += 1
                assert old[superseded].products_and_classifications(types)[0] == products
    assert superseding_existing > 0


def test_evolve_stays_exact_when_few_updates_exist() -> None:
    small = list(generate_catalog(4, 3))
    evolved = list(evolve_catalog(small, 50, 3))
    assert sum(_compare(small, evolved).values()) == 50


def test_evolve_twice(catalog: list[ExportRecord]) -> None:
    month1 = list(evolve_catalog(catalog, 40, 1))
    month2 = list(evolve_catalog(month1, 40, 2))
    assert sum(_compare(month1, month2).values()) == 40
    assert len(catalog_stats(month2).by_update_type) == 4


def test_evolve_over_an_export_cabinet(catalog: list[ExportRecord], tmp_path: Path) -> None:
    path = tmp_path / "catalog.cab"
    assert write_export(path, catalog) == len(catalog)
    with read_export(path) as export:
        assert export.count == len(catalog)
        evolved = list(evolve_catalog(export.records(), 30, 4))
    assert sum(_compare(catalog, evolved).values()) == 30


@pytest.mark.parametrize(("updates", "seed"), [(60, 1), (200, 2), (1000, 7)])
def test_evolve_never_writes_a_revision_twice(updates: int, seed: int) -> None:
    """`catalog generate` and `catalog evolve` with the same seed (both default to 1):
    next month's new updates drew the ids of this month's, and a revision came out twice
    (the import refused the cabinet)."""
    catalog = list(generate_catalog(updates, seed))
    evolved = [(r.update_id.lower(), r.revision) for r in evolve_catalog(iter(catalog), 10, seed)]
    assert len(evolved) == len(set(evolved))
    held = {r.update_id.lower() for r in catalog}
    new = {uid for uid, _ in evolved} - held
    assert new  # the new updates are new ids
