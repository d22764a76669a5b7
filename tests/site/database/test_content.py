"""Update sources and their content version, CIs and categories, written in one transaction
with the content version (`db.content`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from site_samples import CLASSIFICATION, PRODUCT, T0, sample_ci

from updatesync.site.database.models import MICROSOFT_UPDATE, Category, ConfigurationItem
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError


def test_content_version_of_an_update_source(db: SiteDatabase) -> None:
    assert db.content.version() == 0
    db.content.set_version(33)
    assert db.content.version(MICROSOFT_UPDATE.lower()) == 33
    with pytest.raises(SiteDatabaseError, match=r"update source .* is not registered"):
        db.content.version("{00000000-0000-0000-0000-000000000000}")
    with pytest.raises(SiteDatabaseError, match="not registered"):
        db.content.set_version(1, source_id="{00000000-0000-0000-0000-000000000000}")
    source = db.content.add_update_source("{00000000-0000-0000-0000-00000000000a}", "Contoso WSUS")
    assert (source.name, source.content_version) == ("Contoso WSUS", 0)
    assert len(db.content.update_sources()) == 2


def test_a_batch_that_changes_the_site_raises_the_content_version_once(db: SiteDatabase) -> None:
    db.content.set_version(33)
    change = db.content.apply_ci_batch([sample_ci(1), sample_ci(2), sample_ci(3)], at=T0)
    assert (change.inserted, change.updated, change.unchanged) == (3, 0, 0)
    assert (change.content_version_before, change.content_version) == (33, 34)
    assert db.content.version() == 34
    assert db.content.ci_count() == 3
    ids = {ci.update_id: ci.ci_id for ci in db.content.configuration_items()}

    again = db.content.apply_ci_batch(
        [sample_ci(1), sample_ci(2), sample_ci(3)], at=T0 + timedelta(days=1)
    )
    assert (again.inserted, again.updated, again.unchanged, again.changed) == (0, 0, 3, False)
    assert db.content.version() == 34

    later = T0 + timedelta(days=2)
    revised = db.content.apply_ci_batch([sample_ci(2, is_superseded=True), sample_ci(4)], at=later)
    assert (revised.inserted, revised.updated, revised.content_version) == (1, 1, 35)
    item = db.content.configuration_item(sample_ci(2).update_id.upper())
    assert item is not None
    assert item.is_superseded and item.date_revised == later
    assert item.ci_id == ids[item.update_id], "a CI keeps its id when its update changes"
    assert {ci.update_id: ci.ci_id for ci in db.content.configuration_items()} | ids == {
        ci.update_id: ci.ci_id for ci in db.content.configuration_items()
    }


def test_a_failure_inside_the_batch_keeps_nothing(db: SiteDatabase) -> None:
    db.content.apply_ci_batch([sample_ci(1)], at=T0)
    before = (db.content.configuration_items(), db.content.categories(), db.content.version())

    def items() -> Iterator[ConfigurationItem]:
        yield sample_ci(1, title="changed")
        yield sample_ci(2)
        raise ConnectionError("update server went away")

    with pytest.raises(ConnectionError):
        db.content.apply_ci_batch(items(), categories=[Category(PRODUCT, "Product", "Windows 8.1")])
    assert (
        db.content.configuration_items(),
        db.content.categories(),
        db.content.version(),
    ) == before

    with pytest.raises(RuntimeError), db.content.update() as content:
        # Each batch names what it wrote: new CIs, and changed ones (not the unchanged).
        assert content.upsert_cis([sample_ci(5), sample_ci(6)]) == [
            sample_ci(5).update_id,
            sample_ci(6).update_id,
        ]
        assert content.upsert_cis([sample_ci(1, title="changed again"), sample_ci(5)]) == [
            sample_ci(1).update_id
        ]
        raise RuntimeError("phase 2 failed after two batches")
    assert (
        db.content.configuration_items(),
        db.content.categories(),
        db.content.version(),
    ) == before


def test_a_conflicting_ci_id_fails_the_whole_update(db: SiteDatabase) -> None:
    db.content.apply_ci_batch([sample_ci(1)])
    held = db.content.configuration_item(sample_ci(1).update_id)
    assert held is not None and held.ci_id is not None
    with pytest.raises(SiteDatabaseError, match=f"holds it as CI {held.ci_id}"):
        db.content.apply_ci_batch([sample_ci(2), sample_ci(1, ci_id=held.ci_id + 1000)])
    assert db.content.ci_count() == 1 and db.content.version() == 1
    with pytest.raises(SiteDatabaseError, match="appears twice"):
        db.content.apply_ci_batch([sample_ci(3), sample_ci(3)])


def test_replicated_cis_keep_their_ids(db: SiteDatabase) -> None:
    db.content.apply_ci_batch([sample_ci(1, ci_id=16777300), sample_ci(2)])
    by_update = {ci.update_id: ci.ci_id for ci in db.content.configuration_items()}
    assert by_update[sample_ci(1).update_id] == 16777300
    assert db.content.configuration_item("no-such-update") is None


def test_many_batches_in_one_update_raise_the_version_once(db: SiteDatabase) -> None:
    with db.content.update(at=T0) as content:
        assert content.upsert_categories([Category(PRODUCT, "Product", "Windows 8.1")]) == 1
        for start in range(0, 1200, 400):
            content.upsert_cis(sample_ci(n) for n in range(start, start + 400))
    assert content.change.content_version == 1
    assert content.change.inserted == 1200
    assert db.content.version() == 1 and db.content.ci_count() == 1200

    with db.content.update() as only_categories:
        only_categories.upsert_categories([Category(PRODUCT, "Product", "Windows 8.1 (x64)")])
    assert only_categories.change.changed and db.content.version() == 2


def test_categories_upsert_and_list(db: SiteDatabase) -> None:
    company = "56309036-4c77-4dd9-951a-99ee9c246a94"
    family = "6964aab4-c5b5-43bd-a17d-ffb4346a8e1d"
    cats = [
        Category(company, "Company", "Microsoft Corporation"),
        Category(family, "ProductFamily", "Windows", company.upper()),
        Category(PRODUCT, "Product", "Windows 8.1", family),
        Category(CLASSIFICATION, "UpdateClassification", "Definition Updates"),
    ]
    assert db.content.upsert_categories(cats) == 4
    assert db.content.upsert_categories(cats) == 0
    assert db.content.version() == 0, "categories alone, outside a sync, leave it"
    assert [c.title for c in db.content.categories("Product")] == ["Windows 8.1"]
    assert {c.category_id: c.parent_id for c in db.content.categories()}[family] == company
    assert len(db.content.categories()) == 4
