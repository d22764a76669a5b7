"""The database notification monitor (SMS_DATABASE_NOTIFICATION_MONITOR, SMSDBMON.log).

It turns the `SyncNow` flag of `Update_SyncStatus` into a request file in the sync manager's
inbox (SPEC section 2.1), with the two lines the real monitor writes:

    RCV: UPDATE on Update_SyncStatus for SyncNotif_WSyncMgr [SELF][47788]
    SND: Dropped E:\\ConfigMgr\\inboxes\\WSyncMgr.box\\SELF.SYN [47788]

(the path is written with this machine's separators). The number is a notification number
that rises by one per notification and survives restarts (kept in a small file).

Order matters: the file is dropped first (atomically, see `Inbox.drop`) and the flag cleared
only after, and only if it still holds the same request (same value, same request time). So a
monitor that dies between the two sees the flag again when it starts and drops again (the
drop is idempotent), and a request made meanwhile (a FULL after a SELF) stays set and is
dropped on the next look.

The monitor looks at the flag every `poll_interval` seconds on its own thread, and at once
when `notify()` is called (the provider calls it after `SyncNow`).

With `watch_subscription`, it also wakes the WSUS configuration manager when the site's
subscription changes (a new `version` of `db.wsus.subscription()`), as SMSDBMON does:

    RCV: UPDATE on CI_UpdateCategorySubscription for SubNotify_iu_WCM [2][47789]
    SND: Dropped E:\\ConfigMgr\\inboxes\\WSUSMgr.box\\2.CSB [47789]
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.security.private_files import private_dir
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.inbox import Inbox
from updatesync.site.sync.wcm import WcmInbox

NOTIFICATION = "SyncNotif_WSyncMgr"
SUBSCRIPTION_NOTIFICATION = "SubNotify_iu_WCM"
COUNTER_FILE = "SMSDBMON.notification"
"""Beside the inbox folder (in `inboxes`): the last notification number given."""
SUBSCRIPTION_FILE = "SMSDBMON.subscription"
"""Beside WSUSMgr.box: the last subscription version dropped for the WSUS configuration
manager."""

_log = logging.getLogger(__name__)


class DatabaseMonitorError(Exception):
    """The monitor could not do its work; the message says what and where."""


class NotificationCounter:
    """A number that rises by one per call of `next()`, kept in the file at `path` (written
    to a temporary file and renamed, so a crash leaves the old or the new number)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def current(self) -> int:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise DatabaseMonitorError(f"read notification number from {self.path}: {exc}") from exc
        try:
            return int(text)
        except ValueError:
            raise DatabaseMonitorError(
                f"notification number file {self.path} holds {text[:40]!r}, not a number"
            ) from None

    def next(self) -> int:
        with self._lock:
            value = self.current() + 1
            self._write(value)
            return value

    def set(self, value: int) -> None:
        with self._lock:
            self._write(value)

    def _write(self, value: int) -> None:
        """Call with the lock held."""
        temp = self.path.with_name(f"{self.path.name}.tmp")
        try:
            private_dir(self.path.parent)
            with open(temp, "w", encoding="ascii") as handle:
                handle.write(f"{value}\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            raise DatabaseMonitorError(
                f"write notification number {value} to {self.path}: {exc}"
            ) from exc


