"""The sync manager (SMS_WSUS_SYNC_MANAGER, WSyncMgr.log) of a site.

At the top-level site, one sync goes in the order and with the lines of SPEC section 2: the
trigger, the SUPs from the site control, 6701; 6704 and the default SUP's update server
syncing from its upstream (driven through the update server's admin API, never its
database), the content version raised only if that changed anything; 6705 and the
site-database phase (categories, then the subscribed updates as configuration items, delta
since the last phase, everything on a full sync), the content version raised in the same
transaction as the CI changes, only if there were any; 6702 and the summary; then the
replica SUPs one at a time (6706 each) and the notification of the child sites.

At a child site (SPEC section 3), woken by the parent's notification: only the update-server
phase runs, from the parent's default SUP; the configuration items come by database
replication, and the sync waits (within the replication timeout) until replication holds
the parent's content version before it claims it; then the replicas, 6702,
`Successfully synced site with parent CS1, version N`, and the notification of its own
children (a primary's secondaries).

A failure gives 6703 (ISTR0 where, ISTR1 what), the sync-failure alert, and leaves the site
database as it was before the failed phase. A failing replica is reported (6703, its SUP's
sync status, an alert naming it) without undoing the site's successful sync.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from updatesync.config.fault_injection import fault_point
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.logs.status_messages import (
    IN_PROGRESS_STATES,
    SYNC_DONE,
    SYNC_FAILED,
    SYNC_REPLICA,
    SYNC_SITE_DATABASE,
    SYNC_STARTED,
    SYNC_WSUS_SERVER,
    MessageSeverity,
    StatusMessage,
    format_statmsg,
    new_status_message,
    sync_failed,
)
from updatesync.site.database.site_db import (
    MICROSOFT_UPDATE,
    Category,
    ConfigurationItem,
    ContentUpdate,
    SiteDatabase,
    SoftwareUpdatePoint,
    SUPSyncStatus,
)
from updatesync.site.sync.sup_client import (
    UpdateServerApi,
    UpdateServerSyncFailed,
    UpdateServerUnavailable,
)
from updatesync.site.watch.alerts import AlertType

COMPONENT = "SMS_WSUS_SYNC_MANAGER"
GENERIC_ERROR = 0x80131500
"""What a .NET exception carries when nothing more precise is known (COR_E_EXCEPTION)."""
CANNOT_CONNECT = 0x80072EFD
"""WinHTTP's 'cannot connect' (ERROR_WINHTTP_CANNOT_CONNECT), for an unreachable server."""

PHASE_NAMES = {
    SYNC_STARTED: "the start of the sync (6701)",
    SYNC_WSUS_SERVER: "the update server phase (6704)",
    SYNC_SITE_DATABASE: "the site database phase (6705)",
}

WAIT_FOR_REPLICATION = "SMS_WSUS_SYNC_MANAGER.WaitForReplication"
"""ISTR0 of a child's failure to get the parent's content version by database replication."""

TRIGGER_LINES = {
    "schedule": (
        "Wakeup for scheduled regular sync",
        "Starting Sync",
        "Performing sync on regular schedule",
    ),
    "SELF": (
        "Wakeup by inbox drop",
        "Found local sync request file",
        "Starting Sync",
        "Performing sync on local request",
    ),
    "FULL": (
        "Wakeup by inbox drop",
        "Found local sync request file",
        "Starting Sync",
        "Performing sync on local request",
    ),
}


@dataclass(frozen=True, slots=True)
class SiteSyncSettings:
    """What the site's sync manager needs to know about its site and its criteria."""

    site_code: str
    site_fqdn: str
    products: tuple[str, ...] = ()
    classifications: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    retry_minutes: int = 60
    update_source: str = MICROSOFT_UPDATE
    source_name: str = "Microsoft Update"
    """WSUSSourceServer of the default SUP: "Microsoft Update" at the top, else the upstream."""
    parent_site: str | None = None
    """The parent site's code at a child site; None at the top-level site."""
    default_is_replica: bool = False
    """The default SUP syncs as a WSUS replica (a secondary site's SUP)."""
    children: tuple[str, ...] = ()
    """The child sites notified after each successful sync, in hierarchy order."""
    outbox: Path | None = None
    """`inboxes/WSyncMgr.box/outbox`, where the notification for the children is written."""
    replication_timeout_seconds: float = 1800.0
    """How long a child's sync waits for database replication to bring the parent's version."""


