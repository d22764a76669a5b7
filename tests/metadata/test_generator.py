"""The synthetic catalog generator: real-shaped documents, determinism, evolution, memory."""

from __future__ import annotations

import base64
import itertools
import tracemalloc
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from updatesync.metadata.document import parse_update
from updatesync.metadata.export import ExportRecord, read_export, write_export
from updatesync.metadata.generator import (
    CLASSIFICATIONS,
    catalog_stats,
    evolve_catalog,
    generate_catalog,
)
from updatesync.metadata.model import (
    CategoryType,
    PublicationState,
    UpdateRevision,
    UpdateType,
    category_type_map,
)

UPDATES = 1500
UPDATE_TYPES = (UpdateType.SOFTWARE, UpdateType.DRIVER)


def _parse_all(records: Iterable[ExportRecord]) -> list[UpdateRevision]:
    parsed = []
    for number, record in enumerate(records, start=1):
        revision = parse_update(record.xml, where=f"generated record {number}")
        assert (revision.update_id, revision.revision) == (record.update_id, record.revision)
        parsed.append(revision)
    return parsed


def _latest(revisions: Iterable[UpdateRevision]) -> dict[str, UpdateRevision]:
    latest: dict[str, UpdateRevision] = {}
    for revision in revisions:
        held = latest.get(revision.update_id)
        if held is None or revision.revision > held.revision:
            latest[revision.update_id] = revision
    return latest


@pytest.fixture(scope="module")
def catalog() -> list[ExportRecord]:
    return list(generate_catalog(UPDATES, 2024))


@pytest.fixture(scope="module")
def parsed(catalog: list[ExportRecord]) -> list[UpdateRevision]:
    return _parse_all(catalog)


@pytest.fixture(scope="module")
def real_categories(fixtures_dir: Path) -> list[ExportRecord]:
    with read_export(fixtures_dir / "wsus-exports" / "wsus-export-2024-06.cab") as export:
        return list(export.records())


# ------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_output(catalog: list[ExportRecord]) -> None:
    assert list(generate_catalog(UPDATES, 2024)) == catalog


def test_different_seed_gives_different_output(catalog: list[ExportRecord]) -> None:
    other = list(generate_catalog(UPDATES, 2025))
    assert other != catalog
    assert {r.update_id for r in other[60:]}.isdisjoint(r.update_id for r in catalog[60:])


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


# ------------------------------------------------------------------ categories


def test_generated_category_tree(parsed: list[UpdateRevision]) -> None:
    categories = [r for r in parsed if r.is_category]
    types = category_type_map(categories)
    by_id = {r.update_id: r for r in categories}
    companies = [r for r in categories if r.category_type is CategoryType.COMPANY]
    assert companies[0].title() == "Microsoft Corporation"
    assert len(companies) == 3
    for category in categories:
        if category.category_type is CategoryType.PRODUCT_FAMILY:
            assert [types[p] for p in category.parent_categories] == [CategoryType.COMPANY]
        elif category.category_type is CategoryType.PRODUCT:
            assert [types[p] for p in category.parent_categories] == [CategoryType.PRODUCT_FAMILY]
        else:
            assert category.parent_categories == ()
    product_titles = {r.title() for r in categories if r.category_type is CategoryType.PRODUCT}
    assert {"Windows 11", "Windows Server 2022", "Microsoft Defender Antivirus"} <= product_titles
    assert any("Microsoft 365 Apps" in title for title in product_titles)
    for item in CLASSIFICATIONS:
        assert types[item.update_id] is CategoryType.UPDATE_CLASSIFICATION
        assert by_id[item.update_id].title() == item.title
    detectoids = [r for r in parsed if r.update_type is UpdateType.DETECTOID]
    assert detectoids and all(r.detectoid_type for r in detectoids)


def test_classifications_are_the_real_ones(real_categories: list[ExportRecord]) -> None:
    real = {
        r.update_id: r
        for r in _latest(parse_update(x.xml) for x in real_categories).values()
        if r.category_type is CategoryType.UPDATE_CLASSIFICATION
    }
    for item in CLASSIFICATIONS:
        assert item.update_id in real, item.title
        assert real[item.update_id].title() == item.title
        assert real[item.update_id].description() == item.description
        for language, title in item.titles.items():
            assert real[item.update_id].title(language) == title