class DatabaseMonitor:
    """Watches the `SyncNow` flag of `db`'s site and drops the request into `inbox_dir`.

    `log` is the SMSDBMON log (component SMS_DATABASE_NOTIFICATION_MONITOR). `wake`, when
    given, is set after each drop so the sync manager need not wait for its inbox watcher.
    `counter_path` is where the notification number is kept (default: `SMSDBMON.notification`
    beside the inbox folder).
    """

    def __init__(
        self,
        db: SiteDatabase,
        inbox_dir: str | os.PathLike[str] | Inbox,
        log: CMTraceLog,
        *,
        poll_interval: float = 5.0,
        wake: threading.Event | None = None,
        counter_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError(f"database monitor: poll_interval must be > 0, got {poll_interval}")
        self.db = db
        self.inbox = inbox_dir if isinstance(inbox_dir, Inbox) else Inbox(inbox_dir)
        self.log = log
        self.poll_interval = poll_interval
        self.wake = wake
        self.counter = NotificationCounter(
            counter_path if counter_path is not None else self.inbox.path.parent / COUNTER_FILE
        )
        self._notified = threading.Event()
        self._stop = threading.Event()
        self._check_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wcm: tuple[WcmInbox, NotificationCounter, Callable[[], None]] | None = None

    def watch_subscription(self, inbox: WcmInbox, on_drop: Callable[[], None]) -> None:
        """Also drop `<version>.CSB` into `inbox` (WSUSMgr.box) for every subscription version
        not notified yet (kept in `SMSDBMON.subscription` beside it), then call `on_drop`."""
        seen = NotificationCounter(inbox.path.parent / SUBSCRIPTION_FILE)
        self._wcm = (inbox, seen, on_drop)

    # -- one look --------------------------------------------------------------------------

    def _read_flag(self) -> tuple[str | None, Any]:
        return self.db.sync.pending_request()

    def _clear_if_same(self, flag: str, requested_at: Any) -> bool:
        """Clear the flag if it still holds `flag` requested at `requested_at`; False when a
        newer request replaced it meanwhile (it stays set for the next look)."""
        return self.db.sync.clear_request(flag, requested_at)

    def check(self) -> list[str]:
        """Look at the flag now; for each request found, drop its file, write the two log
        lines and clear the flag. Returns the kinds dropped (usually none or one; two when a
        newer request arrived during the drop). Then the subscription, when watched."""
        dropped = self._check_flag()
        if self._wcm is not None:
            self._check_subscription(*self._wcm)
        return dropped

    def _check_subscription(
        self, inbox: WcmInbox, seen: NotificationCounter, on_drop: Callable[[], None]
    ) -> None:
        with self._check_lock:
            version = self.db.wsus.subscription().version
            if version <= seen.current():
                return
            number = self.counter.next()
            self.log.info(
                f"RCV: UPDATE on CI_UpdateCategorySubscription for {SUBSCRIPTION_NOTIFICATION} "
                f"[{version}][{number}]"
            )
            try:
                path = inbox.drop(version)
            except OSError as exc:
                raise DatabaseMonitorError(f"drop {version}.CSB into {inbox.path}: {exc}") from exc
            self.log.info(f"SND: Dropped {path} [{number}]")
            seen.set(version)
        on_drop()

    def _check_flag(self) -> list[str]:
        dropped: list[str] = []
        with self._check_lock:
            for _ in range(10):
                flag, requested_at = self._read_flag()
                if flag is None:
                    break
                number = self.counter.next()
                self.log.info(
                    f"RCV: UPDATE on Update_SyncStatus for {NOTIFICATION} [{flag}][{number}]"
                )
                path = self.inbox.drop(flag)
                self.log.info(f"SND: Dropped {path} [{number}]")
                dropped.append(flag)
                if self.wake is not None:
                    self.wake.set()
                cleared = self._clear_if_same(flag, requested_at)
                if self.wake is not None:
                    self.wake.set()  # again: whoever waits for the flag to clear looks now
                if cleared:
                    break
            else:
                raise DatabaseMonitorError(
                    f"sync request flag of site {self.db.site_code}: still changing after "
                    f"{len(dropped)} drops into {self.inbox.path}; giving up for this look"
                )
        return dropped

    # -- the thread ------------------------------------------------------------------------

    def notify(self) -> None:
        """Look at the flag now rather than at the next poll (the provider calls this)."""
        self._notified.set()

    def start(self) -> None:
        """Start looking on a daemon thread; the first look is at once (a flag left set by a
        monitor that died is dropped on start)."""
        if self._thread is not None:
            raise RuntimeError(f"database monitor of site {self.db.site_code} is already started")
        self._stop.clear()
        self._notified.set()
        self._thread = threading.Thread(
            target=self._loop, name=f"smsdbmon {self.db.site_code}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        self._notified.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._notified.wait(self.poll_interval)
            self._notified.clear()
            if self._stop.is_set():
                break
            try:
                self.check()
            except Exception as exc:  # keep watching; the next look tries again
                message = f"database monitor of site {self.db.site_code}: {exc}"
                _log.error("%s", message)
                with contextlib.suppress(Exception):
                    self.log.error(message)