class ChildNotifier(Protocol):
    """What the sync manager needs of the replication manager (`ReplicationManager`)."""

    box: Path

    def replicate(self, file: Path, to: Sequence[str]) -> str: ...


class ParentReplication(Protocol):
    """A child site's database replication from its parent."""

    def catch_up(self, timeout: float) -> int:
        """Pull until the site holds what the parent held; the parent's content version."""
        ...

    def link_state(self) -> tuple[int, datetime | None]:
        """(ReplicationLinkStatus 0/1/2, last check time)."""
        ...


@dataclass(frozen=True, slots=True)
class SiteSyncResult:
    succeeded: bool
    content_version: int
    items_updated: int
    cis_changed: int
    seconds: float
    error: str | None = None


class SyncFailure(Exception):
    """A phase failed: `source` is where (ISTR0), the message what (ISTR1)."""

    def __init__(self, message: str, source: str, last_error: int) -> None:
        super().__init__(message)
        self.source = source
        self.last_error = last_error


class SyncManager:
    """Runs the syncs of one top-level site."""

    def __init__(
        self,
        db: SiteDatabase,
        settings: SiteSyncSettings,
        log: CMTraceLog,
        api_for: Callable[[SoftwareUpdatePoint], UpdateServerApi],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        notifier: ChildNotifier | None = None,
        replication: ParentReplication | None = None,
    ) -> None:
        if settings.parent_site is not None and replication is None:
            raise ValueError(
                f"sync manager of child site {settings.site_code}: give the database "
                f"replication from its parent {settings.parent_site}"
            )
        if settings.children and (notifier is None or settings.outbox is None):
            raise ValueError(
                f"sync manager of site {settings.site_code}: it has child sites "
                f"({', '.join(settings.children)}); give the replication manager and the outbox"
            )
        self.db = db
        self.settings = settings
        self.log = log
        self.api_for = api_for
        self.clock = clock
        self.notifier = notifier
        self.replication = replication

    @property
    def parent_site(self) -> str | None:
        return self.settings.parent_site

    # -- start-up ---------------------------------------------------------------------

    def recover(self) -> bool:
        """At start-up: if the last sync never ended (the process died inside it), report it
        as failed: 6703, the alert, the retry line. Its phase left nothing half-applied (each
        phase is one transaction). Returns True when there was such a sync."""
        state = self.db.sync_status().last_sync_state
        if state not in IN_PROGRESS_STATES:
            return False
        phase = PHASE_NAMES.get(state, f"state {state}")
        failure = SyncFailure(
            f"The synchronization ended without completing: the site server stopped during {phase}",
            "SMS_WSUS_SYNC_MANAGER.Startup",
            GENERIC_ERROR,
        )
        sups = self.db.sups()
        self._failed(failure, sups[0] if sups else None, time.monotonic())
        return True

    # -- one sync ---------------------------------------------------------------------

    def run(self, trigger: str) -> SiteSyncResult:
        """One sync. `trigger` is "schedule", "SELF" (delta), "FULL", or the parent site's
        code (its notification, at a child site)."""
        started = time.monotonic()
        full = trigger == "FULL"
        for line in self._trigger_lines(trigger):
            self.log.info(line)
        sups = self._read_sups()
        self._status(SYNC_STARTED)
        default = sups[0] if sups else None
        parent = self.settings.parent_site
        failed_replicas: list[str] = []
        try:
            if default is None:
                raise SyncFailure(
                    f"No software update point is installed at site {self.settings.site_code}",
                    "SMS_WSUS_SYNC_MANAGER.ReadSUPs",
                    GENERIC_ERROR,
                )
            if parent is None:
                with self.api_for(default) as api:
                    wsus_items = self._update_server_phase(api, default, full)
                    cis_changed, version = self._site_database_phase(api, default, full)
            else:
                self.log.info(f"Synchronizing WSUS server {default.fqdn.upper()}")
                with self.api_for(default) as api:
                    wsus_items = self._update_server_phase(
                        api, default, full, replica=self.settings.default_is_replica
                    )
                version = self._wait_for_replication(parent)
                cis_changed = 0
                failed_replicas = self._replicas(sups[1:], in_progress=True)
        except Exception as exc:
            return self._failed(exc, default, started)
        self._status(SYNC_DONE)
        self._cancel_sync_alerts(keep=failed_replicas)
        code = self.settings.site_code
        self.log.info(f"Sync succeeded. Setting sync alert to canceled state on site {code}")
        if parent is None:
            self.log.info(
                f"Updated {wsus_items} items in SMS database, new update source content "
                f"version is {version}"
            )
        else:
            self.log.info(f"Successfully synced site with parent {parent}, version {version}")
        seconds = time.monotonic() - started
        self.log.info(f"Sync time: {format_sync_time(seconds)}")
        if parent is None:
            self._replicas(sups[1:], in_progress=False)
        self._notify_children()
        return SiteSyncResult(True, version, wsus_items, cis_changed, time.monotonic() - started)

    def _trigger_lines(self, trigger: str) -> tuple[str, ...]:
        if trigger in TRIGGER_LINES:
            return TRIGGER_LINES[trigger]
        return (
            "Wakeup by inbox drop",
            f"Found parent sync notification file {trigger}.SYN.",
            "Starting Sync",
            "Performing sync on parent request",
        )

    def _read_sups(self) -> list[SoftwareUpdatePoint]:
        self.log.info(f"Read SUPs from SCF for {self.settings.site_fqdn.upper()}")
        sups = [s for s in self.db.sups() if s.active]
        self.log.info(f"Found {len(sups)} SUPs")
        for sup in sups:
            self.log.info(f"Found active SUP {sup.fqdn.upper()} from SCF File.")
        return sups

    # -- phase 1: the update server ---------------------------------------------------------

    def _update_server_phase(
        self, api: UpdateServerApi, sup: SoftwareUpdatePoint, full: bool, replica: bool = False
    ) -> int:
        self._status(SYNC_WSUS_SERVER)
        self.log.info(f"Synchronizing WSUS server {sup.fqdn} ...")
        outcome = self._synchronize(api, full, replica)
        self.log.info(f"Done synchronizing WSUS Server {sup.fqdn}")
        if outcome.changed and self.settings.parent_site is None:
            # At a child the version comes from the parent, with the CIs (database replication).
            version = self.db.content_version(self.settings.update_source) + 1
            self.db.set_content_version(version, source_id=self.settings.update_source)
            self._content_version_line(version)
        result: dict[str, Any] = outcome.result
        return int(result.get("new_revisions", 0)) + int(result.get("changed_revisions", 0))

    def _synchronize(self, api: UpdateServerApi, full: bool, replica: bool) -> Any:
        """Have the update server sync and follow it, with WSyncMgr's `sync:` lines."""
        if replica:
            self.log.info("sync: Starting Replica WSUS synchronization")
            reporter: _WsusProgress = _ReplicaProgress(self.log)
        else:
            self.log.info("sync: Starting WSUS synchronization")
            reporter = _WsusProgress(self.log)
        try:
            outcome = api.synchronize(
                full=full,
                products=self.settings.products,
                classifications=self.settings.classifications,
                languages=self.settings.languages,
                progress=reporter,
                replica=replica,
            )
        except UpdateServerUnavailable as exc:
            raise SyncFailure(exc.cause, f"UpdateServer {exc.url}", CANNOT_CONNECT) from exc
        except UpdateServerSyncFailed as exc:
            raise SyncFailure(
                exc.error, f"UpdateServer {exc.url}.Synchronize", GENERIC_ERROR
            ) from exc
        reporter.finish()
        return outcome

    # -- a child site: the parent's version by database replication ---------------------------

    def _wait_for_replication(self, parent: str) -> int:
        """Wait until database replication holds what the parent holds; claim its version."""
        assert self.replication is not None
        timeout = self.settings.replication_timeout_seconds
        try:
            version = self.replication.catch_up(timeout)
        except Exception as exc:
            raise SyncFailure(
                f"Database replication from parent site {parent} did not bring its "
                f"configuration items within {format_sync_time(timeout)}: {exc}",
                WAIT_FOR_REPLICATION,
                GENERIC_ERROR,
            ) from exc
        self.db.set_content_version(version, source_id=self.settings.update_source)
        self._content_version_line(version)
        return version

    # -- replicas -------------------------------------------------------------------------

    def _replicas(self, replicas: Sequence[SoftwareUpdatePoint], *, in_progress: bool) -> list[str]:
        """Sync each replica SUP from the default SUP, one at a time. A replica that fails is
        reported (6703, its SUP's status, an alert) and the others still run. Returns the
        FQDNs of those that failed."""
        failed: list[str] = []
        if not replicas:
            return failed
        self.log.info("Synchronizing replica WSUS servers")
        for sup in replicas:
            message = self._message(SYNC_REPLICA)
            if in_progress:
                self.db.record_sync_state(SYNC_REPLICA, at=message.time)
            self._sup_status(SYNC_REPLICA, message.time, sup=sup)
            self.log.info(f"Synchronizing WSUS server {sup.fqdn} ...")
            try:
                with self.api_for(sup) as api:
                    self._synchronize(api, False, True)
            except Exception as exc:
                self._replica_failed(sup, exc)
                failed.append(sup.fqdn)
                continue
            self.log.info(f"Done synchronizing WSUS Server {sup.fqdn}")
            self._sup_status(SYNC_DONE, self.clock(), sup=sup)
        return failed

    def _cancel_sync_alerts(self, keep: Sequence[str]) -> None:
        """Set the site's sync-failure alerts to canceled, except those of the replicas that
        failed in this sync (at a child site they run before the site's 6702)."""
        if not keep:
            self.db.cancel_alert(AlertType.SYNC_FAILURE)
            return
        for alert in self.db.alerts(
            site_code=self.settings.site_code, alert_type=AlertType.SYNC_FAILURE
        ):
            if alert.is_raised and alert.instance not in keep:
                self.db.cancel_alert(AlertType.SYNC_FAILURE, alert.instance)

    def _replica_failed(self, sup: SoftwareUpdatePoint, exc: Exception) -> None:
        if isinstance(exc, SyncFailure):
            source, last_error = exc.source, exc.last_error
        else:
            source, last_error = _origin(exc), GENERIC_ERROR
        what = str(exc) or type(exc).__name__
        self.log.error(
            f"Failed to synchronize replica WSUS server {sup.fqdn}: {what}. Source: {source}"
        )
        message = sync_failed(
            site_code=self.settings.site_code,
            system=self.settings.site_fqdn.upper(),
            where=source,
            what=f"Replica WSUS server {sup.fqdn}: {what}",
            last_error=last_error,
            time=self.clock(),
        )
        self._send(message)
        self._sup_status(SYNC_FAILED, message.time, error=last_error, sup=sup)
        self.db.raise_alert(AlertType.SYNC_FAILURE, sup.fqdn)

    # -- child sites ----------------------------------------------------------------------

    def _notify_children(self) -> None:
        """Write `outbox/<SITE>.SYN` and hand it to file replication for the child sites."""
        children = self.settings.children
        if not children:
            return
        assert self.notifier is not None and self.settings.outbox is not None
        listed = ", ".join(children)
        self.log.info(f"Sending sync notification to child site(s): {listed}")
        outbox = self.settings.outbox
        notification = outbox / f"{self.settings.site_code}.SYN"
        try:
            outbox.mkdir(parents=True, exist_ok=True)
            temp = outbox / f"~{notification.name}.{os.getpid()}"
            version = self.db.content_version(self.settings.update_source)
            temp.write_text(f"content_version={version}\n", encoding="ascii")
            os.replace(temp, notification)
            self.log.info(
                f"SQL Replication type has not been set for {notification}, replicating to "
                f"({listed}), inbox: {self.notifier.box}"
            )
            self.notifier.replicate(notification, children)
            notification.unlink(missing_ok=True)
        except Exception as exc:
            # The site's sync stands; the children sync at their next notification.
            self.log.error(f"Failed to send the sync notification to child site(s) {listed}: {exc}")

    # -- phase 2: the site database ----------------------------------------------------------

    def _site_database_phase(
        self, api: UpdateServerApi, sup: SoftwareUpdatePoint, full: bool
    ) -> tuple[int, int]:
        self._status(SYNC_SITE_DATABASE)
        self.log.info(f"Synchronizing SMS database with WSUS server {sup.fqdn} ...")
        since = 0 if full else (self.db.sync_status().sync_catalog_version or 0)
        try:
            counter = api.change_counter()
            categories = api.changed_categories(since)
            self.log.info("sync: SMS synchronizing categories")
            with self.db.update_content(self.settings.update_source) as content:
                content.upsert_categories(
                    Category(
                        c["update_id"],
                        c["category_type"] or "",
                        c["title"],
                        (c["parents"] or [None])[0],
                    )
                    for c in categories
                )
                self.log.info(
                    f"sync: SMS synchronizing categories, processed {len(categories)} out of "
                    f"{len(categories)} items (100%)"
                )
                self.log.info("sync: SMS synchronizing updates")
                processed = changed = 0
                batch: list[ConfigurationItem] = []
                for item in api.changed_updates(
                    since,
                    products=self.settings.products,
                    classifications=self.settings.classifications,
                ):
                    batch.append(_configuration_item(item))
                    processed += 1
                    if len(batch) >= 500:
                        changed += self._write_cis(content, batch)
                        batch.clear()
                changed += self._write_cis(content, batch)
                if processed:
                    self.log.info(
                        f"sync: SMS synchronizing updates, processed {processed} out of "
                        f"{processed} items (100%)"
                    )
                fault_point("site-database-commit")  # a test hook, off unless set
        except UpdateServerUnavailable as exc:
            raise SyncFailure(exc.cause, f"UpdateServer {exc.url}", CANNOT_CONNECT) from exc
        self.log.info(f"Done synchronizing SMS with WSUS Server {sup.fqdn}")
        version = content.change.content_version
        if content.change.changed:
            self._content_version_line(version)
        self.db.record_sync_state(SYNC_SITE_DATABASE, catalog_version=counter)
        return changed, version

    def _write_cis(self, content: ContentUpdate, batch: list[ConfigurationItem]) -> int:
        """Write a batch; one `Synchronizing update` line per CI that was new or changed."""
        titles = {ci.update_id: ci.title for ci in batch}
        written = content.upsert_cis(batch)
        for update_id in written:
            self.log.info(f"Synchronizing update {update_id} - {titles[update_id]}")
        return len(written)

    # -- failure ------------------------------------------------------------------------

    def _failed(
        self, exc: Exception, sup: SoftwareUpdatePoint | None, started: float
    ) -> SiteSyncResult:
        if isinstance(exc, SyncFailure):
            source, last_error = exc.source, exc.last_error
        else:
            source, last_error = _origin(exc), GENERIC_ERROR
        what = str(exc) or type(exc).__name__
        self.log.error(f"Sync failed: {what}. Source: {source}")
        message = sync_failed(
            site_code=self.settings.site_code,
            system=self.settings.site_fqdn.upper(),
            where=source,
            what=what,
            last_error=last_error,
            time=self.clock(),
        )
        self._send(message)
        self.db.record_sync_state(SYNC_FAILED, error_code=last_error, error_text=what)
        self._sup_status(SYNC_FAILED, message.time, error=last_error)
        self.db.raise_alert(AlertType.SYNC_FAILURE, (sup.fqdn if sup else self.settings.site_fqdn))
        self.log.error(f"Sync failed. Will retry in {self.settings.retry_minutes} minutes")
        version = self.db.content_version(self.settings.update_source)
        return SiteSyncResult(False, version, 0, 0, time.monotonic() - started, what)

    # -- lines and messages -----------------------------------------------------------------

    def _content_version_line(self, version: int) -> None:
        self.log.info(
            f"Set content version of update source {self.settings.update_source} for site "
            f"{self.settings.site_code} to {version}"
        )

    def _message(self, message_id: int) -> StatusMessage:
        message = new_status_message(
            message_id,
            site_code=self.settings.site_code,
            system=self.settings.site_fqdn.upper(),
            time=self.clock(),
        )
        self._send(message)
        return message

    def _status(self, message_id: int) -> None:
        message = self._message(message_id)
        self.db.record_sync_state(message_id, at=message.time)
        self._sup_status(message_id, message.time)

    def _sup_status(
        self,
        message_id: int,
        at: datetime,
        error: int | None = None,
        *,
        sup: SoftwareUpdatePoint | None = None,
    ) -> None:
        """A SUP's row of SMS_SUPSyncStatus (SPEC section 5): the default SUP's unless `sup`
        names a replica."""
        sups = self.db.sups()
        if not sups:
            return
        target = sup or sups[0]
        source = self.settings.source_name if sup is None else sups[0].fqdn
        held = {s.wsus_server_name: s for s in self.db.supsync_statuses()}
        before = held.get(target.fqdn)
        succeeded = message_id == SYNC_DONE
        link_status, checked = (0, at)
        if self.replication is not None:
            link_status, checked = self.replication.link_state()
        self.db.upsert_supsync_status(
            SUPSyncStatus(
                site_code=self.settings.site_code,
                wsus_server_name=target.fqdn,
                wsus_source_server=source,
                last_sync_state=message_id,
                last_sync_state_time=at,
                last_sync_error_code=error
                if error is not None
                else (0 if succeeded else (before.last_sync_error_code if before else None)),
                last_successful_sync_time=at
                if succeeded
                else (before.last_successful_sync_time if before else None),
                sync_catalog_version=self.db.content_version(self.settings.update_source),
                # The database replication link from the parent; a top-level site has none:
                # healthy by definition.
                replication_link_status=link_status,
                last_replication_link_check_time=checked,
            )
        )

    def _send(self, message: StatusMessage) -> None:
        self.db.add_status_message(message)
        if message.severity is MessageSeverity.ERROR:
            self.log.error(format_statmsg(message))
        else:
            self.log.info(format_statmsg(message))


