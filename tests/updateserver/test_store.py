"""The update server's store: what it holds and the questions asked of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import Database
from generated_catalog import imported_store

from updatesync.metadata.export import read_export
from updatesync.metadata.model import CategoryType, RevisionKey
from updatesync.updateserver.errors import StoreUnreadable, UnknownRevisions, UpdateServerError
from updatesync.updateserver.store import Subscription, UpdateStore


@pytest.fixture
def store(tmp_path: Path, database: Database) -> Iterator[UpdateStore]:
    with imported_store(tmp_path, url=database.url) as opened:
        yield opened


def test_revisions_in_the_order_they_arrived(store: UpdateStore) -> None:
    keys = store.revision_keys()
    counter = store.change_counter()
    assert len(keys) == store.status().revisions and counter == len(keys)
    assert set(store.changed_since(0)) == keys
    last_three = store.changed_since(counter - 3)
    assert len(last_three) == 3 and store.changed_since(counter) == []
    assert [r.key for r in store.iter_records(batch=7)][-3:] == [
        RevisionKey(k.update_id, k.revision) for k in last_three
    ]


def test_documents_and_xml(store: UpdateStore) -> None:
    key = sorted(store.revision_keys())[0]
    (document,) = store.documents([key])
    assert document.key == key and document.xml == store.xml(key.update_id, key.revision)
    assert store.xml(key.update_id.upper()) == store.xml(key.update_id)
    assert store.latest_revision(key.update_id) == key.revision
    assert store.xml("00000000-0000-4000-8000-000000000000") is None
    missing = RevisionKey("00000000-0000-4000-8000-000000000000", 1)
    with pytest.raises(UnknownRevisions):
        store.documents([key, missing])
    assert store.stored([key, missing]) == {key}


def test_file_urls_newest_wins(store: UpdateStore) -> None:
    assert store.file_urls(["a", "b"]) == {}
    store.save_file_urls({"a": "http://one/a", "b": "http://one/b"})
    store.save_file_urls({"a": "http://two/a"})
    store.save_file_urls({})
    assert store.file_urls(["a", "b", "c"]) == {"a": "http://two/a", "b": "http://one/b"}


def test_categories_and_products_of_an_update(store: UpdateStore) -> None:
    products = store.categories(CategoryType.PRODUCT)
    classifications = store.categories(CategoryType.UPDATE_CLASSIFICATION)
    assert products and classifications
    assert all(c.category_type == CategoryType.PRODUCT for c in products)
    assert all(c.parents for c in products)  # filed under a product family
    filed = [
        store.products_and_classifications(k.update_id)
        for k in sorted(store.revision_keys())
        if k.update_id not in {c.update_id for c in store.categories()}
    ]
    known = {c.update_id for c in products}
    assert any(p and set(p) <= known for p, _c in filed)


def test_a_subscription_names_categories_of_the_right_type(store: UpdateStore) -> None:
    product = store.categories(CategoryType.PRODUCT)[0].update_id
    classification = store.categories(CategoryType.UPDATE_CLASSIFICATION)[0].update_id
    wanted = Subscription((product,), (classification,), ("en", "de", "en"))
    store.set_subscription(wanted)
    assert store.subscription() == Subscription((product,), (classification,), ("de", "en"))
    with pytest.raises(UpdateServerError, match="cannot be a subscribed classification"):
        store.set_subscription(Subscription(classifications=(product,)))
    assert store.subscription().products == (product,)


def test_export_writes_every_revision(store: UpdateStore, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    count = store.export(tmp_path / "out.cab", progress=lambda d, t: seen.append((d, t)))
    assert count == len(store.revision_keys()) == seen[-1][0] == seen[-1][1]
    with read_export(tmp_path / "out.cab") as export:
        assert {(r.update_id, r.revision) for r in export.records()} == {
            (k.update_id, k.revision) for k in store.revision_keys()
        }


def test_a_file_that_is_not_a_store_is_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "updateserver.sqlite").write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(StoreUnreadable) as caught:
        UpdateStore.open(tmp_path)
    text = str(caught.value)
    assert text.startswith(f"{(tmp_path / 'updateserver.sqlite').resolve()}: not a valid")
    assert "move it aside and run `updatesync updateserver sync`" in text


def test_a_data_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file", encoding="utf-8")
    with pytest.raises(StoreUnreadable, match="is a file, not a folder"):
        UpdateStore.open(tmp_path / "data")