# ------------------------------------------------------------------ update documents


def test_products_and_classifications_resolve(parsed: list[UpdateRevision]) -> None:
    types = category_type_map(parsed)
    updates = [r for r in parsed if r.update_type in UPDATE_TYPES]
    filed = [r for r in updates if r.category_prerequisites]
    assert len(filed) > len(updates) // 2
    for update in filed:
        assert len(update.category_prerequisites) == 2
        for group in update.category_prerequisites:
            assert len(group) == 1 and group[0] in types
        products, classifications = update.products_and_classifications(types)
        assert len(products) == 1 and types[products[0]] is CategoryType.PRODUCT
        assert len(classifications) == 1
        assert types[classifications[0]] is CategoryType.UPDATE_CLASSIFICATION
        if update.update_type is UpdateType.DRIVER:
            assert classifications[0] == "ebfc1fc5-71a4-4f7b-9aca-3b9a503104a0"


def test_bundles_and_supersedence_reference_earlier_updates(
    parsed: list[UpdateRevision],
) -> None:
    types = category_type_map(parsed)
    earlier: dict[str, UpdateRevision] = {}
    bundled_leaves: set[str] = set()
    bundles = superseding = 0
    for update in parsed:
        if update.update_type not in UPDATE_TYPES:
            earlier[update.update_id] = update
            continue
        assert update.update_id not in earlier, "update ids are unique"
        for key in update.bundled_updates:
            leaf = earlier[key.update_id]
            assert leaf.revision == key.revision
            assert not leaf.category_prerequisites  # leaves are not filed on their own
            bundled_leaves.add(key.update_id)
        bundles += bool(update.bundled_updates)
        if update.bundled_updates:
            assert update.files == ()
        product = update.products_and_classifications(types)[0]
        for old_id in update.superseded_updates:
            old = earlier[old_id]
            assert old.products_and_classifications(types)[0] == product
        superseding += bool(update.superseded_updates)
        earlier[update.update_id] = update
    leaves = {
        r.update_id
        for r in parsed
        if r.update_type in UPDATE_TYPES and not r.category_prerequisites
    }
    assert leaves == bundled_leaves
    assert bundles > 20 and superseding > 100


def test_detectoid_prerequisites_name_generated_detectoids(parsed: list[UpdateRevision]) -> None:
    detectoids = {r.update_id for r in parsed if r.update_type is UpdateType.DETECTOID}
    categories = {r.update_id for r in parsed if r.is_category}
    with_detectoids = 0
    for update in parsed:
        if update.update_type not in UPDATE_TYPES:
            continue
        plain = {uid for group in update.prerequisites for uid in group}
        assert plain <= detectoids | categories
        with_detectoids += bool(plain & detectoids)
    assert with_detectoids > UPDATES // 4


def test_documents_carry_real_fields(parsed: list[UpdateRevision]) -> None:
    updates = [r for r in parsed if r.update_type in UPDATE_TYPES]
    security = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
    severities = Counter(r.msrc_severity for r in updates if r.msrc_severity)
    assert set(severities) == {"Critical", "Important", "Moderate", "Low"}
    for update in updates:
        assert update.default_language == "en"
        assert update.localized[0].language == "en" and update.title()
        assert update.update_id == update.update_id.lower()
        assert update.revision in (200, 201, 202)
        assert update.creation_date and update.creation_date.endswith("Z")
        assert update.publication_state is PublicationState.PUBLISHED
        if update.msrc_severity:
            assert security in update.category_ids
        for item in update.files:
            assert len(base64.b64decode(item.sha1)) == 20
            assert item.sha256 is not None and len(base64.b64decode(item.sha256)) == 32
            assert item.size > 0 and item.modified and item.name
    assert sum(1 for r in updates if r.files) > UPDATES // 2
    assert sum(1 for r in updates if r.kb_article) > UPDATES // 3
    assert any(r.security_bulletin for r in updates)
    eulas = sum(1 for r in updates if r.eula_id)
    assert 0 < eulas < UPDATES // 5
    assert len({r.revision for r in updates}) == 3


