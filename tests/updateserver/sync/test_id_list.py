"""The listed revisions in a temporary table of the store, on SQLite and PostgreSQL: kept in
listing order without repeats, pruned of what the store holds, read in pages, private to
the run, and gone once the run ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import Database
from sqlalchemy import text

from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import RevisionKey
from updatesync.updateserver.importer import import_records
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.sync.id_list import ListedIds

KEYS = [RevisionKey(f"{n:08x}-0000-4000-8000-000000000000", 1 + n % 2) for n in range(2500)]


@pytest.fixture
def store(tmp_path: Path, database: Database) -> Iterator[UpdateStore]:
    with UpdateStore.open(tmp_path / "down", url=database.url) as opened:
        yield opened


def test_keys_are_kept_in_order_without_repeats_and_read_in_pages(store: UpdateStore) -> None:
    with ListedIds(store) as ids:
        ids.restart()
        ids.add(KEYS[:1000])
        ids.add([*KEYS[900:], KEYS[0]])  # repeats keep their first place
        assert ids.count() == len(KEYS)
        pages = list(ids.batches(400))
        assert [len(p) for p in pages] == [400] * 6 + [100]
        assert [k for p in pages for k in p] == KEYS
        ids.restart()  # a listing read again from the start
        ids.add(KEYS[:5])
        assert ids.count() == 5


def test_prune_drops_what_the_store_holds(store: UpdateStore) -> None:
    records = list(generate_catalog(4, seed=9))
    import_records(store, records[:3], source="test")
    held = store.revision_keys()
    listed = [RevisionKey(r.update_id, r.revision) for r in records]
    with ListedIds(store) as ids:
        ids.add(listed)
        left = ids.prune()
        remaining = [k for p in ids.batches(100) for k in p]
    assert remaining == [k for k in listed if k not in held]
    assert left == len(remaining) > 0


def test_two_runs_see_only_their_own_list_and_it_is_gone_afterwards(
    store: UpdateStore,
) -> None:
    with ListedIds(store) as first, ListedIds(store) as second:
        first.add(KEYS[:10])
        second.add(KEYS[10:13])
        assert (first.count(), second.count()) == (10, 3)
    with store.engine.connect() as conn:
        schema = "pg_temp" if conn.dialect.name == "postgresql" else "temp"
        # No table of that name is left on any connection the pool hands out.
        with pytest.raises(Exception, match="sync_listed"):
            conn.execute(text(f"SELECT count(*) FROM {schema}.sync_listed"))
