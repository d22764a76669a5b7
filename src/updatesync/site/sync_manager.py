"""The sync manager (SMS_WSUS_SYNC_MANAGER, WSyncMgr.log) of a top-level site.

One sync, in the order and with the lines of SPEC section 2: the trigger, the SUPs from
the site control, 6701; 6704 and the default SUP's update server syncing from its upstream
(driven through the update server's admin API, never its database), the content version
raised only if that changed anything; 6705 and the site-database phase (categories, then
the subscribed updates as configuration items, delta since the last phase, everything on a
full sync), the content version raised in the same transaction as the CI changes, only if
there were any; 6702 and the summary. A failure gives 6703 (ISTR0 where, ISTR1 what), the
sync-failure alert, and leaves the site database as it was before the failed phase.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.site.alerts import AlertType
from updatesync.site.site_db import (
    MICROSOFT_UPDATE,
    Category,
    ConfigurationItem,
    ContentUpdate,
    SiteDatabase,
    SoftwareUpdatePoint,
    SUPSyncStatus,
)
from updatesync.site.status_messages import (
    IN_PROGRESS_STATES,
    SYNC_DONE,
    SYNC_FAILED,
    SYNC_SITE_DATABASE,
    SYNC_STARTED,
    SYNC_WSUS_SERVER,
    Severity,
    StatusMessage,
    format_statmsg,
    new_status_message,
    sync_failed,
)
from updatesync.site.update_server import (
    UpdateServerApi,
    UpdateServerSyncFailed,
    UpdateServerUnavailable,
)

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
    ) -> None:
        self.db = db
        self.settings = settings
        self.log = log
        self.api_for = api_for
        self.clock = clock

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
        """One sync. `trigger` is "schedule", "SELF" (delta) or "FULL"."""
        started = time.monotonic()
        full = trigger == "FULL"
        for line in TRIGGER_LINES.get(trigger, TRIGGER_LINES["SELF"]):
            self.log.info(line)
        sups = self._read_sups()
        self._status(SYNC_STARTED)
        default = sups[0] if sups else None
        try:
            if default is None:
                raise SyncFailure(
                    f"No software update point is installed at site {self.settings.site_code}",
                    "SMS_WSUS_SYNC_MANAGER.ReadSUPs",
                    GENERIC_ERROR,
                )
            with self.api_for(default) as api:
                wsus_items = self._update_server_phase(api, default, full)
                cis_changed, version = self._site_database_phase(api, default, full)
        except Exception as exc:
            return self._failed(exc, default, started)
        self._status(SYNC_DONE)
        self.db.cancel_alert(AlertType.SYNC_FAILURE)
        code = self.settings.site_code
        self.log.info(f"Sync succeeded. Setting sync alert to canceled state on site {code}")
        self.log.info(
            f"Updated {wsus_items} items in SMS database, new update source content version "
            f"is {version}"
        )
        seconds = time.monotonic() - started
        self.log.info(f"Sync time: {format_sync_time(seconds)}")
        return SiteSyncResult(True, version, wsus_items, cis_changed, seconds)

    def _read_sups(self) -> list[SoftwareUpdatePoint]:
        self.log.info(f"Read SUPs from SCF for {self.settings.site_fqdn.upper()}")
        sups = [s for s in self.db.sups() if s.active]
        self.log.info(f"Found {len(sups)} SUPs")
        for sup in sups:
            self.log.info(f"Found active SUP {sup.fqdn.upper()} from SCF File.")
        return sups

    # -- phase 1: the update server ---------------------------------------------------------

    def _update_server_phase(
        self, api: UpdateServerApi, sup: SoftwareUpdatePoint, full: bool
    ) -> int:
        self._status(SYNC_WSUS_SERVER)
        self.log.info(f"Synchronizing WSUS server {sup.fqdn} ...")
        self.log.info("sync: Starting WSUS synchronization")
        reporter = _WsusProgress(self.log)
        try:
            outcome = api.synchronize(
                full=full,
                products=self.settings.products,
                classifications=self.settings.classifications,
                languages=self.settings.languages,
                progress=reporter,
            )
        except UpdateServerUnavailable as exc:
            raise SyncFailure(exc.cause, f"UpdateServer {exc.url}", CANNOT_CONNECT) from exc
        except UpdateServerSyncFailed as exc:
            raise SyncFailure(
                exc.error, f"UpdateServer {exc.url}.Synchronize", GENERIC_ERROR
            ) from exc
        reporter.finish()
        self.log.info(f"Done synchronizing WSUS Server {sup.fqdn}")
        if outcome.changed:
            version = self.db.content_version(self.settings.update_source) + 1
            self.db.set_content_version(version, source_id=self.settings.update_source)
            self._content_version_line(version)
        result: dict[str, Any] = outcome.result
        return int(result.get("new_revisions", 0)) + int(result.get("changed_revisions", 0))

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

    def _status(self, message_id: int) -> None:
        message = new_status_message(
            message_id,
            site_code=self.settings.site_code,
            system=self.settings.site_fqdn.upper(),
            time=self.clock(),
        )
        self._send(message)
        self.db.record_sync_state(message_id, at=message.time)
        self._sup_status(message_id, message.time)

    def _sup_status(self, message_id: int, at: datetime, error: int | None = None) -> None:
        """The default SUP's row of SMS_SUPSyncStatus (SPEC section 5)."""
        sups = self.db.sups()
        if not sups:
            return
        held = {s.wsus_server_name: s for s in self.db.supsync_statuses()}
        before = held.get(sups[0].fqdn)
        succeeded = message_id == SYNC_DONE
        self.db.upsert_supsync_status(
            SUPSyncStatus(
                site_code=self.settings.site_code,
                wsus_server_name=sups[0].fqdn,
                wsus_source_server=self.settings.source_name,
                last_sync_state=message_id,
                last_sync_state_time=at,
                last_sync_error_code=error
                if error is not None
                else (0 if succeeded else (before.last_sync_error_code if before else None)),
                last_successful_sync_time=at
                if succeeded
                else (before.last_successful_sync_time if before else None),
                sync_catalog_version=self.db.content_version(self.settings.update_source),
                # A top-level SUP has no replication link: healthy by definition.
                replication_link_status=0,
                last_replication_link_check_time=at,
            )
        )

    def _send(self, message: StatusMessage) -> None:
        self.db.add_status_message(message)
        if message.severity is Severity.ERROR:
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
        self.last = (done, total)
        percent = done * 100 // total
        if done >= total:
            # WSyncMgr writes the 100% line when the count completes and again at the end.
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
