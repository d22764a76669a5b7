"""The words ConfigMgr and updatesync share: status messages, components, logs and sync phases.

One table for what several parts name: the sync manager's status messages (ids 6701..6708,
their severities and texts, SPEC section 6), the names of the site components as COMP= and
the logs show them, the log files they write, and the phases of a sync, each with one stable
dotted code (`sync.wsus`, `sync.sitedb`, ...) and the words each surface shows for it.

This is a leaf: it imports nothing from updatesync, and every other layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# --- components ----------------------------------------------------------------------------

SYNC_MANAGER = "SMS_WSUS_SYNC_MANAGER"
"""The sync manager's component name, as COMP= shows it."""

WSUS_CONFIGURATION_MANAGER = "SMS_WSUS_CONFIGURATION_MANAGER"
"""The WSUS configuration manager: it sets each SUP's subscription (WCM.log)."""

DATABASE_NOTIFICATION_MONITOR = "SMS_DATABASE_NOTIFICATION_MONITOR"
"""The database notification monitor (it drops the sync manager's SELF.SYN / FULL.SYN)."""

REPLICATION_MANAGER = "SMS_REPLICATION_MANAGER"
"""File replication between sites (the parent's notification of its children)."""

REPLICATION_CONFIGURATION_MONITOR = "SMS_REPLICATION_CONFIGURATION_MONITOR"
"""Database replication from the parent site."""

PROVIDER = "SMS Provider"
"""The SMS Provider (SMSProv), which takes the console's calls such as SyncNow."""

ALERT_WATCHER = "SMS_ALERT_WATCHER"
"""The component that sends the site's alerts on."""

SMS_SERVER = "SMS Server"
"""The SOURCE= of a status message sent by a site server component."""

# --- log files ----------------------------------------------------------------------------

SYNC_MANAGER_LOG = "WSyncMgr.log"
WSUS_CONFIGURATION_LOG = "WCM.log"
DATABASE_MONITOR_LOG = "SMSDBMON.log"
PROVIDER_LOG = "SMSProv.log"
REPLICATION_MANAGER_LOG = "replmgr.log"
REPLICATION_CONFIGURATION_LOG = "rcmctrl.log"
ALERT_WATCHER_LOG = "alerts.log"
UPDATE_SERVER_LOG = "SoftwareDistribution.log"
"""The update server's own log (WSUS writes it; so does updatesync's update server)."""

# --- status messages ------------------------------------------------------------------------


class MessageSeverity(StrEnum):
    """SEV= of a status message."""

    INFORMATION = "I"
    WARNING = "W"
    ERROR = "E"


@dataclass(frozen=True, slots=True)
class MessageDefinition:
    """One entry of the catalogue: id, severity and text (`%1`, `%2` name ISTR0, ISTR1)."""

    message_id: int
    severity: MessageSeverity
    text: str


SYNC_STARTED = 6701
SYNC_DONE = 6702
SYNC_FAILED = 6703
SYNC_WSUS_SERVER = 6704
SYNC_SITE_DATABASE = 6705
SYNC_REPLICA = 6706
CONTENT_OUT_OF_SYNC = 6707
SYNC_DONE_PENDING_LICENSES = 6708

_IN_PROGRESS = "WSUS Synchronization in progress. Current phase: "

CATALOGUE: dict[int, MessageDefinition] = {
    d.message_id: d
    for d in (
        MessageDefinition(
            SYNC_STARTED, MessageSeverity.INFORMATION, "WSUS Synchronization started."
        ),
        MessageDefinition(SYNC_DONE, MessageSeverity.INFORMATION, "WSUS Synchronization done."),
        MessageDefinition(SYNC_FAILED, MessageSeverity.ERROR, "WSUS Synchronization failed."),
        MessageDefinition(
            SYNC_WSUS_SERVER,
            MessageSeverity.INFORMATION,
            _IN_PROGRESS + "Synchronizing WSUS Server.",
        ),
        MessageDefinition(
            SYNC_SITE_DATABASE,
            MessageSeverity.INFORMATION,
            _IN_PROGRESS + "Synchronizing site database.",
        ),
        MessageDefinition(
            SYNC_REPLICA,
            MessageSeverity.INFORMATION,
            _IN_PROGRESS + "Synchronizing Internet facing WSUS Server.",
        ),
        MessageDefinition(
            CONTENT_OUT_OF_SYNC,
            MessageSeverity.WARNING,
            "Content of WSUS Server %1 is out of sync with upstream server %2.",
        ),
        MessageDefinition(
            SYNC_DONE_PENDING_LICENSES,
            MessageSeverity.WARNING,
            "WSUS synchronization complete, with pending license terms downloads.",
        ),
    )
}
"""The sync manager's messages. Texts as the status message list gives them (6707 and 6708
with their final dots; SPEC drops them), the severities of 6701..6706 SPEC's; no source gives
the severity of 6707 and 6708, which are warnings here (the sync did not fail, but something
needs the administrator). docs/log-ledger.md has the sources."""

