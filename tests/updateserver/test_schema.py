"""Tests of the query helpers of `updatesync.updateserver.schema`: `is_latest` and
`rows_for_revisions`, on an in-memory SQLite database built from the table declarations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, create_engine, insert, select

from updatesync.metadata.model import RevisionKey
from updatesync.updateserver.schema import (
    is_latest,
    metadata,
    revision_relation,
    rows_for_revisions,
    update_item,
)

A = "aaaaaaaa-0000-0000-0000-000000000000"
B = "bbbbbbbb-0000-0000-0000-000000000000"
C = "cccccccc-0000-0000-0000-000000000000"


@pytest.fixture
def conn() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(update_item),
            [
                {"update_id": A, "latest_revision": 2, "update_type": "Software"},
                {"update_id": B, "latest_revision": 5, "update_type": "Software"},
            ],
        )
        rows = [(A, 1, C), (A, 2, C), (B, 5, A), (B, 4, A), (C, 1, A)]
        connection.execute(
            insert(revision_relation),
            [
                {
                    "update_id": uid,
                    "revision_number": rev,
                    "kind": "prerequisite",
                    "group_no": 0,
                    "target_update_id": target,
                    "target_revision": None,
                }
                for uid, rev, target in rows
            ],
        )
        yield connection
    engine.dispose()


def _keys(rows: object) -> list[tuple[str, int]]:
    return sorted((row[0], row[1]) for row in rows)  # type: ignore[attr-defined]


def test_is_latest_keeps_only_the_latest_revision_of_each_update(conn: Connection) -> None:
    query = select(revision_relation.c.update_id, revision_relation.c.revision_number).join(
        update_item, is_latest(revision_relation)
    )
    assert _keys(conn.execute(query)) == [(A, 2), (B, 5)]


def test_rows_for_revisions_returns_only_the_wanted_revisions(conn: Connection) -> None:
    rows = list(
        rows_for_revisions(
            conn,
            revision_relation,
            [revision_relation.c.target_update_id],
            [RevisionKey(A, 1), RevisionKey(B, 5), RevisionKey(C, 9)],
        )
    )
    assert sorted(tuple(r) for r in rows) == [(A, 1, C), (B, 5, A)]


def test_rows_for_revisions_with_no_keys_yields_nothing(conn: Connection) -> None:
    assert list(rows_for_revisions(conn, revision_relation, [], [])) == []


def test_rows_for_revisions_in_small_chunks_finds_the_same_rows(conn: Connection) -> None:
    keys = [RevisionKey(A, 1), RevisionKey(A, 2), RevisionKey(B, 4), RevisionKey(C, 1)]
    rows = rows_for_revisions(conn, revision_relation, [], keys, chunk=1)
    assert _keys(rows) == [(A, 1), (A, 2), (B, 4), (C, 1)]
