"""The site server of a top-level site: one worker that decides when the sync manager runs.

It wakes on an inbox drop (by hand, or by the database notification monitor after
`SyncNow`), when the sync schedule is due, when a retry after a failed sync is due, and on
`stop()`. Then it takes the inbox (every request file at once, FULL winning) and runs ONE
sync at a time (SPEC section 2.1: "a request that arrives while a sync runs is not lost and
does not start a second concurrent sync"): requests that arrive during a sync stay in the
inbox and give exactly one sync after it, a full one if any of them asked for it.

After a failed sync a retry of the same trigger is due `retry` later (SPEC section 4: "Will
retry in 60 minutes") plus a few minutes of jitter (`retry_policy.SITE_SYNC_RETRY`): the
delay the sync manager's line announced (`SiteSyncResult.retry_in`), else one drawn here;
a later successful sync of any trigger cancels it. Times come from
`clock` (aware UTC), so tests move time by hand and call `poke()` to have it looked at.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from updatesync.retry_policy import SITE_SYNC_RETRY
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.db_monitor import DatabaseMonitor
from updatesync.site.sync.inbox import Inbox, InboxWatcher
from updatesync.site.sync.outcome import SiteSyncResult

SCHEDULE = "schedule"
"""The trigger of a sync run by the schedule."""
MAX_WAIT_SECONDS = 60.0
"""The longest the worker sleeps without looking at the clock again."""

IDLE_RECHECK_SECONDS = 0.25
"""`wait_idle` looks again at least this often (seconds)."""

_log = logging.getLogger(__name__)


class SiteSync(Protocol):
    """What the site server needs of the sync manager (`SyncManager` is one). `retry`: the
    sync is the retry of a failed one (its trigger is the failed sync's)."""

    def run(self, trigger: str, *, retry: bool = False) -> SiteSyncResult: ...


class SyncSchedule(Protocol):
    """`IntervalSchedule` or `CronSchedule` of `updatesync.config.schedule`."""

    def next_run(self, after: datetime) -> datetime: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SyncWorker:
    """Runs `manager` from the inbox, the schedule and the retry timer, one sync at a time.

    `monitor` (optional) is started and stopped with the server and wakes it after each drop.
    `on_sync_done(result)` is called on the worker thread after each sync. `inbox_interval`
    is how often (seconds) the inbox is looked at for files dropped by hand.
    """

    def __init__(
        self,
        db: SiteDatabase | None,
        manager: SiteSync,
        inbox: Inbox,
        monitor: DatabaseMonitor | None = None,
        *,
        schedule: SyncSchedule | None = None,
        retry: timedelta = timedelta(minutes=60),
        clock: Callable[[], datetime] = _utc_now,
        on_sync_done: Callable[[SiteSyncResult], None] | None = None,
        inbox_interval: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if retry <= timedelta(0):
            raise ValueError(f"site server: retry interval must be positive, got {retry}")
        self.db = db
        self.manager = manager
        self.inbox = inbox
        self.monitor = monitor
        self.schedule = schedule
        self.retry = retry
        self.retry_policy = SITE_SYNC_RETRY.scaled(retry.total_seconds())
        self._rng = rng
        self.clock = clock
        self.on_sync_done = on_sync_done
        if monitor is not None and monitor.wake is not None:
            self.wake = monitor.wake
        else:
            self.wake = threading.Event()
            if monitor is not None:
                monitor.wake = self.wake
        self._watcher: InboxWatcher = inbox.watch(self.wake, interval=inbox_interval)
        self._state = threading.Condition()
        self._running: str | None = None
        self._busy = False  # looking at the inbox, or running a sync
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.next_scheduled: datetime | None = None
        """When the schedule runs next (None: no schedule, or not started)."""
        self.retry_at: datetime | None = None
        """When the retry of a failed sync is due (None: none pending)."""
        self.retry_trigger: str | None = None
        self.syncs_run = 0

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        with self._state:
            if self._thread is not None:
                raise RuntimeError(f"site server for inbox {self.inbox.path} is already started")
            self._stopping = False
            if self.schedule is not None:
                self.next_scheduled = self.schedule.next_run(self._now())
            recover = getattr(self.manager, "recover", None)
            if recover is not None and recover():
                # The last sync died with the process: it was reported failed; retry it. At
                # a child site that sync was the parent's request: it is run again at once.
                parent = getattr(self.manager, "parent_site", None)
                # The delay its retry line announced (`SyncReport.announced_retry`).
                report = getattr(self.manager, "report", None)
                announced = getattr(report, "announced_retry", None)
                delay = timedelta(0) if parent else self._retry_delay(announced)
                self.retry_at = self._now() + delay
                self.retry_trigger = parent or "SELF"
            self._thread = threading.Thread(
                target=self._work, name=f"site-server {self.inbox.path}", daemon=True
            )
        self._watcher.start()
        if self.monitor is not None:
            self.monitor.start()
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Stop the worker, the inbox watcher and the monitor. A sync that runs is let finish
        (up to `timeout`); requests still in the inbox stay for the next start. Returns
        False when the worker had not ended within `timeout`."""
        with self._state:
            self._stopping = True
            thread = self._thread
            self._state.notify_all()
        self.wake.set()
        self._watcher.stop()
        if self.monitor is not None:
            self.monitor.stop()
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            return False
        with self._state:
            self._thread = None
        return True

    def __enter__(self) -> SyncWorker:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def poke(self) -> None:
        """Have the worker look again now (after the clock was moved, for instance)."""
        self.wake.set()

    # -- state -----------------------------------------------------------------------------

    @property
    def running(self) -> str | None:
        """The trigger of the sync that runs now, or None."""
        with self._state:
            return self._running

    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError(f"site server clock gave {now} without a time zone; give it in UTC")
        return now

    def _request_pending(self) -> bool:
        if self.inbox.pending():
            return True
        if self.monitor is None:
            return False
        db = self.db if self.db is not None else self.monitor.db
        return db.sync.status().sync_now is not None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no sync runs and no request is pending (in the inbox, or as a `SyncNow`
        flag the monitor has yet to drop). A due schedule or retry the worker has not yet
        seen does not count. Returns False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._state:
            while self._busy or self._request_pending():
                if self._thread is None or self._stopping:
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                # The worker notifies after each look; the slice covers state that changes
                # without it (a flag cleared by the monitor after the worker looked).
                self._state.wait(
                    IDLE_RECHECK_SECONDS if left is None else min(left, IDLE_RECHECK_SECONDS)
                )
            return True

    # -- the worker ------------------------------------------------------------------------

    def _due(self, now: datetime) -> tuple[str, bool] | None:
        """The sync to run now from the inbox, schedule or retry (inbox first), as (its
        trigger, whether it is the retry of a failed one); the inbox request is consumed."""
        kind = self.inbox.take()
        if kind is not None:
            return kind, False
        if self.next_scheduled is not None and now >= self.next_scheduled:
            return SCHEDULE, False
        if self.retry_at is not None and now >= self.retry_at:
            return self.retry_trigger or SCHEDULE, True
        return None

    def _retry_delay(self, announced: float | None) -> timedelta:
        """How long after a failed sync its retry is due: what the manager's line announced
        (`announced`), else a jittered `retry` (the manager raised instead of reporting)."""
        if announced is None:
            announced = self.retry_policy.next_delay(1, self._rng)
        return timedelta(seconds=announced)

    def _sleep_seconds(self, now: datetime) -> float:
        times = [at for at in (self.next_scheduled, self.retry_at) if at is not None]
        if not times:
            return MAX_WAIT_SECONDS
        seconds = (min(times) - now).total_seconds()
        return max(0.0, min(seconds, MAX_WAIT_SECONDS))

    def _work(self) -> None:
        while True:
            # Cleared before the stop flag is read, so a stop() between the two still wakes
            # the wait below (clearing after the check lost that wake-up: stop hung).
            self.wake.clear()
            with self._state:
                if self._stopping:
                    self._state.notify_all()
                    return
            now: datetime | None = None
            try:
                now = self._now()
                with self._state:
                    # Marked running before the inbox is taken, so `wait_idle` never sees
                    # neither a request file nor a sync.
                    self._busy = True
                due = self._due(now)
            except Exception as exc:
                _log.error("site server for inbox %s: %s", self.inbox.path, exc)
                due = None
            with self._state:
                self._running = None if due is None else due[0]
                if due is None:
                    self._busy = False
                    self._state.notify_all()
            if due is not None:
                self._run(*due)
                continue
            self.wake.wait(MAX_WAIT_SECONDS if now is None else self._sleep_seconds(now))

    def _run(self, trigger: str, retry: bool) -> None:
        try:
            result = self.manager.run(trigger, retry=retry)
        except Exception as exc:
            _log.exception("site server: the %s sync raised", trigger)
            result = SiteSyncResult(
                succeeded=False,
                content_version=0,
                items_updated=0,
                cis_changed=0,
                seconds=0.0,
                error=f"{type(exc).__name__}: {exc}",
            )
        now = self._now()
        if trigger == SCHEDULE and self.schedule is not None:
            self.next_scheduled = self.schedule.next_run(now)
        if result.succeeded:
            self.retry_at = None
            self.retry_trigger = None
        else:
            self.retry_at = now + self._retry_delay(result.retry_in)
            self.retry_trigger = trigger
        self.syncs_run += 1
        if self.on_sync_done is not None:
            try:
                self.on_sync_done(result)
            except Exception:
                _log.exception("site server: on_sync_done raised")
        with self._state:
            self._running = None
            self._busy = False
            self._state.notify_all()
