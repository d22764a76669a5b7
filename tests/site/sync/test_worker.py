"""The site server: what wakes the sync manager, and that it runs one sync at a time."""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from updatesync.config import IntervalSchedule
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.retry_policy import jitter_source
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.db_monitor import DatabaseMonitor
from updatesync.site.sync.inbox import Inbox
from updatesync.site.sync.outcome import SiteSyncResult
from updatesync.site.sync.worker import SyncWorker
from updatesync.vocabulary import DATABASE_NOTIFICATION_MONITOR

T0 = datetime(2024, 3, 12, 10, 0, tzinfo=UTC)
WAIT = 10.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeManager:
    """Records each run. While `gate` is clear a run blocks, so requests can arrive during
    it; `started` is set when a run begins. `succeed` says what the runs return."""

    def __init__(self, *, blocking: bool = False, succeed: bool = True) -> None:
        self.triggers: list[str] = []
        self.retries: list[bool] = []
        self.started = threading.Event()
        self.gate = threading.Event()
        if not blocking:
            self.gate.set()
        self.succeed = succeed
        self.concurrent = 0
        self.most_concurrent = 0
        self._lock = threading.Lock()

    def run(self, trigger: str, *, retry: bool = False) -> SiteSyncResult:
        with self._lock:
            self.triggers.append(trigger)
            self.retries.append(retry)
            self.concurrent += 1
            self.most_concurrent = max(self.most_concurrent, self.concurrent)
        self.started.set()
        self.gate.wait(WAIT)
        with self._lock:
            self.concurrent -= 1
        return SiteSyncResult(
            succeeded=self.succeed,
            content_version=1,
            items_updated=0,
            cis_changed=0,
            seconds=0.0,
            error=None if self.succeed else "Request for principal permission failed",
        )


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    return Inbox(tmp_path / "inboxes" / "WSyncMgr.box", report=lambda message: None)


@pytest.fixture
def done() -> queue.Queue[SiteSyncResult]:
    return queue.Queue()