class _WsusProgress:
    """Turns the update server's progress into WSyncMgr's `sync:` lines."""

    def __init__(self, log: CMTraceLog) -> None:
        self.log = log
        self.phase: str | None = None
        self.last: tuple[int, int] | None = None
        self.logged_percent = -1

    def __call__(self, phase: str, done: int, total: int, eta: float | None) -> None:
        if phase != self.phase:
            self.finish()
            self.phase, self.last, self.logged_percent = phase, None, -1
            self.log.info(f"sync: WSUS synchronizing {phase}")
        if not total or phase != "updates":
            return
        repeated = self.last == (done, total)
        self.last = (done, total)
        percent = done * 100 // total
        if done >= total:
            # WSyncMgr writes the 100% line when the count completes and again at the end;
            # the same complete count reported again (a later state change) adds nothing.
            if repeated:
                return
            self.log.info(
                f"sync: WSUS synchronizing updates, processed {total} out of {total} items (100%)"
            )
            return
        if percent >= self.logged_percent + 10 and done < total:
            self.logged_percent = percent
            line = (
                f"sync: WSUS synchronizing updates, processed {done} out of {total} items "
                f"({percent}%)"
            )
            if eta is not None:
                line += f", ETA in {format_eta(eta)}"
            self.log.info(line)

    def finish(self) -> None:
        if self.phase == "updates" and self.last is not None:
            done, total = self.last
            if done >= total:
                self.log.info(
                    f"sync: WSUS synchronizing updates, processed {total} out of {total} items "
                    "(100%)"
                )
            self.last = None