SYNC_COMPLETED = frozenset({SYNC_DONE, SYNC_DONE_PENDING_LICENSES})
"""The messages that end a sync that completed: 6702, or 6708 when license terms of some
updates are still being downloaded (those updates were not synchronized; the next sync
takes them)."""

LICENSE_TERMS_NOT_DOWNLOADED = (
    "The Microsoft Software License Terms have not been completely downloaded and~~cannot be "
    "accepted"
)
"""WSUS's error for an update whose license terms are not completely downloaded, as
WSyncMgr.log writes it in `Failed to sync update <id>. Error: ... Source: ...` ("~~" is
how the line shows the line break of the message)."""
LICENSE_TERMS_SOURCE = "Microsoft.UpdateServices.Internal.BaseApi.LicenseAgreement.GetById"
"""Where WSUS raises it (the Source of that line)."""

IN_PROGRESS_STATES = frozenset({SYNC_STARTED, SYNC_WSUS_SERVER, SYNC_SITE_DATABASE, SYNC_REPLICA})
"""Values of LastSyncState that mean "a sync is running" (SPEC section 5)."""

SYNC_MESSAGES = (
    SYNC_STARTED,
    SYNC_DONE,
    SYNC_FAILED,
    SYNC_WSUS_SERVER,
    SYNC_SITE_DATABASE,
    SYNC_REPLICA,
)
"""The messages that mark a sync's course: its start, its end and its phases."""

# --- failure sources (ISTR0 of a 6703) ------------------------------------------------------

SOURCE_STARTUP = f"{SYNC_MANAGER}.Startup"
"""Where a sync failed that never ended because the site server stopped during it."""

SOURCE_READ_SUPS = f"{SYNC_MANAGER}.ReadSUPs"
"""Where a sync failed that found no software update point in the site control file."""

SOURCE_WAIT_FOR_REPLICATION = f"{SYNC_MANAGER}.WaitForReplication"
"""Where a child's sync failed that did not get the parent's content version by database
replication."""

NOT_CONFIGURED = (
    "WSUS server not configured. Please refer to WCM.log for configuration error details."
)
"""A sync's failure when the WSUS configuration manager has not configured the SUP (with the
format's `. Source:` it reads `details.. Source:`, as real logs show)."""
NOT_CONFIGURED_SOURCE = "CWSyncMgr::DoSync"

REPLICA_FAILURE = "Replica WSUS server "
"""How ISTR1 of a replica SUP's 6703 begins (`Replica WSUS server <fqdn>: <error>`): the
failure is that replica's, not the site's."""

# --- the phases of a sync -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncPhase:
    """One phase (or end state) of a sync: a stable dotted `code`, the status message that
    marks it (None: none does) and what each surface calls it ("": that surface does not
    show it). The words differ between surfaces and stay as each surface has always shown
    them: tests, dashboards and scripts read them."""

    code: str
    label: str
    """The console's name of the state (the site and SUP labels, the timeline)."""
    message_id: int | None = None
    run_name: str = ""
    """The phase's `name` in a sync run rebuilt from the logs (`updatesync logs track --json`)."""
    metric_name: str = ""
    """The `phase` label value of the /metrics phase families."""
    page_label: str = ""
    """The phase on the console's /logs page."""
    table_label: str = ""
    """The phase in the table of `updatesync logs track`."""
    demo_label: str = ""
    """The state in the demo's live table."""
    during: str = ""
    """The phase in "the site server stopped during ..." of a sync that never ended."""
    failure_source: str = ""
    """ISTR0 of the 6703 when the phase fails for a reason of its own."""
    progress_name: str = ""
    """The phase in the update server's progress (its admin API's `phase`), as WSyncMgr's
    `sync: WSUS synchronizing <name>` lines word it."""


