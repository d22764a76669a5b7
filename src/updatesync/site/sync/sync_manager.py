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
import random
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from updatesync.config.defaults import DEFAULT_UPDATES_CLEANUP_AGE
from updatesync.config.fault_injection import fault_point
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.metadata.languages import language_id
from updatesync.security.private_files import private_dir
from updatesync.site.database.content import ContentUpdate
from updatesync.site.database.models import (
    MICROSOFT_UPDATE,
    Category,
    ConfigurationItem,
    LocalizedProperty,
    SoftwareUpdatePoint,
)
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError
from updatesync.site.sync.outcome import GENERIC_ERROR, SiteSyncResult, SyncFailure
from updatesync.site.sync.progress import ReplicaProgress, WsusProgress, format_sync_time
from updatesync.site.sync.report import SyncReport
from updatesync.site.sync.sup_client import (
    UpdateServerApi,
    UpdateServerSyncFailed,
    UpdateServerUnavailable,
)
from updatesync.updateserver.failures import SYNC_WSUS
from updatesync.vocabulary import (
    IN_PROGRESS_STATES,
    NOT_CONFIGURED,
    NOT_CONFIGURED_SOURCE,
    SOURCE_READ_SUPS,
    SOURCE_STARTUP,
    SOURCE_WAIT_FOR_REPLICATION,
    SYNC_DONE,
    SYNC_DONE_PENDING_LICENSES,
    SYNC_REPLICA,
    SYNC_SITE_DATABASE,
    SYNC_STARTED,
    SYNC_STATES,
    SYNC_WSUS_SERVER,
)

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

RETRY_LINES = (
    "Wakeup for a polling cycle",
    "Starting Sync",
    "Performing sync on retry schedule",
)
"""A retry after a failed sync, whatever the failed sync's trigger (a real log's wording)."""


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
    updates_cleanup_age: timedelta = DEFAULT_UPDATES_CLEANUP_AGE
    """How long after it expired the top-level site deletes an expired update's CI."""


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