def test_titles_in_several_languages_with_real_text(parsed: list[UpdateRevision]) -> None:
    updates = [r for r in parsed if r.update_type in UPDATE_TYPES]
    multilingual = [r for r in updates if len(r.localized) > 1]
    assert UPDATES // 20 < len(multilingual) < UPDATES // 2
    languages = Counter(lang for r in multilingual for lang in r.languages())
    assert {"de", "fr", "ja", "ar", "zh-cn"} <= set(languages)
    japanese = next(r for r in multilingual if "ja" in r.languages())
    assert not japanese.title("ja").isascii()
    assert japanese.title("ja") != japanese.title("en")


def test_special_characters_are_escaped(parsed: list[UpdateRevision]) -> None:
    titles = {r.title() for r in parsed}
    assert any("&" in t for t in titles)
    assert any("<USB-C>" in t for t in titles)
    assert any('"Next"' in t for t in titles)
    descriptions = {r.description() for r in parsed}
    assert any(d and 'Sync <now>" button &' in d for d in descriptions)


def test_compact_serialization_like_real_documents(catalog: list[ExportRecord]) -> None:
    for record in catalog:
        assert record.xml.startswith("<upd:Update xmlns:")
        assert "\n" not in record.xml and "> <" not in record.xml
        assert f'<upd:UpdateIdentity UpdateID="{record.update_id}" ' in record.xml
    categories = [r for r in catalog if 'UpdateType="Category"' in r.xml]
    assert all("<cat:CategoryInformation CategoryType=" in r.xml for r in categories)
    assert any("<bar:" in r.xml for r in catalog)


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


# ------------------------------------------------------------------ real categories


def test_real_categories_pass_through_and_are_used(real_categories: list[ExportRecord]) -> None:
    records = list(generate_catalog(400, 9, categories=real_categories))
    assert records[: len(real_categories)] == real_categories
    assert all(
        mine.xml is theirs.xml for mine, theirs in zip(records, real_categories, strict=False)
    )
    real = [parse_update(r.xml) for r in real_categories]
    types = category_type_map(real)
    updates = _parse_all(records[len(real_categories) :])
    assert len(updates) == 400
    real_detectoids = {r.update_id for r in real if r.update_type is UpdateType.DETECTOID}
    used_products: set[str] = set()
    for update in updates:
        assert update.update_type in UPDATE_TYPES
        plain = {uid for group in update.prerequisites for uid in group}
        assert plain <= real_detectoids | set(types)
        if not update.category_prerequisites:
            continue
        products, classifications = update.products_and_classifications(types)
        assert [types[p] for p in products] == [CategoryType.PRODUCT]
        assert [types[c] for c in classifications] == [CategoryType.UPDATE_CLASSIFICATION]
        used_products.update(products)
    assert len(used_products) > 50


def test_categories_without_products_are_refused() -> None:
    classification_only = [r for r in generate_catalog(0, 1) if "UpdateClassification" in r.xml]
    with pytest.raises(ValueError, match="Product"):
        list(generate_catalog(5, 1, categories=classification_only))


# ------------------------------------------------------------------ evolution


def _compare(before: list[ExportRecord], after: list[ExportRecord]) -> Counter[str]:
    """Count the changes between two catalogs: new ids, new revisions, expirations."""
    old = _latest(parse_update(r.xml) for r in before)
    new = _latest(parse_update(r.xml) for r in after)
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
    evolved = _parse_all(evolve_catalog(catalog, 200, 11))
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


# ------------------------------------------------------------------ memory


def _peak(updates: int, seed: int) -> int:
    tracemalloc.start()
    try:
        count = sum(1 for _record in generate_catalog(updates, seed))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == updates + 41  # 35 categories and 6 detectoids come first
    return peak


def test_memory_does_not_grow_with_the_count() -> None:
    small, large = _peak(300, 77), _peak(3_000, 77)
    assert large < 2 * small + 1024 * 1024, (small, large)


@pytest.mark.slow
def test_memory_stays_flat_while_generating_50000() -> None:
    peak = _peak(50_000, 77)
    assert peak < 30 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
