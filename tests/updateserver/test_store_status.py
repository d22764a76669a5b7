"""The store's status and its sync history."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from databases import Database
from generated_catalog import imported_store

from updatesync.updateserver.store import Subscription, UpdateStore
from updatesync.updateserver.store_status import as_utc, read_history, read_status


def test_a_new_store_has_an_empty_status_and_no_history(tmp_path: Path, database: Database) -> None:
    with UpdateStore.open(tmp_path / "new", url=database.url) as store:
        status = store.status()
        assert (status.revisions, status.updates, status.categories) == (0, 0, 0)
        assert status.last_sync is None and status.last_change == 0
        assert (status.target_groups, status.deployments) == (2, 0)  # the built-in groups
        assert status.subscription == {"products": [], "classifications": [], "languages": []}
        assert store.history() == []


def test_status_counts_and_the_last_import(tmp_path: Path, database: Database) -> None:
    with imported_store(tmp_path, url=database.url) as store:
        status = store.status()
        assert status.revisions == len(store.revision_keys())
        assert status.categories == len(store.categories())
        assert sum(status.by_type.values()) == status.revisions
        assert status.by_category_type["Product"] == len(store.categories("Product"))
        (entry,) = store.history()
        assert entry.kind == "import" and entry.result == "Succeeded"
        assert entry.started_at.tzinfo is UTC and entry.finished_at >= entry.started_at
        assert status.last_sync is not None
        assert status.last_sync["new_revisions"] == entry.new_revisions == status.revisions
        assert status.last_sync["started_at"] == entry.started_at.isoformat()
        assert status.to_json()["last_sync"] == status.last_sync
        assert read_history(store.engine, limit=1) == [entry]
        shown = {"products": ["p"], "classifications": [], "languages": ["en"]}
        assert read_status(store.engine, shown).subscription == shown
        store.set_subscription(Subscription(languages=("en",)))
        assert store.status().subscription["languages"] == ["en"]


def test_naive_times_are_utc() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert as_utc(naive) == naive.replace(tzinfo=UTC)
    assert as_utc("text") == "text"