class ConfigurationGate(Protocol):
    """What the sync manager needs of the WSUS configuration manager (`wcm.py`)."""

    def ensure_configured(self, sup: SoftwareUpdatePoint, timeout: float = 60.0) -> bool:
        """Whether `sup` is configured, after a configuration cycle if it was not."""
        ...


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
        configuration: ConfigurationGate | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`configuration`: the site's WSUS configuration manager, which sets each SUP's
        subscription; a SUP it has not configured is not synced. Without one, each sync
        asks the update server for the subscription of `settings`. `rng`: the retry's jitter."""
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
        self.configuration = configuration
        self.report = SyncReport(db, settings, log, clock, replication, rng)

    @property
    def parent_site(self) -> str | None:
        return self.settings.parent_site

    # -- start-up ---------------------------------------------------------------------

    def recover(self) -> bool:
        """At start-up: if the last sync never ended (the process died inside it), report it
        as failed: 6703, the alert, the retry line. Its phase left nothing half-applied (each
        phase is one transaction). Returns True when there was such a sync."""
        state = self.db.sync.status().last_sync_state
        if state not in IN_PROGRESS_STATES:
            return False
        known = SYNC_STATES.get(state)
        phase = known.during if known is not None and known.during else f"state {state}"
        failure = SyncFailure(
            f"The synchronization ended without completing: the site server stopped during {phase}",
            SOURCE_STARTUP,
            GENERIC_ERROR,
        )
        sups = self.db.sups.find()
        self.report.failed(failure, sups[0] if sups else None, time.monotonic())
        return True

    # -- one sync ---------------------------------------------------------------------

    def run(self, trigger: str, *, retry: bool = False) -> SiteSyncResult:
        """One sync. `trigger` is "schedule", "SELF" (delta), "FULL", or the parent site's
        code (its notification, at a child site); `retry`: it runs again a sync of that
        trigger that failed (the log says so, not that a file was dropped)."""
        started = time.monotonic()
        full = trigger == "FULL"
        for line in RETRY_LINES if retry else self._trigger_lines(trigger):
            self.log.info(line)
        sups = self._read_sups()
        self.report.status(SYNC_STARTED)
        default = sups[0] if sups else None
        parent = self.settings.parent_site
        failed_replicas: list[str] = []
        try:
            if default is None:
                raise SyncFailure(
                    f"No software update point is installed at site {self.settings.site_code}",
                    SOURCE_READ_SUPS,
                    GENERIC_ERROR,
                )
            self._check_configured(default)
            if parent is None:
                with self.api_for(default) as api:
                    wsus_items, _pending = self._update_server_phase(api, default, full)
                    cis_changed, version, pending = self._site_database_phase(api, default, full)
            else:
                self.log.info(f"Synchronizing WSUS server {default.fqdn.upper()}")
                with self.api_for(default) as api:
                    wsus_items, pending = self._update_server_phase(
                        api, default, full, replica=self.settings.default_is_replica
                    )
                # The configuration items come from the parent; the updates whose license
                # terms this site's update server lacks are reported here as the parent
                # reports its own.
                for update_id in pending:
                    self.report.license_terms_pending(update_id)
                version = self._wait_for_replication(parent)
                cis_changed = 0
                failed_replicas = self._replicas(sups[1:], in_progress=True)
        except Exception as exc:
            return self.report.failed(exc, default, started)
        self.report.status(SYNC_DONE_PENDING_LICENSES if pending else SYNC_DONE)
        self.report.cancel_sync_alerts(keep=failed_replicas)
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
            delete_old_expired(
                self.db, self.log, self.clock, self.clock() - self.settings.updates_cleanup_age
            )
        self._notify_children()
        return SiteSyncResult(True, version, wsus_items, cis_changed, time.monotonic() - started)

    def _check_configured(self, sup: SoftwareUpdatePoint) -> None:
        """A SUP the WSUS configuration manager has not configured is not synced; `LE=` is
        the HRESULT of its failed configuration where one is known (why: WCM.log)."""
        if self.configuration is None or self.configuration.ensure_configured(sup):
            return
        state = self.db.wsus.state(sup.fqdn)
        code = state.last_error_code if state is not None else None
        raise SyncFailure(NOT_CONFIGURED, NOT_CONFIGURED_SOURCE, code or GENERIC_ERROR)

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
        sups = [s for s in self.db.sups.find() if s.active]
        self.log.info(f"Found {len(sups)} SUPs")
        for sup in sups:
            self.log.info(f"Found active SUP {sup.fqdn.upper()} from SCF File.")
        return sups

    # -- phase 1: the update server ---------------------------------------------------------

    def _update_server_phase(
        self, api: UpdateServerApi, sup: SoftwareUpdatePoint, full: bool, replica: bool = False
    ) -> tuple[int, tuple[str, ...]]:
        """The update server's sync: (the items the phase counted, the updates whose license
        terms it has not completely downloaded)."""
        self.report.status(SYNC_WSUS_SERVER)
        self.log.info(f"Synchronizing WSUS server {sup.fqdn} ...")
        outcome = self._synchronize(api, full, replica)
        self.log.info(f"Done synchronizing WSUS Server {sup.fqdn}")
        self._audit(sup, self.settings.source_name, outcome.result)
        if outcome.changed and self.settings.parent_site is None:
            # At a child the version comes from the parent, with the CIs (database replication).
            version = self.db.content.version(self.settings.update_source) + 1
            self.db.content.set_version(version, source_id=self.settings.update_source)
            self.report.content_version_line(version)
        # `Updated N items in SMS database` counts what the updates phase's progress counted
        # (the article: `processed 130 out of 130 items`, then `Updated 130 items`); an update
        # server from before `update_items` gives its stored revisions instead.
        result: dict[str, Any] = outcome.result
        pending = tuple(str(uid) for uid in result.get("license_terms_pending") or ())
        if "update_items" in result:
            return int(result["update_items"]), pending
        items = int(result.get("new_revisions", 0)) + int(result.get("changed_revisions", 0))
        return items, pending

    def _synchronize(self, api: UpdateServerApi, full: bool, replica: bool) -> Any:
        """Have the update server sync and follow it, with WSyncMgr's `sync:` lines."""
        if replica:
            self.log.info("sync: Starting Replica WSUS synchronization")
            reporter: WsusProgress = ReplicaProgress(self.log)
        else:
            self.log.info("sync: Starting WSUS synchronization")
            reporter = WsusProgress(self.log)
        try:
            # With a configuration manager the update server holds the subscription it set.
            own = self.configuration is None
            outcome = api.synchronize(
                full=full,
                products=self.settings.products if own else (),
                classifications=self.settings.classifications if own else (),
                languages=self.settings.languages if own else (),
                progress=reporter,
                replica=replica,
            )
        except UpdateServerUnavailable as exc:
            raise SyncFailure.of(exc.failure) from exc
        except UpdateServerSyncFailed as exc:
            if exc.failure is None:  # an update server that reports none: its own words
                raise SyncFailure(exc.error, SYNC_WSUS, GENERIC_ERROR) from exc
            raise SyncFailure.of(exc.failure) from exc
        reporter.finish()
        return outcome

    def _audit(self, sup: SoftwareUpdatePoint, upstream: str, result: dict[str, Any]) -> None:
        """Report the SUP's consistency audit against `upstream`, when its update server ran
        one (an older one reports none). A failure to report it leaves the sync as it is."""
        found = result.get("audit")
        if not isinstance(found, dict):
            return
        try:
            self.report.audit(sup, upstream, found)
        except (SiteDatabaseError, SQLAlchemyError) as exc:
            self.log.error(f"Failed to record the content audit of WSUS Server {sup.fqdn}: {exc}")

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
                SOURCE_WAIT_FOR_REPLICATION,
                GENERIC_ERROR,
            ) from exc
        self.db.content.set_version(version, source_id=self.settings.update_source)
        self.report.content_version_line(version)
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
        replicas_source = self.db.sups.find()[0].fqdn  # a replica syncs from the default SUP
        for sup in replicas:
            message = self.report.message(SYNC_REPLICA)
            if in_progress:
                self.db.sync.record_state(SYNC_REPLICA, at=message.time)
            self.report.sup_status(SYNC_REPLICA, message.time, sup=sup)
            self.log.info(f"Synchronizing WSUS server {sup.fqdn} ...")
            try:
                self._check_configured(sup)
                with self.api_for(sup) as api:
                    outcome = self._synchronize(api, False, True)
            except Exception as exc:
                self.report.replica_failed(sup, exc)
                failed.append(sup.fqdn)
                continue
            self.log.info(f"Done synchronizing WSUS Server {sup.fqdn}")
            self._audit(sup, replicas_source, outcome.result)
            self.report.sup_status(SYNC_DONE, self.clock(), sup=sup)
        return failed

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
            private_dir(outbox)
            temp = outbox / f"~{notification.name}.{os.getpid()}"
            version = self.db.content.version(self.settings.update_source)
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

    def _criteria(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """The products, classifications and languages the site syncs: with a WSUS
        configuration manager, the site's subscription as it is now (set at the top-level
        site's provider, or replicated from the parent), else the settings'."""
        if self.configuration is not None:
            held = self.db.wsus.subscription()
            if held.version:
                return held.products, held.classifications, held.languages
        return self.settings.products, self.settings.classifications, self.settings.languages

    def _site_database_phase(
        self, api: UpdateServerApi, sup: SoftwareUpdatePoint, full: bool
    ) -> tuple[int, int, tuple[str, ...]]:
        """The updates as configuration items: (CIs changed, the content version, the
        updates not synchronized because their license terms are pending on the update
        server). Such an update gets WSUS's error line and no CI; the catalog version
        recorded stops before the first of them, so that the next sync reads them again
        (and creates their CIs once the files are there), whether or not anything new
        comes."""
        self.report.status(SYNC_SITE_DATABASE)
        self.log.info(f"Synchronizing SMS database with WSUS server {sup.fqdn} ...")
        since = 0 if full else (self.db.sync.status().sync_catalog_version or 0)
        products, classifications, subscribed = self._criteria()
        languages = tuple(dict.fromkeys(lang.lower() for lang in subscribed))
        if since and set(languages) - self.db.content.localized_languages():
            # A language newly subscribed: every CI is read again for its texts in it (the
            # CIs themselves are unchanged unless their update changed).
            since = 0
        try:
            counter, categories = api.category_changes(since)
            self.log.info("sync: SMS synchronizing categories")
            with self.db.content.update(self.settings.update_source) as content:
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
                pending: list[str] = []
                first_pending: int | None = None
                batch: list[ConfigurationItem] = []
                content.keep_languages(languages)
                updates = api.changed_updates(
                    since,
                    products=products,
                    classifications=classifications,
                    languages=languages,
                )
                with closing(updates):  # a failed write stops the reading ahead at once
                    for item in updates:
                        processed += 1
                        if item.get("license_terms_pending"):
                            pending.append(item["update_id"])
                            self.report.license_terms_pending(item["update_id"])
                            change = int(item["change_number"])
                            first_pending = min(first_pending or change, change)
                            continue
                        batch.append(_configuration_item(item, languages))
                        if len(batch) >= CI_BATCH:
                            changed += self._write_cis(content, batch)
                            batch.clear()
                changed += self._write_cis(content, batch)
                if processed:
                    self.log.info(
                        f"sync: SMS synchronizing updates, processed {processed} out of "
                        f"{processed} items (100%)"
                    )
                if languages and processed:
                    self.log.info(
                        f"sync: SMS synchronized {content.localized_written} localized "
                        f"properties of {processed} updates in languages {', '.join(languages)}"
                    )
                fault_point("site-database-commit")  # a test hook, off unless set
        except UpdateServerUnavailable as exc:
            raise SyncFailure.of(exc.failure) from exc
        self.log.info(f"Done synchronizing SMS with WSUS Server {sup.fqdn}")
        version = content.change.content_version
        if content.change.changed:
            self.report.content_version_line(version)
        if first_pending is not None:
            counter = min(counter, first_pending - 1)
        self.db.sync.record_state(SYNC_SITE_DATABASE, catalog_version=counter)
        return changed, version, tuple(pending)

    def _write_cis(self, content: ContentUpdate, batch: list[ConfigurationItem]) -> int:
        """Write a batch; one `Synchronizing update` line per CI that was new or changed."""
        titles = {ci.update_id: ci.title for ci in batch}
        written = content.upsert_cis(batch)
        self.log.info_many(f"Synchronizing update {uid} - {titles[uid]}" for uid in written)
        return len(written)


CI_BATCH = 1000
EXPIRED_BATCH = 100
"""Expired CIs deleted per transaction (`Deleted 100 expired updates`, as WSyncMgr writes)."""
"""Configuration items written (and their lines logged) at a time in the site-database
phase: one read of those stored, one bulk write, one write of the log."""


def _configuration_item(item: dict[str, Any], languages: Sequence[str] = ()) -> ConfigurationItem:
    """The CI of one update of a page; with `languages`, its localized properties in those
    the update server sent (an update server that kept none gives it none)."""
    localized = None
    if languages:
        localized = tuple(
            LocalizedProperty(
                text["language"],
                language_id(text["language"]) or 0,
                text["title"],
                text["description"],
            )
            for text in item.get("localized") or ()
            if text["language"] in languages
        )
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
        localized=localized,
    )


def delete_old_expired(
    db: SiteDatabase, log: CMTraceLog, clock: Callable[[], datetime], before: datetime
) -> None:
    """At the end of a top-level site's sync: delete the CIs of updates expired before
    `before` (the Updates Cleanup Age ago), a hundred at a time, in WSyncMgr's words (child
    sites get the deletions by database replication). A failure here leaves the sync
    successful; the next sync tries again."""
    log.info("Deleting old expired updates...")
    total = 0
    try:
        while True:
            deleted = db.expiry.delete(before, limit=EXPIRED_BATCH, at=clock())
            if deleted:
                log.info(f"Deleted {deleted} expired updates")
            total += deleted
            if deleted < EXPIRED_BATCH:
                break
    except (SiteDatabaseError, SQLAlchemyError) as exc:
        log.error(f"Failed to delete expired updates: {exc}")
        return
    log.info(f"Deleted {total} expired updates total")
