"""The database notification monitor: the SyncNow flag becomes a request file, the SMSDBMON
lines in the real shape, and the flag cleared only after the file is there."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from updatesync.logs.cmtrace import CMTraceLog, read_cmtrace
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.db_monitor import DatabaseMonitor
from updatesync.vocabulary import DATABASE_NOTIFICATION_MONITOR


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SiteDatabase]:
    with SiteDatabase.open(tmp_path / "cs1", site_code="CS1") as site_db:
        yield site_db


@pytest.fixture
def box(tmp_path: Path) -> Path:
    return tmp_path / "ConfigMgr" / "inboxes" / "WSyncMgr.box"


def smsdbmon(tmp_path: Path) -> CMTraceLog:
    return CMTraceLog(
        tmp_path / "logs" / "SMSDBMON.log", component=DATABASE_NOTIFICATION_MONITOR, bias_minutes=0
    )


def log_messages(tmp_path: Path) -> list[str]:
    return [e.message for e in read_cmtrace(tmp_path / "logs" / "SMSDBMON.log")]


def test_flag_becomes_self_syn_and_is_cleared(db: SiteDatabase, box: Path, tmp_path: Path) -> None:
    monitor = DatabaseMonitor(db, box, smsdbmon(tmp_path))
    db.sync.request("SELF")
    assert monitor.check() == ["SELF"]
    assert (box / "SELF.SYN").is_file()
    assert db.sync.status().sync_now is None
    assert monitor.check() == []


def test_the_log_lines_have_the_real_shape(db: SiteDatabase, box: Path, tmp_path: Path) -> None:
    monitor = DatabaseMonitor(db, box, smsdbmon(tmp_path))
    db.sync.request("SELF")
    monitor.check()
    db.sync.request("FULL")
    monitor.check()
    entries = list(read_cmtrace(tmp_path / "logs" / "SMSDBMON.log"))
    assert {e.component for e in entries} == {"SMS_DATABASE_NOTIFICATION_MONITOR"}
    assert [e.message for e in entries] == [
        "RCV: UPDATE on Update_SyncStatus for SyncNotif_WSyncMgr [SELF][1]",
        f"SND: Dropped {box.absolute() / 'SELF.SYN'} [1]",
        "RCV: UPDATE on Update_SyncStatus for SyncNotif_WSyncMgr [FULL][2]",
        f"SND: Dropped {box.absolute() / 'FULL.SYN'} [2]",
    ]


def test_the_notification_number_keeps_rising_after_a_restart(
    db: SiteDatabase, box: Path, tmp_path: Path
) -> None:
    db.sync.request("SELF")
    DatabaseMonitor(db, box, smsdbmon(tmp_path)).check()
    db.sync.request("SELF")
    DatabaseMonitor(db, box, smsdbmon(tmp_path)).check()
    assert log_messages(tmp_path)[-1].endswith("SELF.SYN [2]")


class DiesAfterDrop(DatabaseMonitor):
    """A monitor whose process dies between the drop and the clear."""

    def _clear_if_same(self, flag: str, requested_at: Any) -> bool:
        raise SystemExit("killed")


def test_a_monitor_killed_after_the_drop_drops_again_on_restart(
    db: SiteDatabase, box: Path, tmp_path: Path
) -> None:
    db.sync.request("SELF")
    with pytest.raises(SystemExit):
        DiesAfterDrop(db, box, smsdbmon(tmp_path)).check()
    assert (box / "SELF.SYN").is_file()
    assert db.sync.status().sync_now == "SELF"

    assert DatabaseMonitor(db, box, smsdbmon(tmp_path)).check() == ["SELF"]
    assert [p.name for p in box.iterdir()] == ["SELF.SYN"]
    assert db.sync.status().sync_now is None
    assert log_messages(tmp_path)[-1].endswith("SELF.SYN [2]")


class FullArrivesDuringDrop(DatabaseMonitor):
    """A console user asks for a full sync while the monitor drops SELF.SYN."""

    def _clear_if_same(self, flag: str, requested_at: Any) -> bool:
        if flag == "SELF":
            self.db.sync.request("FULL")
        return super()._clear_if_same(flag, requested_at)


def test_a_full_request_made_during_the_drop_is_not_lost(
    db: SiteDatabase, box: Path, tmp_path: Path
) -> None:
    db.sync.request("SELF")
    monitor = FullArrivesDuringDrop(db, box, smsdbmon(tmp_path))
    assert monitor.check() == ["SELF", "FULL"]
    assert sorted(p.name for p in box.iterdir()) == ["FULL.SYN", "SELF.SYN"]
    assert db.sync.status().sync_now is None


def test_notify_drops_at_once_and_sets_wake(db: SiteDatabase, box: Path, tmp_path: Path) -> None:
    wake = threading.Event()
    monitor = DatabaseMonitor(db, box, smsdbmon(tmp_path), poll_interval=3600, wake=wake)
    monitor.start()
    try:
        db.sync.request("FULL")
        monitor.notify()
        assert wake.wait(10)
        assert (box / "FULL.SYN").is_file()
    finally:
        monitor.stop()


def test_a_flag_left_set_is_dropped_when_the_monitor_starts(
    db: SiteDatabase, box: Path, tmp_path: Path
) -> None:
    db.sync.request("SELF")
    wake = threading.Event()
    monitor = DatabaseMonitor(db, box, smsdbmon(tmp_path), poll_interval=3600, wake=wake)
    monitor.start()
    try:
        assert wake.wait(10)
        assert (box / "SELF.SYN").is_file()
    finally:
        monitor.stop()