class _ReplicaProgress(_WsusProgress):
    """A replica's sync as WSyncMgr shows it: the "other items" (GetDeployments). A long
    metadata sync of the replica also gets a line every 10% (`sync: Replica WSUS
    synchronizing updates, processed ...`), which WSyncMgr does not write: without it a
    large first sync of a replica shows nothing for minutes."""

    def __call__(self, phase: str, done: int, total: int, eta: float | None) -> None:
        if phase == "updates" and total and done < total:
            percent = done * 100 // total
            if done and percent >= self.logged_percent + 10:
                self.logged_percent = percent
                line = (
                    f"sync: Replica WSUS synchronizing updates, processed {done} out of {total} "
                    f"items ({percent}%)"
                )
                if eta is not None:
                    line += f", ETA in {format_eta(eta)}"
                self.log.info(line)
            return
        if phase != "other items":
            return
        if phase != self.phase:
            self.phase, self.last = phase, None
            self.log.info("sync: Replica WSUS synchronizing other items")
        if not total or not done or (done, total) == self.last:
            return  # nothing counted yet, or nothing new
        self.last = (done, total)
        self.log.info(
            f"sync: Replica WSUS synchronizing other items, processed {done} out of {total} "
            f"items ({done * 100 // total}%)"
        )

    def finish(self) -> None:
        self.last = None


def _configuration_item(item: dict[str, Any]) -> ConfigurationItem:
    return ConfigurationItem(
        update_id=item["update_id"],
        revision=item["revision"],
        title=item["title"],
        xml_sha256=item["xml_sha256"],
        kb_article=item["kb_article"],
        bulletin=item["security_bulletin"],
        severity=item["msrc_severity"],
        creation_date=item["creation_date"],
        products=tuple(item["products"]),
        classifications=tuple(item["classifications"]),
        is_superseded=item["is_superseded"],
        is_expired=item["is_expired"],
    )


def _origin(exc: BaseException) -> str:
    """Where an unexpected exception was raised, as `module.function` (ISTR0)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__qualname__
    frame = frames[-1]
    module = os.path.splitext(os.path.basename(frame.filename))[0]
    return f"{module}.{frame.name}"


def format_sync_time(seconds: float) -> str:
    """`0d00h03m53s`, as WSyncMgr writes the sync time."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d{hours:02d}h{minutes:02d}m{secs:02d}s"


def format_eta(seconds: float) -> str:
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"
