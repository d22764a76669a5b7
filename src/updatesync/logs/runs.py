"""Sync runs as the logs tell them: the model (`SyncRun` and its parts, each with `to_json`).

A run is one sync of one site: its trigger, its **phases** in the order they ran (each
`{name, status_message, server, started, ended, items_done, items_total, status}`, status
`running`, `done` or `failed`; the names are the `run_name`s of `updatesync.vocabulary`'s
phases: `update_server`, `site_database_categories`, `site_database_updates`, `replica`), its
result (`success`, `failed`, `running`, `stuck`, or `unknown` for an excerpt that holds
neither a start nor an end; a success ended by 6708 is also `license_terms_pending`),
error, versions, replicas and children, the updates that failed in it (`update_failures`:
`Failed to sync update <id>. Error: <message>. Source: <source>`) and, for a sync that
failed because WCM had not configured its SUP, the configuration run behind it
(`configuration_failure`). Its JSON has `kind: "sync"`; the WSUS configuration manager's
runs (`kind: "configuration"`) are `updatesync.logs.configuration`'s.
`updatesync.logs.rebuild` builds runs from a sync manager log; `mark_stuck` turns a run
that stopped moving `stuck`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from updatesync.logs.status_messages import StatusMessage
from updatesync.vocabulary import (
    NOT_CONFIGURED,
    PHASE_REPLICA,
    PHASE_SITEDB_CATEGORIES,
    PHASE_SITEDB_UPDATES,
    PHASE_WSUS,
)

NOT_CONFIGURED_START = NOT_CONFIGURED.split(".")[0]
"""`WSUS server not configured`: how WSyncMgr's failure begins when WCM has not configured
the SUP (MS-TSSYNC; real copies differ after it)."""
UPDATE_SERVER = PHASE_WSUS.run_name
SITE_DATABASE_CATEGORIES = PHASE_SITEDB_CATEGORIES.run_name
SITE_DATABASE_UPDATES = PHASE_SITEDB_UPDATES.run_name
REPLICA = PHASE_REPLICA.run_name
WSUS_PHASES = (UPDATE_SERVER, REPLICA)

SUCCESS = "success"
FAILED = "failed"
RUNNING = "running"
STUCK = "stuck"
UNKNOWN = "unknown"
SYNC = "sync"


def iso(moment: datetime | None) -> str | None:
    """`2014-01-16T18:53:52.608Z`, or None."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One entry of a sync manager log: its message, its own time (UTC; None when the form
    has none) and, for a STATMSG line, its status message."""

    message: str
    time: datetime | None = None
    statmsg: StatusMessage | None = None
    number: int | None = None

    @property
    def at(self) -> datetime | None:
        """When it happened: GMTDATE for a status message, else the line's time."""
        return self.statmsg.time if self.statmsg is not None else self.time


@dataclass(frozen=True, slots=True)
class SyncError:
    """Why a run (or a replica) failed: where (ISTR0, `Source:`), what (ISTR1), LE= code."""

    source: str | None = None
    message: str | None = None
    code: int | None = None

    def merged(self, other: SyncError) -> SyncError:
        """This error with its missing parts taken from `other`."""
        return SyncError(
            self.source if self.source is not None else other.source,
            self.message if self.message is not None else other.message,
            self.code if self.code is not None else other.code,
        )

    def to_json(self) -> dict[str, Any]:
        code = None if self.code is None else f"0x{self.code:08x}"
        return {"source": self.source, "message": self.message, "code": code}


@dataclass(frozen=True, slots=True)
class UpdateFailure:
    """One update the site database could not take in a sync (the sync goes on)."""

    update_id: str
    message: str | None
    source: str | None

    def to_json(self) -> dict[str, Any]:
        return {"update_id": self.update_id, "message": self.message, "source": self.source}


@dataclass(frozen=True, slots=True)
class Activity:
    """The last thing a run did: a line's message and its time (None when unknown)."""

    time: datetime | None
    message: str
    log: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"time": iso(self.time), "message": self.message, "log": self.log}


@dataclass(frozen=True, slots=True)
class UpdateServerSync:
    """One synchronization as the update server's SoftwareDistribution.log shows it: from its
    start (`StartSubscriptionManually`, event 381/382) to event 384 (succeeded) or 386
    (failed); `result` is `running` when the log has no end for it."""

    server: str | None
    started: datetime
    ended: datetime | None
    result: str
    how: str | None
    message: str | None
    last_time: datetime
    last_message: str
    log: str

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "started": iso(self.started),
            "ended": iso(self.ended),
            "result": self.result,
            "how": self.how,
            "message": self.message,
            "log": self.log,
        }


@dataclass(slots=True)
class Phase:
    """One phase of a run (see the module notes for the names)."""

    name: str
    status_message: int | None
    server: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    items_done: int | None = None
    items_total: int | None = None
    status: str = RUNNING
    error: SyncError | None = None
    update_server_log: UpdateServerSync | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status_message": self.status_message,
            "server": self.server,
            "started": iso(self.started),
            "ended": iso(self.ended),
            "items_done": self.items_done,
            "items_total": self.items_total,
            "status": self.status,
            "error": None if self.error is None else self.error.to_json(),
            "update_server_log": (
                None if self.update_server_log is None else self.update_server_log.to_json()
            ),
        }


