"""What a site's sync reports, and where: status messages with their STATMSG lines,
the site's sync state (Update_SyncStatus), each SUP's row of SMS_SUPSyncStatus, the
sync-failure alerts, and the WSyncMgr.log lines that go with them (SPEC sections 4 to 6);
after each SUP's sync, its consistency audit against its upstream (`audit`: 6707 and the
content-out-of-sync alert on a difference, the alert canceled when proven equal again).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from updatesync.logs.cmtrace import CMTraceLog, log_helper
from updatesync.logs.status_messages import (
    StatusMessage,
    format_statmsg,
    new_status_message,
    sync_failed,
)
from updatesync.retry_policy import SITE_SYNC_RETRY
from updatesync.site.database.models import (
    AUDIT_DIFFERS,
    AUDIT_EQUAL,
    AUDIT_NOT_AVAILABLE,
    SoftwareUpdatePoint,
    SUPAudit,
    SUPSyncStatus,
)
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.outcome import GENERIC_ERROR, SiteSyncResult, SyncFailure, origin
from updatesync.site.watch.alerts import AlertType, out_of_sync_text
from updatesync.vocabulary import (
    CONTENT_OUT_OF_SYNC,
    LICENSE_TERMS_NOT_DOWNLOADED,
    LICENSE_TERMS_SOURCE,
    REPLICA_FAILURE,
    SYNC_COMPLETED,
    SYNC_FAILED,
    MessageSeverity,
)

if TYPE_CHECKING:
    from updatesync.site.sync.sync_manager import ParentReplication, SiteSyncSettings


class SyncReport:
    """The reporting side of one site's sync manager."""

    def __init__(
        self,
        db: SiteDatabase,
        settings: SiteSyncSettings,
        log: CMTraceLog,
        clock: Callable[[], datetime],
        replication: ParentReplication | None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.log = log
        self.clock = clock
        self.replication = replication
        self.retry_policy = SITE_SYNC_RETRY.scaled(settings.retry_minutes * 60.0)
        self.rng = rng
        self.announced_retry: float | None = None
        """Seconds until the retry the last "Will retry in N minutes" line announced."""

    @log_helper
    def content_version_line(self, version: int) -> None:
        self.log.info(
            f"Set content version of update source {self.settings.update_source} for site "
            f"{self.settings.site_code} to {version}"
        )

    @log_helper
    def message(self, message_id: int) -> StatusMessage:
        message = new_status_message(
            message_id,
            site_code=self.settings.site_code,
            system=self.settings.site_fqdn.upper(),
            time=self.clock(),
        )
        self.send(message)
        return message

    @log_helper
    def status(self, message_id: int) -> None:
        message = self.message(message_id)
        self.db.sync.record_state(message_id, at=message.time)
        self.sup_status(message_id, message.time)

    def sup_status(
        self,
        message_id: int,
        at: datetime,
        error: int | None = None,
        *,
        sup: SoftwareUpdatePoint | None = None,
    ) -> None:
        """A SUP's row of SMS_SUPSyncStatus (SPEC section 5): the default SUP's unless `sup`
        names a replica."""
        sups = self.db.sups.find()
        if not sups:
            return
        target = sup or sups[0]
        source = self.settings.source_name if sup is None else sups[0].fqdn
        held = {s.wsus_server_name: s for s in self.db.sups.sync_statuses()}
        before = held.get(target.fqdn)
        succeeded = message_id in SYNC_COMPLETED
        link_status, checked = (0, at)
        if self.replication is not None:
            link_status, checked = self.replication.link_state()
        self.db.sups.set_sync_status(
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
                sync_catalog_version=self.db.content.version(self.settings.update_source),
                # The database replication link from the parent; a top-level site has none:
                # healthy by definition.
                replication_link_status=link_status,
                last_replication_link_check_time=checked,
            )
        )

    @log_helper
    def license_terms_pending(self, update_id: str) -> None:
        """An update not synchronized because its license terms are not completely
        downloaded on the update server: WSUS's error, in WSyncMgr's per-update form."""
        self.log.error(
            f"Failed to sync update {update_id}. Error: {LICENSE_TERMS_NOT_DOWNLOADED}. "
            f"Source: {LICENSE_TERMS_SOURCE}"
        )

    @log_helper
    def send(self, message: StatusMessage) -> None:
        self.db.messages.add(message)
        if message.severity is MessageSeverity.ERROR:
            self.log.error(format_statmsg(message))
        else:
            self.log.info(format_statmsg(message))

    @log_helper
    def failed(
        self, exc: Exception, sup: SoftwareUpdatePoint | None, started: float
    ) -> SiteSyncResult:
        if isinstance(exc, SyncFailure):
            source, last_error = exc.source, exc.last_error
        else:
            source, last_error = origin(exc), GENERIC_ERROR
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
        self.send(message)
        self.db.sync.record_state(SYNC_FAILED, error_code=last_error, error_text=what)
        self.sup_status(SYNC_FAILED, message.time, error=last_error)
        self.db.alerts.raise_alert(
            AlertType.SYNC_FAILURE, (sup.fqdn if sup else self.settings.site_fqdn)
        )
        # The documented interval plus a few whole minutes of jitter (`SITE_SYNC_RETRY`), so
        # the sites of a hierarchy whose upstream failed together do not retry together.
        wait = self.retry_policy.next_delay(1, self.rng)
        self.announced_retry = wait
        self.log.error(f"Sync failed. Will retry in {max(round(wait / 60), 1)} minutes")
        version = self.db.content.version(self.settings.update_source)
        return SiteSyncResult(False, version, 0, 0, time.monotonic() - started, what, retry_in=wait)

    def cancel_sync_alerts(self, keep: Sequence[str]) -> None:
        """Set the site's sync-failure alerts to canceled, except those of the replicas that
        failed in this sync (at a child site they run before the site's 6702)."""
        if not keep:
            self.db.alerts.cancel_alert(AlertType.SYNC_FAILURE)
            return
        for alert in self.db.alerts.find(
            site_code=self.settings.site_code, alert_type=AlertType.SYNC_FAILURE
        ):
            if alert.is_raised and alert.instance not in keep:
                self.db.alerts.cancel_alert(AlertType.SYNC_FAILURE, alert.instance)

    @log_helper
    def replica_failed(self, sup: SoftwareUpdatePoint, exc: Exception) -> None:
        if isinstance(exc, SyncFailure):
            source, last_error = exc.source, exc.last_error
        else:
            source, last_error = origin(exc), GENERIC_ERROR
        what = str(exc) or type(exc).__name__
        self.log.error(
            f"Failed to synchronize replica WSUS server {sup.fqdn}: {what}. Source: {source}"
        )
        message = sync_failed(
            site_code=self.settings.site_code,
            system=self.settings.site_fqdn.upper(),
            where=source,
            what=f"{REPLICA_FAILURE}{sup.fqdn}: {what}",
            last_error=last_error,
            time=self.clock(),
        )
        self.send(message)
        self.sup_status(SYNC_FAILED, message.time, error=last_error, sup=sup)
        self.db.alerts.raise_alert(AlertType.SYNC_FAILURE, sup.fqdn)

    @log_helper
    def audit(self, sup: SoftwareUpdatePoint, upstream: str, found: Mapping[str, Any]) -> None:
        """Report the consistency audit `found` (the `audit` of the SUP's sync result) of
        `sup` against `upstream` (its WSUSSourceServer): keep it; on a difference 6707 with
        %1 the SUP and %2 its upstream, the WSyncMgr.log lines and the alert naming both;
        proven equal, the alert canceled. Not available: a line, nothing raised or canceled."""
        result = str(found.get("result") or AUDIT_NOT_AVAILABLE)
        own, theirs = _count(found.get("own_count")), _count(found.get("upstream_count"))
        record = SUPAudit(
            site_code=self.settings.site_code,
            wsus_server_name=sup.fqdn,
            upstream_server=upstream,
            result=result,
            checked_at=self.clock(),
            own_digest=_text(found.get("own_digest")),
            own_count=own,
            upstream_digest=_text(found.get("upstream_digest")),
            upstream_count=theirs,
            reason=_text(found.get("reason")),
        )
        self.db.sups.set_audit(record)
        name = sup.fqdn.upper()
        if result == AUDIT_EQUAL:
            self.log.info(
                f"Content of WSUS Server {name} matches upstream server {upstream} "
                f"({own} revisions)"
            )
            self.db.alerts.cancel_alert(AlertType.CONTENT_OUT_OF_SYNC, sup.fqdn)
            return
        if result != AUDIT_DIFFERS:
            self.log.info(
                f"Could not compare content of WSUS Server {name} with upstream server "
                f"{upstream}: {record.reason or 'no audit'}"
            )
            return
        self.log.warning(
            f"Content of WSUS Server {name} differs from upstream server {upstream}: {own} "
            f"revisions (digest {record.own_digest}), upstream {theirs} revisions (digest "
            f"{record.upstream_digest})"
        )
        message = new_status_message(
            CONTENT_OUT_OF_SYNC,
            site_code=self.settings.site_code,
            system=self.settings.site_fqdn.upper(),
            strings=(sup.fqdn, upstream),
            time=self.clock(),
        )
        self.send(message)
        self.db.alerts.raise_alert(
            AlertType.CONTENT_OUT_OF_SYNC,
            sup.fqdn,
            text=out_of_sync_text(sup.fqdn, upstream, own, theirs),
        )
        self.log.info(f"Next synchronization of WSUS Server {name} will be a full synchronization")


def _count(value: object) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def _text(value: object) -> str | None:
    return str(value) if value is not None else None
