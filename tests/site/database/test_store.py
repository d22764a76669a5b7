"""Tests of SiteStore (transactions, snapshots) and the shared helpers of store.py."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from updatesync.site.database import schema as t
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import (
    SiteDatabaseError,
    SiteStore,
    normal_site_code,
    read_time,
    upsert,
    utc,
)


def _sources(store: SiteStore) -> dict[str, int]:
    with store.read() as conn:
        rows = conn.execute(select(t.update_source.c.unique_id, t.update_source.c.content_version))
        return {row.unique_id: row.content_version for row in rows}


@pytest.mark.parametrize("code", ["CS1", "cs1", " Cs1 ", "123"])
def test_normal_site_code_upper_cases(code: str) -> None:
    assert normal_site_code(code) == code.strip().upper()


@pytest.mark.parametrize("code", ["", "CS", "CS12", "C-1", "CS 1"])
def test_normal_site_code_refuses_others(code: str) -> None:
    with pytest.raises(SiteDatabaseError, match="not three letters or digits"):
        normal_site_code(code)


def test_utc_converts_and_refuses_naive_times() -> None:
    local = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert utc(local, "x") == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert utc(local, "x").tzinfo is UTC
    with pytest.raises(SiteDatabaseError, match=r"requested at: .*no time zone"):
        utc(datetime(2026, 1, 1), "requested at")


def test_read_time_makes_naive_times_utc() -> None:
    assert read_time(None) is None
    assert read_time(datetime(2026, 1, 1, 3)) == datetime(2026, 1, 1, 3, tzinfo=UTC)
    aware = datetime(2026, 1, 1, 3, tzinfo=timezone(timedelta(hours=1)))
    assert read_time(aware) is aware


def test_site_is_own_site_or_a_checked_code(db: SiteDatabase) -> None:
    assert db.store.site(None) == "CS1"
    assert db.store.site("ps1") == "PS1"
    with pytest.raises(SiteDatabaseError):
        db.store.site("toolong")


def test_begin_commits_at_the_end_of_the_block(db: SiteDatabase) -> None:
    with db.store.begin() as conn:
        conn.execute(t.update_source.insert().values(unique_id="{A}", name="A", content_version=1))
    assert _sources(db.store)["{A}"] == 1


def test_begin_rolls_back_on_error(db: SiteDatabase) -> None:
    with pytest.raises(RuntimeError), db.store.begin() as conn:
        conn.execute(t.update_source.insert().values(unique_id="{A}", name="A", content_version=1))
        raise RuntimeError("stop")
    assert "{A}" not in _sources(db.store)


def test_a_write_transaction_that_reads_first_is_not_overtaken_on_sqlite(tmp_path: Path) -> None:
    """Found: signing in (read the user, then write the token) failed with `database is
    locked` when another writer (the site data pulled from a child) committed between its
    read and its write: SQLite refuses such a write at once. A write transaction now holds
    the write lock from its start, so the other writer is the one that waits."""
    with SiteDatabase.open(tmp_path / "cs1", site_code="CS1") as db:
        other = sqlite3.connect(db.store.engine.url.database, timeout=0)
        try:
            with db.store.begin() as conn:
                conn.execute(select(t.update_source.c.unique_id)).all()
                with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                    other.execute("PRAGMA user_version = 7")  # another writer, meanwhile
                conn.execute(
                    t.update_source.insert().values(unique_id="{A}", name="A", content_version=1)
                )
            other.execute("PRAGMA user_version = 7")  # now it may
        finally:
            other.close()
        assert _sources(db.store)["{A}"] == 1


def test_upsert_inserts_then_updates(db: SiteDatabase) -> None:
    key = {"unique_id": "{B}"}
    with db.store.begin() as conn:
        upsert(conn, t.update_source, key, {"name": "B", "content_version": 1})
    with db.store.begin() as conn:
        upsert(conn, t.update_source, key, {"name": "B", "content_version": 2})
    assert _sources(db.store)["{B}"] == 2
    with db.store.read() as conn:
        count = conn.execute(select(t.update_source).where(t.update_source.c.unique_id == "{B}"))
        assert len(count.all()) == 1


def test_upsert_with_no_values_keeps_an_existing_row(db: SiteDatabase) -> None:
    with db.store.begin() as conn:
        upsert(conn, t.update_sync_status, {"site_code": "CS1"}, {})
    with db.store.read() as conn:
        rows = conn.execute(select(t.update_sync_status.c.site_code)).scalars().all()
    assert rows == ["CS1"]


def test_snapshot_sees_one_committed_state(db: SiteDatabase) -> None:
    with db.store.snapshot() as conn:
        first = conn.execute(select(t.update_source.c.unique_id)).scalars().all()
        with db.store.begin() as writer:
            writer.execute(
                t.update_source.insert().values(unique_id="{C}", name="C", content_version=1)
            )
        again = conn.execute(select(t.update_source.c.unique_id)).scalars().all()
    assert again == first
    assert "{C}" in _sources(db.store)
