"""Generated update documents: products and classifications, bundles, supersedence,
detectoids, real fields, languages, escaping, compact serialization."""

from __future__ import annotations

import base64
from collections import Counter

from generated_catalog import UPDATE_TYPES, UPDATES

from updatesync.metadata.export import ExportRecord
from updatesync.metadata.model import (
    CategoryType,
    PublicationState,
    UpdateRevision,
    UpdateType,
    category_type_map,
)

# ------------------------------------------------------------------ update documents


def test_products_and_classifications_resolve(parsed: list[UpdateRevision]) -> None:
    types = category_type_map(parsed)
    updates = [r for r in parsed if r.update_type in UPDATE_TYPES]
    filed = [r for r in updates if r.category_prerequisites]
    # as in real catalogs, about half of the revisions are leaves and hidden sub-bundles
    assert len(filed) > len(updates) // 4
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
    assert sum(1 for r in updates if r.kb_article) > UPDATES // 5  # leaves carry none
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
