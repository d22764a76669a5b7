"""Sync requests (the SyncNow flag) and the sync status of a site (`db.sync`)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from databases import Database
from site_samples import T0, race

from updatesync.site.database.models import SyncStatus
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError


def test_a_sync_request_is_taken_once(db: SiteDatabase) -> None:
    assert db.sync.take_request() is None
    assert db.sync.request("self", at=T0) == "SELF"
    status = db.sync.status()
    assert (status.sync_now, status.sync_now_requested_at) == ("SELF", T0)
    assert db.sync.take_request() == "SELF"
    assert db.sync.take_request() is None
    assert db.sync.status().sync_now is None


def test_a_full_request_is_not_lowered_to_a_delta(db: SiteDatabase) -> None:
    db.sync.request("FULL")
    assert db.sync.request("SELF") == "FULL"
    assert db.sync.take_request() == "FULL"
    db.sync.request("SELF")
    assert db.sync.request("FULL") == "FULL"


def test_a_parent_request_names_the_parent(database: Database) -> None:
    with SiteDatabase.open(url=database.url, site_code="PS1") as ps1:
        assert ps1.sync.request("CS1") == "CS1"
        assert ps1.sync.take_request() == "CS1"
        for wrong in ("PS1", "CS10", "C 1"):
            with pytest.raises(SiteDatabaseError, match="use SELF, FULL or the parent"):
                ps1.sync.request(wrong)


def test_threads_racing_for_one_request_only_one_gets_it(db: SiteDatabase) -> None:
    for _ in range(5):
        db.sync.request("SELF")
        got = race(6, db.sync.take_request)
        assert got.count("SELF") == 1
        assert got.count(None) == 5


def test_sync_states_record_progress_failure_and_success(db: SiteDatabase) -> None:
    assert db.sync.record_state(6701, at=T0).in_progress
    failed = db.sync.record_state(
        6703,
        at=T0 + timedelta(minutes=1),
        error_code=0x8013150A,
        error_text="Request for principal permission failed",
    )
    assert not failed.in_progress
    assert (failed.last_error_code, failed.last_sync_state) == (0x8013150A, 6703)
    assert failed.last_successful_sync_time is None
    done = db.sync.record_state(6702, at=T0 + timedelta(hours=1), catalog_version=34)
    assert done.last_successful_sync_time == T0 + timedelta(hours=1)
    assert (done.last_error_code, done.last_error_text) == (None, None)
    assert done.sync_catalog_version == 34
    db.sync.record_state(6701, at=T0 + timedelta(hours=2))
    assert db.sync.status().sync_catalog_version == 34


def test_sync_status_set_and_get_leaves_the_request_alone(db: SiteDatabase) -> None:
    db.sync.request("FULL")
    status = SyncStatus(
        "CS1",
        last_sync_state=6702,
        last_sync_state_time=T0,
        last_successful_sync_time=T0,
        sync_catalog_version=7,
    )
    db.sync.set_status(status)
    read = db.sync.status()
    assert read.sync_now == "FULL"
    assert (read.last_sync_state, read.last_sync_state_time, read.sync_catalog_version) == (
        6702,
        T0,
        7,
    )
    with pytest.raises(SiteDatabaseError, match="no time zone"):
        db.sync.set_status(SyncStatus("CS1", last_sync_state_time=datetime(2014, 1, 16)))
