"""The digest of an update server's revision set: what the consistency audit compares.

A set of revisions (update id, revision number) is summed, not listed: each revision is
`SHA-256("<update id>:<revision number>")` (update id lower-case, number in decimal) read as
a 256-bit big-endian number, and the set's digest is the sum of those modulo 2**256, with
the number of revisions beside it. The sum does not depend on the order the revisions
arrived in, one revision is added (or taken away) without reading the others, and two
stores hold the same set when their digests and counts are equal (a collision needs a
SHA-256 preimage-like coincidence).

Every revision counts, older ones too: the protocol lists every revision of a selected
update (`selection.py`), so a downstream holds what its upstream holds, and a revision
missing downstream is drift even when a newer one of the same update is there.

The store keeps the digest of everything it holds in `store_state` (`revision_digest`,
`revision_count`; migration 0010), written by the same transaction as each batch of
revisions (`importer._write_batch` calls `add_revisions`), so it never drifts from the
rows; `recompute` is the from-scratch computation the migration runs and the tests check
the kept one against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

from sqlalchemy import Connection, and_, or_, select, update

from updatesync.metadata.model import RevisionKey
from updatesync.updateserver import schema as t
from updatesync.updateserver.selection import FilterItem, RevisionFilter, iter_revisions
from updatesync.updateserver.store import UpdateStore

MODULUS = 1 << 256
CONFIG_TYPES = ("Category", "Detectoid")
PAGE = 5000
SCOPE_ALL = "all"
SCOPE_FILTER = "filter"


def element(update_id: str, revision: int) -> int:
    """One revision's term of the sum."""
    text = f"{update_id.lower()}:{int(revision)}".encode("ascii")
    return int.from_bytes(hashlib.sha256(text).digest(), "big")


@dataclass(frozen=True, slots=True)
class RevisionDigest:
    """The digest of a set of revisions (`value`, 0 for the empty set) and its size."""

    value: int = 0
    count: int = 0

    @property
    def hex(self) -> str:
        return f"{self.value:064x}"

    @classmethod
    def of(cls, keys: Iterable[tuple[str, int] | RevisionKey]) -> RevisionDigest:
        return cls().add(keys)

    @classmethod
    def parse(cls, text: str, count: int) -> RevisionDigest:
        """A digest as `hex` writes it; ValueError naming the problem otherwise."""
        if len(text) != 64:
            raise ValueError(f"a revision digest is 64 hexadecimal digits, not {text!r}")
        if count < 0:
            raise ValueError(f"a revision count cannot be negative ({count})")
        return cls(int(text, 16), count)

    def add(self, keys: Iterable[tuple[str, int] | RevisionKey]) -> RevisionDigest:
        value, count = self.value, self.count
        for key in keys:
            value += element(*_pair(key))
            count += 1
        return RevisionDigest(value % MODULUS, count)

    def remove(self, keys: Iterable[tuple[str, int] | RevisionKey]) -> RevisionDigest:
        value, count = self.value, self.count
        for key in keys:
            value -= element(*_pair(key))
            count -= 1
        return RevisionDigest(value % MODULUS, count)


def _pair(key: tuple[str, int] | RevisionKey) -> tuple[str, int]:
    return (key.update_id, key.revision) if isinstance(key, RevisionKey) else key


def stored(conn: Connection) -> tuple[RevisionDigest, int]:
    """The digest the store keeps and its change counter, read together (one row)."""
    s = t.store_state
    text, count, counter = conn.execute(
        select(s.c.revision_digest, s.c.revision_count, s.c.change_counter)
    ).one()
    return RevisionDigest.parse(text, count), counter


def add_revisions(conn: Connection, keys: Iterable[tuple[str, int] | RevisionKey]) -> None:
    """Add `keys` (revisions just written, in this transaction) to the kept digest. The
    caller holds the store's write lock (`importer._lock_counter`)."""
    digest, _counter = stored(conn)
    digest = digest.add(keys)
    conn.execute(
        update(t.store_state).values(revision_digest=digest.hex, revision_count=digest.count)
    )


def recompute(conn: Connection, *, through: int | None = None) -> RevisionDigest:
    """The digest of every revision stored (up to change number `through`), read from the
    rows a page at a time: what the kept digest must equal."""
    rev = t.revision
    query = select(rev.c.update_id, rev.c.revision_number).order_by(
        rev.c.update_id, rev.c.revision_number
    )
    if through is not None:
        query = query.where(rev.c.change_number <= through)
    digest = RevisionDigest()
    after: tuple[str, int] | None = None
    while True:
        paged = query.limit(PAGE)
        if after is not None:
            paged = paged.where(
                or_(
                    rev.c.update_id > after[0],
                    and_(rev.c.update_id == after[0], rev.c.revision_number > after[1]),
                )
            )
        rows = conn.execute(paged).all()
        digest = digest.add((uid, number) for uid, number in rows)
        if len(rows) < PAGE:
            return digest
        after = (rows[-1][0], rows[-1][1])


def as_of(conn: Connection, config_through: int, updates_through: int) -> RevisionDigest:
    """The digest of what the store held of categories and detectoids when its change
    counter stood at `config_through`, and of the rest at `updates_through`: the kept digest
    less the revisions that arrived after those numbers (read by the change number index,
    so the cost is that of what arrived since, not of the store)."""
    digest, counter = stored(conn)
    rev = t.revision
    low = min(config_through, updates_through)
    later = conn.execute(
        select(rev.c.update_id, rev.c.revision_number, rev.c.change_number, rev.c.update_type)
        .where(rev.c.change_number > low)
        .where(rev.c.change_number <= counter)
    )
    return digest.remove(
        (uid, number)
        for uid, number, change, kind in later
        if change > (config_through if kind in CONFIG_TYPES else updates_through)
    )


def scoped(
    store: UpdateStore,
    products: Sequence[str],
    classifications: Sequence[str],
    languages: Sequence[FilterItem] = (),
    *,
    config_through: int | None = None,
    updates_through: int | None = None,
) -> tuple[RevisionDigest, str]:
    """The digest of what a downstream syncing with this filter holds when in step, with
    its scope: "all" without products and classifications (such a downstream mirrors: the
    kept digest, as of the two numbers when given, without reading the store), else
    "filter": the categories and detectoids, and the updates the filter (its `languages`
    too: short names) selects, as
    `GetRevisionIdList` lists them from no anchor (bundle leaves included), up to the two
    numbers when given. The filter's digest is read from the selection: its cost is that of
    a listing from no anchor."""
    if not products and not classifications and not languages:
        with store.engine.connect() as conn:
            if config_through is None or updates_through is None:
                return stored(conn)[0], SCOPE_ALL
            return as_of(conn, config_through, updates_through), SCOPE_ALL
    config = iter_revisions(store, RevisionFilter(get_config=True), through=config_through)
    updates = iter_revisions(
        store,
        RevisionFilter(
            get_config=False,
            categories=tuple(FilterItem(uid.lower()) for uid in products),
            classifications=tuple(FilterItem(uid.lower()) for uid in classifications),
            languages=tuple(languages),
        ),
        through=updates_through,
    )
    return RevisionDigest.of(chain(config, updates)), SCOPE_FILTER