@dataclass(slots=True)
class SyncRun:
    """One sync of one site, as its logs tell it."""

    site: str | None = None
    server: str | None = None
    trigger: str | None = None
    parent: str | None = None
    result: str = RUNNING
    started: datetime | None = None
    ended: datetime | None = None
    content_versions: list[int] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    error: SyncError | None = None
    retry_after_minutes: int | None = None
    last_activity: Activity | None = None
    requested: datetime | None = None
    sups: list[str] = field(default_factory=list)
    items_updated: int | None = None
    reported_content_version: int | None = None
    reported_sync_time_s: int | None = None
    warnings: list[str] = field(default_factory=list)
    license_terms_pending: bool = False
    """It completed with 6708: some updates' license terms were still being downloaded, so
    those updates were not synchronized (their `update_failures` say which)."""
    log: str | None = None
    update_failures: list[UpdateFailure] = field(default_factory=list)
    configuration_failure: dict[str, Any] | None = None
    """The failed configuration run behind a `WSUS server not configured` failure
    (`ConfigurationRun.link()`), when its WCM.log was read too."""
    # bookkeeping of the rebuild
    explicit_start: bool = field(default=False, repr=False)
    has_6701: bool = field(default=False, repr=False)
    has_6703: bool = field(default=False, repr=False)
    has_fail_line: bool = field(default=False, repr=False)
    in_replicas: bool = field(default=False, repr=False)
    replica_failure_pending: bool = field(default=False, repr=False)
    pending_server: str | None = field(default=None, repr=False)
    last_known: datetime | None = field(default=None, repr=False)

    kind = SYNC

    @property
    def duration_s(self) -> float | None:
        """`ended - started` in seconds; else the log's own `Sync time:`; else None."""
        if self.started is not None and self.ended is not None:
            return round((self.ended - self.started).total_seconds(), 3)
        if self.reported_sync_time_s is not None and self.result in (SUCCESS, FAILED):
            return float(self.reported_sync_time_s)
        return None

    @property
    def next_retry(self) -> datetime | None:
        if self.retry_after_minutes is None or self.ended is None:
            return None
        return self.ended + timedelta(minutes=self.retry_after_minutes)

    @property
    def not_configured(self) -> bool:
        """It failed because the configuration manager had not configured its SUP."""
        message = self.error.message if self.error is not None else None
        return self.result == FAILED and (message or "").startswith(NOT_CONFIGURED_START)

    @property
    def content_version(self) -> int | None:
        """The content version the run left: the last one set, else the one it reported."""
        if self.content_versions:
            return self.content_versions[-1]
        return self.reported_content_version

    @property
    def replicas(self) -> list[dict[str, Any]]:
        return [
            {
                "server": p.server,
                "items": p.items_done,
                "status": p.status,
                "error": None if p.error is None else p.error.to_json(),
            }
            for p in self.phases
            if p.name == REPLICA
        ]

    @property
    def first_time(self) -> datetime | None:
        return self.started or self.ended or self.last_known

    def phase(self, name: str) -> Phase | None:
        """The first phase of that name."""
        return next((p for p in self.phases if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": SYNC,
            "site": self.site,
            "server": self.server,
            "trigger": self.trigger,
            "parent": self.parent,
            "result": self.result,
            "started": iso(self.started),
            "ended": iso(self.ended),
            "duration_s": self.duration_s,
            "requested": iso(self.requested),
            "content_versions": list(self.content_versions),
            "content_version": self.content_version,
            "sups": list(self.sups),
            "phases": [p.to_json() for p in self.phases],
            "replicas": self.replicas,
            "children": list(self.children),
            "items_updated": self.items_updated,
            "error": None if self.error is None else self.error.to_json(),
            "retry_after_minutes": self.retry_after_minutes,
            "next_retry": iso(self.next_retry),
            "last_activity": None if self.last_activity is None else self.last_activity.to_json(),
            "warnings": list(self.warnings),
            "license_terms_pending": self.license_terms_pending,
            "update_failures": [f.to_json() for f in self.update_failures],
            "configuration_failure": self.configuration_failure,
            "log": self.log,
        }

    def trigger_text(self) -> str:
        """What started the run, in words (`not in the log` when its logs do not say)."""
        match self.trigger:
            case "local":
                return "local request"
            case "full":
                return "full sync request"
            case "parent":
                return f"parent request from {self.parent}" if self.parent else "parent request"
            case "schedule":
                return "schedule"
            case "retry":
                return "retry schedule"
            case None:
                return "not in the log"
            case other:
                return str(other)


def mark_stuck(run: SyncRun, reference: datetime | None, stuck_after: timedelta) -> None:
    """A running run whose last known activity is more than `stuck_after` before
    `reference` becomes `stuck`."""
    if run.result not in (RUNNING, STUCK) or reference is None or run.last_known is None:
        return
    run.result = STUCK if reference - run.last_known > stuck_after else RUNNING
