"""The categories of a generated catalog: the generated tree, the real classifications, and
real category records passed through and filed under."""

from __future__ import annotations

import pytest
from generated_catalog import UPDATE_TYPES, latest, parse_all

from updatesync.metadata.document import parse_update
from updatesync.metadata.export import ExportRecord
from updatesync.metadata.generator import (
    CLASSIFICATIONS,
    generate_catalog,
)
from updatesync.metadata.model import (
    CategoryType,
    UpdateRevision,
    UpdateType,
    category_type_map,
)

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
        for r in latest(parse_update(x.xml) for x in real_categories).values()
        if r.category_type is CategoryType.UPDATE_CLASSIFICATION
    }
    for item in CLASSIFICATIONS:
        assert item.update_id in real, item.title
        assert real[item.update_id].title() == item.title
        assert real[item.update_id].description() == item.description
        for language, title in item.titles.items():
            assert real[item.update_id].title(language) == title


# ------------------------------------------------------------------ real categories


def test_real_categories_pass_through_and_are_used(real_categories: list[ExportRecord]) -> None:
    records = list(generate_catalog(400, 9, categories=real_categories))
    assert records[: len(real_categories)] == real_categories
    assert all(
        mine.xml is theirs.xml for mine, theirs in zip(records, real_categories, strict=False)
    )
    real = [parse_update(r.xml) for r in real_categories]
    types = category_type_map(real)
    updates = parse_all(records[len(real_categories) :])
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