def make_server(
    manager: FakeManager,
    inbox: Inbox,
    done: queue.Queue[SiteSyncResult],
    **kwargs: object,
) -> SyncWorker:
    return SyncWorker(
        None,
        manager,
        inbox,
        on_sync_done=done.put,
        inbox_interval=0.01,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def running(
    inbox: Inbox, done: queue.Queue[SiteSyncResult]
) -> Iterator[tuple[SyncWorker, FakeManager]]:
    manager = FakeManager()
    server = make_server(manager, inbox, done)
    server.start()
    yield server, manager
    manager.gate.set()
    server.stop()


def test_a_self_syn_made_by_hand_wakes_the_server(
    running: tuple[SyncWorker, FakeManager], inbox: Inbox, done: queue.Queue[SiteSyncResult]
) -> None:
    server, manager = running
    (inbox.path / "SELF.SYN").touch()
    assert done.get(timeout=WAIT).succeeded
    assert server.wait_idle(WAIT)
    assert manager.triggers == ["SELF"]
    assert not (inbox.path / "SELF.SYN").exists()


def test_full_wins_over_self(inbox: Inbox, done: queue.Queue[SiteSyncResult]) -> None:
    inbox.drop("SELF")
    inbox.drop("FULL")
    manager = FakeManager()
    with make_server(manager, inbox, done) as server:
        assert server.wait_idle(WAIT)
    assert manager.triggers == ["FULL"]


def test_requests_during_a_sync_give_exactly_one_follow_up(
    inbox: Inbox, done: queue.Queue[SiteSyncResult]
) -> None:
    manager = FakeManager(blocking=True)
    with make_server(manager, inbox, done) as server:
        inbox.drop("SELF")
        assert manager.started.wait(WAIT)
        inbox.drop("SELF")
        (inbox.path / "full.syn").touch()
        inbox.drop("SELF")
        assert server.running == "SELF"
        manager.gate.set()
        assert server.wait_idle(WAIT)
    assert manager.triggers == ["SELF", "FULL"]
    assert manager.most_concurrent == 1
    assert inbox.pending() == set()


def test_three_self_requests_during_a_sync_give_one_delta_follow_up(
    inbox: Inbox, done: queue.Queue[SiteSyncResult]
) -> None:
    manager = FakeManager(blocking=True)
    with make_server(manager, inbox, done) as server:
        inbox.drop("FULL")
        assert manager.started.wait(WAIT)
        for _ in range(3):
            inbox.drop("SELF")
        manager.gate.set()
        assert server.wait_idle(WAIT)
    assert manager.triggers == ["FULL", "SELF"]


def test_the_schedule_runs_a_scheduled_sync_when_due(
    inbox: Inbox, done: queue.Queue[SiteSyncResult]
) -> None:
    clock = Clock()
    manager = FakeManager()
    schedule = IntervalSchedule(timedelta(hours=1))
    with make_server(manager, inbox, done, schedule=schedule, clock=clock) as server:
        assert server.next_scheduled == T0 + timedelta(hours=1)
        clock.now = T0 + timedelta(hours=1)
        server.poke()
        assert done.get(timeout=WAIT).succeeded
        assert manager.triggers == ["schedule"]
        assert server.next_scheduled == T0 + timedelta(hours=2)


def test_a_failed_sync_is_retried_60_to_66_minutes_later(
    inbox: Inbox, done: queue.Queue[SiteSyncResult]
) -> None:
    clock = Clock()
    manager = FakeManager(succeed=False)
    with make_server(manager, inbox, done, clock=clock) as server:
        inbox.drop("FULL")
        assert not done.get(timeout=WAIT).succeeded
        # The documented hour plus up to 6 whole minutes of jitter (SITE_SYNC_RETRY).
        assert server.retry_at is not None
        assert T0 + timedelta(minutes=60) <= server.retry_at <= T0 + timedelta(minutes=66)
        assert (server.retry_at - T0).total_seconds() % 60 == 0

        manager.succeed = True
        clock.now = server.retry_at
        server.poke()
        assert done.get(timeout=WAIT).succeeded
        assert manager.triggers == ["FULL", "FULL"]
        assert manager.retries == [False, True]  # the second is the retry, not a drop
        assert server.retry_at is None


def test_a_sync_that_raises_counts_as_failed_and_is_retried(
    inbox: Inbox, done: queue.Queue[SiteSyncResult]
) -> None:
    class Broken(FakeManager):
        def run(self, trigger: str, *, retry: bool = False) -> SiteSyncResult:
            raise ConnectionError("cs1site.contoso.com:8530 refused the connection")

    clock = Clock()
    with make_server(Broken(), inbox, done, clock=clock) as server:
        inbox.drop("SELF")
        result = done.get(timeout=WAIT)
        assert not result.succeeded
        assert result.error is not None and "refused the connection" in result.error
        assert server.retry_at is not None
        assert T0 + timedelta(minutes=60) <= server.retry_at <= T0 + timedelta(minutes=66)


def test_the_retry_is_due_when_the_managers_line_said(
    inbox: Inbox, done: queue.Queue[SiteSyncResult]
) -> None:
    class Announcing(FakeManager):
        def run(self, trigger: str, *, retry: bool = False) -> SiteSyncResult:
            failed = super().run(trigger, retry=retry)
            return dataclasses.replace(failed, retry_in=63 * 60.0)  # "Will retry in 63 minutes"

    clock = Clock()
    with make_server(Announcing(succeed=False), inbox, done, clock=clock) as server:
        inbox.drop("SELF")
        assert done.get(timeout=WAIT).retry_in == 63 * 60.0
        assert server.retry_at == T0 + timedelta(minutes=63)


def test_two_sites_that_failed_together_retry_apart(
    tmp_path: Path, done: queue.Queue[SiteSyncResult]
) -> None:
    due = []
    for seed in range(6):
        box = Inbox(tmp_path / f"site{seed}" / "WSyncMgr.box", report=lambda message: None)
        clock = Clock()
        manager = FakeManager(succeed=False)
        with make_server(manager, box, done, clock=clock, rng=jitter_source(seed)) as server:
            box.drop("SELF")
            assert not done.get(timeout=WAIT).succeeded
            due.append(server.retry_at)
    assert len(set(due)) > 1


def test_sync_now_goes_through_the_monitor_to_one_sync(
    tmp_path: Path, inbox: Inbox, done: queue.Queue[SiteSyncResult]
) -> None:
    log = CMTraceLog(
        tmp_path / "SMSDBMON.log", component=DATABASE_NOTIFICATION_MONITOR, bias_minutes=0
    )
    with SiteDatabase.open(tmp_path / "cs1", site_code="CS1") as db:
        monitor = DatabaseMonitor(db, inbox, log, poll_interval=3600)
        manager = FakeManager()
        server = SyncWorker(db, manager, inbox, monitor, on_sync_done=done.put)
        with server:
            db.sync.request("SELF")
            monitor.notify()
            assert done.get(timeout=WAIT).succeeded
            assert server.wait_idle(WAIT)
        assert manager.triggers == ["SELF"]
        assert db.sync.status().sync_now is None


def test_stop_is_prompt_when_idle(inbox: Inbox, done: queue.Queue[SiteSyncResult]) -> None:
    schedule = IntervalSchedule(timedelta(days=7))
    server = SyncWorker(None, FakeManager(), inbox, schedule=schedule, inbox_interval=30)
    server.start()
    # Idle, with the next schedule days away and a slow inbox poll: stop still ends the
    # worker (it waits on an event, not on its timers).
    assert server.stop(timeout=WAIT)


def test_stop_lets_the_running_sync_finish_and_keeps_later_requests(
    inbox: Inbox, done: queue.Queue[SiteSyncResult]
) -> None:
    manager = FakeManager(blocking=True)
    server = make_server(manager, inbox, done)
    server.start()
    inbox.drop("SELF")
    assert manager.started.wait(WAIT)
    inbox.drop("FULL")
    assert server.stop(timeout=0.05) is False  # the sync still runs
    manager.gate.set()
    assert server.stop(timeout=WAIT)
    assert done.get(timeout=WAIT).succeeded
    assert manager.triggers == ["SELF"]
    assert inbox.pending() == {"FULL"}


def test_a_sync_killed_with_the_process_is_retried_when_the_start_up_line_said(
    inbox: Inbox, done: queue.Queue[SiteSyncResult]
) -> None:
    class Recovering(FakeManager):
        """At start-up it finds the last sync died with the process and reports it failed,
        with "Sync failed. Will retry in 64 minutes" (`SyncReport.announced_retry`)."""

        report = SimpleNamespace(announced_retry=64 * 60.0)

        def recover(self) -> bool:
            return True

    clock = Clock()
    with make_server(Recovering(), inbox, done, clock=clock) as server:
        assert server.retry_at == T0 + timedelta(minutes=64)
        assert server.retry_trigger == "SELF"
