"""Two update servers on loopback HTTP with Microsoft's real exports: B syncs from A.

What B asks for is read from the GetUpdateData requests that go over the wire; what it
should ask for is computed from the two cabinets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from wire import held_documents, recorded_sync

from updatesync.metadata.export import read_export
from updatesync.metadata.model import RevisionKey
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.service import create_app


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[UpdateStore, str]]:
    store = UpdateStore.open(tmp_path / "A")
    with BackgroundServer(create_app(StoreBackend(store))) as server:
        yield store, server.url
    store.close()


def _records(path: Path) -> dict[RevisionKey, str]:
    with read_export(path) as export:
        return {r.key: r.xml for r in export.records()}


def test_real_exports_reach_the_downstream_exactly_and_then_only_what_changed(
    upstream: tuple[UpdateStore, str], fixtures_dir: Path, tmp_path: Path
) -> None:
    store_a, url = upstream
    june_2020 = fixtures_dir / "wsus-exports" / "wsus-export-2020-04.cab"
    june_2024 = fixtures_dir / "wsus-exports" / "wsus-export-2024-06.cab"
    import_export_cabinet(store_a, june_2020)
    categories = store_a.categories()
    products = tuple(c.update_id for c in categories if c.category_type != "UpdateClassification")
    classes = tuple(c.update_id for c in categories if c.category_type == "UpdateClassification")

    with UpdateStore.open(tmp_path / "B") as store_b:
        _, first = recorded_sync(store_b, url, products=products, classifications=classes)
        assert held_documents(store_b) == held_documents(store_a)
        assert sorted(first) == sorted(store_a.revision_keys())
        assert store_b.subscription().products == tuple(sorted(p.lower() for p in products))

        import_export_cabinet(store_a, june_2024)
        _, second = recorded_sync(store_b, url)
        expected = set(_records(june_2024)) - set(_records(june_2020))
        assert sorted(second) == sorted(expected)
        assert held_documents(store_b) == held_documents(store_a)
        assert store_b.history()[0].result == "Succeeded"
