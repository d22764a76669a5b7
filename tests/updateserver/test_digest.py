"""The digest of an update server's revision set (`updateserver/digest.py`): kept by every
batch's transaction, it equals a computation from the rows whatever the batches did."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from databases import Database
from generated_catalog import parse_all

from updatesync.metadata.generator import evolve_catalog, generate_catalog
from updatesync.metadata.model import UpdateRevision
from updatesync.updateserver.digest import (
    MODULUS,
    RevisionDigest,
    add_revisions,
    as_of,
    element,
    recompute,
    stored,
)
from updatesync.updateserver.importer import commit_batch, import_records
from updatesync.updateserver.store import UpdateStore


def test_a_digest_does_not_depend_on_order_and_taking_away_undoes_adding() -> None:
    rng = random.Random(14)
    keys = [(f"{rng.getrandbits(128):032x}", rng.randint(1, 300)) for _ in range(200)]
    shuffled = keys[:]
    rng.shuffle(shuffled)
    whole = RevisionDigest.of(keys)
    assert whole == RevisionDigest.of(shuffled) and whole.count == 200
    assert whole.remove(keys[:50]) == RevisionDigest.of(keys[50:])
    assert whole.remove(keys) == RevisionDigest()
    # One term: SHA-256 of "<lower-case id>:<decimal revision>", big-endian.
    expected = int.from_bytes(hashlib.sha256(b"abc:7").digest(), "big")
    assert element("ABC", 7) == expected
    assert RevisionDigest.of([("abc", 7)]).hex == f"{expected % MODULUS:064x}"
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        RevisionDigest.parse("12", 1)


def test_the_kept_digest_equals_the_rows_after_any_batches(
    database: Database, tmp_path: Path
) -> None:
    """Batches in random order and sizes: new updates, newer revisions of held ones (the
    latest replaced), revisions sent again, a batch rolled back, and an import; after each,
    the digest in store_state is what the rows give, and the store's set is the union."""
    rng = random.Random(6707)
    month1 = parse_all(list(generate_catalog(120, seed=31)))
    month2 = parse_all(list(evolve_catalog(iter(generate_catalog(120, seed=31)), 40, seed=32)))
    pool: list[UpdateRevision] = list({d.key: d for d in month1 + month2}.values())
    rng.shuffle(pool)
    with UpdateStore.open(tmp_path / "s", url=database.url) as store:
        held: set[tuple[str, int]] = set()
        start = 0
        while start < len(pool):
            size = rng.randint(1, 60)
            batch = pool[start : start + size]
            again = rng.sample(pool[:start], min(start, rng.randint(0, 5)))
            commit_batch(store, batch + again)
            held |= {(d.update_id, d.revision) for d in batch}
            start += size
            with store.engine.connect() as conn:
                kept, _counter = stored(conn)
                assert kept == recompute(conn)
            assert kept == RevisionDigest.of(held)
        # A batch that fails rolls back its digest with its rows.
        with pytest.raises(ValueError), store.engine.connect() as conn, conn.begin():
            add_revisions(conn, [("ffffffff-0000-4000-8000-000000000000", 1)])
            raise ValueError("the batch failed")
        with store.engine.connect() as conn:
            assert stored(conn)[0] == RevisionDigest.of(held)


def test_an_import_keeps_the_digest_and_the_digest_as_of_a_counter_forgets_what_came_after(
    database: Database, tmp_path: Path
) -> None:
    records = list(generate_catalog(80, seed=41))
    later = list(evolve_catalog(iter(records), 30, seed=42))
    with UpdateStore.open(tmp_path / "s", url=database.url) as store:
        import_records(store, records, source="first")
        first = store.change_counter()
        import_records(store, later, source="second")
        with store.engine.connect() as conn:
            kept, counter = stored(conn)
            assert kept == recompute(conn) and counter == store.change_counter() > first
            # Everything as it stood at `first`, and the categories now but updates then.
            assert as_of(conn, first, first) == recompute(conn, through=first)
            rows = conn.exec_driver_sql(
                "SELECT update_id, revision_number, change_number, update_type FROM revision"
            ).all()
            mixed = RevisionDigest.of(
                (uid, number)
                for uid, number, change, kind in rows
                if kind in ("Category", "Detectoid") or change <= first
            )
            assert as_of(conn, counter, first) == mixed