PHASE_START = SyncPhase(
    "sync.start",
    "started",
    SYNC_STARTED,
    demo_label="started (6701)",
    during="the start of the sync (6701)",
    failure_source=SOURCE_READ_SUPS,
)
PHASE_WSUS = SyncPhase(
    "sync.wsus",
    "update server",
    SYNC_WSUS_SERVER,
    run_name="update_server",
    metric_name="update_server",
    page_label="update server",
    table_label="update server",
    demo_label="update server (6704)",
    during="the update server phase (6704)",
)
PHASE_WSUS_CATEGORIES = SyncPhase(
    "sync.wsus.categories", "categories", SYNC_WSUS_SERVER, progress_name="categories"
)
PHASE_WSUS_UPDATES = SyncPhase(
    "sync.wsus.updates", "updates", SYNC_WSUS_SERVER, progress_name="updates"
)
PHASE_WSUS_OTHER_ITEMS = SyncPhase(
    "sync.wsus.other_items", "other items", SYNC_WSUS_SERVER, progress_name="other items"
)
"""A replica's: the target groups, approvals and dead approvals (GetDeployments)."""
PHASE_SITEDB = SyncPhase(
    "sync.sitedb",
    "site database",
    SYNC_SITE_DATABASE,
    metric_name="site_database",
    demo_label="site database (6705)",
    during="the site database phase (6705)",
)
PHASE_SITEDB_CATEGORIES = SyncPhase(
    "sync.sitedb.categories",
    "site database: categories",
    SYNC_SITE_DATABASE,
    run_name="site_database_categories",
    page_label="site database: categories",
    table_label="DB categories",
)
PHASE_SITEDB_UPDATES = SyncPhase(
    "sync.sitedb.updates",
    "site database: updates",
    SYNC_SITE_DATABASE,
    run_name="site_database_updates",
    page_label="site database: updates",
    table_label="DB updates",
)
PHASE_REPLICATION_WAIT = SyncPhase(
    "sync.replication_wait",
    "replication from the parent",
    failure_source=SOURCE_WAIT_FOR_REPLICATION,
)
PHASE_REPLICA = SyncPhase(
    "sync.replica",
    "replica",
    SYNC_REPLICA,
    run_name="replica",
    metric_name="replicas",
    page_label="replica SUP",
    table_label="replica",
    demo_label="replicas (6706)",
)
PHASE_DONE = SyncPhase("sync.done", "done", SYNC_DONE, demo_label="done (6702)")
PHASE_FAILED = SyncPhase("sync.failed", "failed", SYNC_FAILED, demo_label="FAILED (6703)")

SYNC_PHASES: tuple[SyncPhase, ...] = (
    PHASE_START,
    PHASE_WSUS,
    PHASE_WSUS_CATEGORIES,
    PHASE_WSUS_UPDATES,
    PHASE_WSUS_OTHER_ITEMS,
    PHASE_SITEDB,
    PHASE_SITEDB_CATEGORIES,
    PHASE_SITEDB_UPDATES,
    PHASE_REPLICATION_WAIT,
    PHASE_REPLICA,
    PHASE_DONE,
    PHASE_FAILED,
)
"""Every phase, in the order a sync goes through them."""

PHASES_BY_CODE: dict[str, SyncPhase] = {p.code: p for p in SYNC_PHASES}

SYNC_STATES: dict[int, SyncPhase] = {
    p.message_id: p
    for p in (PHASE_START, PHASE_WSUS, PHASE_SITEDB, PHASE_REPLICA, PHASE_DONE, PHASE_FAILED)
    if p.message_id is not None
}
"""The phase a LastSyncState (the sync manager's last status message) stands for."""

RUN_PHASES: dict[str, SyncPhase] = {p.run_name: p for p in SYNC_PHASES if p.run_name}
"""The phases of a sync run rebuilt from the logs, by their `name` there."""
