"""The update server's store against Microsoft's real WSUS export cabinets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.metadata.document import parse_update
from updatesync.metadata.export import read_export
from updatesync.metadata.model import RevisionKey
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore


@pytest.fixture
def export_2024(fixtures_dir: Path) -> Path:
    return fixtures_dir / "wsus-exports" / "wsus-export-2024-06.cab"


@pytest.fixture
def export_2020(fixtures_dir: Path) -> Path:
    return fixtures_dir / "wsus-exports" / "wsus-export-2020-04.cab"


def _records(path: Path) -> dict[RevisionKey, str]:
    with read_export(path) as export:
        return {RevisionKey(r.update_id, r.revision): r.xml for r in export.records()}


def test_status_json_shows_what_the_2024_export_holds(export_2024: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "sup"
    imported = runner.invoke(app, ["updateserver", "import", "--data", str(data), str(export_2024)])
    assert imported.exit_code == 0, imported.output
    shown = runner.invoke(app, ["updateserver", "status", "--data", str(data), "--json"])
    assert shown.exit_code == 0, shown.output
    status = json.loads(shown.stdout)
    assert status["revisions"] == 4125
    assert status["updates"] == 4087
    assert status["by_type"] == {"Category": 451, "Detectoid": 3674}
    assert status["by_category_type"] == {
        "Company": 3,
        "Product": 367,
        "ProductFamily": 61,
        "UpdateClassification": 20,
    }
    # The category count is of distinct category updates, whatever their revisions.
    records = _records(export_2024)
    category_ids = {k.update_id for k, xml in records.items() if 'UpdateType="Category"' in xml}
    assert status["categories"] == len(category_ids)
    assert status["last_change"] == 4125
    assert status["last_sync"]["result"] == "Succeeded"


def test_changed_since_returns_exactly_what_is_new_in_2024(
    export_2020: Path, export_2024: Path, tmp_path: Path
) -> None:
    old, new = _records(export_2020), _records(export_2024)
    with UpdateStore.open(tmp_path / "sup") as store:
        first = import_export_cabinet(store, export_2020)
        counter = store.change_counter()
        assert first.new_revisions == len(old)
        second = import_export_cabinet(store, export_2024)
        changed = store.changed_since(counter)
    expected = set(new) - set(old)
    assert set(changed) == expected
    assert len(changed) == len(expected)
    assert second.new_revisions == len(expected)
    # Revisions kept by both exports whose text differs only in line ends are the same
    # revisions; any other difference would be reported as a conflict.
    differing = {k for k in set(new) & set(old) if new[k] != old[k]}
    assert differing, "the fixtures hold re-exported revisions with changed line ends"
    assert second.conflicting == ()
    assert second.unchanged_revisions == len(set(new) & set(old))


def test_importing_the_same_cabinet_twice_changes_nothing(
    export_2024: Path, tmp_path: Path
) -> None:
    with UpdateStore.open(tmp_path / "sup") as store:
        import_export_cabinet(store, export_2024)
        before = store.status()
        again = import_export_cabinet(store, export_2024)
        after = store.status()
        history = store.history()
    assert again.new_revisions == 0
    assert again.unchanged_revisions == 4125
    assert (after.revisions, after.updates, after.last_change) == (
        before.revisions,
        before.updates,
        before.last_change,
    )
    assert [h.result for h in history] == ["Succeeded", "Succeeded"]


def test_export_then_import_round_trips_byte_for_byte(export_2024: Path, tmp_path: Path) -> None:
    original = _records(export_2024)
    with UpdateStore.open(tmp_path / "first") as store:
        import_export_cabinet(store, export_2024)
        store.export(tmp_path / "back.cab")
    exported = _records(tmp_path / "back.cab")
    assert exported == original
    with UpdateStore.open(tmp_path / "second") as store:
        import_export_cabinet(store, tmp_path / "back.cab")
        assert store.revision_keys() == set(original)
        for key, xml in original.items():
            assert store.xml(key.update_id, key.revision) == xml


def test_latest_view_takes_the_highest_revision(export_2024: Path, tmp_path: Path) -> None:
    records = _records(export_2024)
    by_id = Counter(k.update_id for k in records)
    several = sorted(uid for uid, n in by_id.items() if n > 1)
    assert several, "the 2024 export holds updates with more than one revision"
    with UpdateStore.open(tmp_path / "sup") as store:
        import_export_cabinet(store, export_2024)
        for uid in several:
            revisions = sorted(k.revision for k in records if k.update_id == uid)
            assert store.latest_revision(uid) == revisions[-1]
            for rev in revisions:
                assert store.xml(uid, rev) == records[RevisionKey(uid, rev)]
            assert store.xml(uid) == records[RevisionKey(uid, revisions[-1])]


def test_categories_form_the_real_tree(export_2024: Path, tmp_path: Path) -> None:
    with UpdateStore.open(tmp_path / "sup") as store:
        import_export_cabinet(store, export_2024)
        categories = {c.update_id: c for c in store.categories()}
        products = store.categories("Product")
        assert len(categories) == store.status().categories
    assert len(products) == len({c.update_id for c in products})
    for product in products:
        assert product.title
        assert product.parents, f"{product.title} has no parent"
        for parent in product.parents:
            assert categories[parent].category_type in ("ProductFamily", "Company")


def test_a_generated_catalog_can_take_the_real_category_tree(
    export_2024: Path, tmp_path: Path
) -> None:
    out = tmp_path / "generated.cab"
    runner = CliRunner()
    made = runner.invoke(
        app,
        [
            "catalog",
            "generate",
            "--updates",
            "300",
            "--seed",
            "5",
            "--out",
            str(out),
            "--categories",
            str(export_2024),
        ],
    )
    assert made.exit_code == 0, made.output
    real = _records(export_2024)
    generated = _records(out)
    real_categories = {k: x for k, x in real.items() if 'UpdateType="Category"' in x}
    for key, xml in real_categories.items():
        assert generated[key] == xml
    with UpdateStore.open(tmp_path / "sup") as store:
        import_export_cabinet(store, out)
        kinds = {c.update_id: c.category_type for c in store.categories()}
        documents = [parse_update(xml) for key, xml in generated.items()]
        # Bundle leaves name only their product, as Microsoft's hidden Defender leaves do.
        leaves = {b.update_id for doc in documents for b in doc.bundled_updates}
        filed = 0
        for doc in documents:
            key = doc.key
            if doc.update_type != "Software" or key.update_id in leaves:
                continue
            products, classifications = store.products_and_classifications(key.update_id)
            assert products and classifications, key
            assert all(kinds[p] == "Product" for p in products)
            filed += 1
    assert filed > 100
