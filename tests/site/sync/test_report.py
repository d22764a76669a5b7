"""Tests of SyncReport: what one site's sync writes to its database and to WSyncMgr.log
(status messages with their STATMSG lines, the sync state, SUP sync status, alerts)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from updatesync.logs.cmtrace import CMTraceLog, LogEntry, Severity, read_cmtrace
from updatesync.retry_policy import SITE_SYNC_RETRY, jitter_source
from updatesync.site.database.models import SoftwareUpdatePoint
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.outcome import GENERIC_ERROR, SyncFailure
from updatesync.site.sync.report import SyncReport
from updatesync.site.sync.sync_manager import SiteSyncSettings
from updatesync.site.watch.alerts import AlertType
from updatesync.vocabulary import REPLICA_FAILURE, SYNC_DONE, SYNC_FAILED, SYNC_STARTED

AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = SiteSyncSettings(site_code="CS1", site_fqdn="cs1.contoso.com", retry_minutes=45)
DEFAULT_SUP = SoftwareUpdatePoint("sup1.contoso.com")
REPLICA_SUP = SoftwareUpdatePoint("sup2.contoso.com")


def clock() -> datetime:
    return AT


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SiteDatabase]:
    with SiteDatabase.open(tmp_path / "cs1", site_code="CS1") as site_db:
        yield site_db


@pytest.fixture
def log(tmp_path: Path) -> CMTraceLog:
    return CMTraceLog(tmp_path / "WSyncMgr.log", component="SMS_WSUS_SYNC_MANAGER", now=clock)


def _report(db: SiteDatabase, log: CMTraceLog) -> SyncReport:
    return SyncReport(db, SETTINGS, log, clock, None)


def _entries(log: CMTraceLog) -> list[LogEntry]:
    return list(read_cmtrace(log.path))


def test_status_stores_the_state_and_writes_a_statmsg_line(
    db: SiteDatabase, log: CMTraceLog
) -> None:
    _report(db, log).status(SYNC_STARTED)

    status = db.sync.status()
    assert status.last_sync_state == SYNC_STARTED
    assert status.last_sync_state_time == AT
    assert status.in_progress
    [message] = db.messages.find(message_id=SYNC_STARTED)
    assert message.site_code == "CS1"
    assert message.system == "CS1.CONTOSO.COM"
    [entry] = _entries(log)
    assert entry.severity is Severity.INFO
    assert entry.message.startswith(f"STATMSG: ID={SYNC_STARTED} ")
    assert "SYS=CS1.CONTOSO.COM SITE=CS1" in entry.message


def test_status_without_sups_writes_no_sup_status(db: SiteDatabase, log: CMTraceLog) -> None:
    _report(db, log).status(SYNC_DONE)
    assert db.sups.sync_statuses() == []
    assert db.sync.status().last_successful_sync_time == AT


def test_status_writes_the_default_sups_sync_status(db: SiteDatabase, log: CMTraceLog) -> None:
    db.sups.replace([DEFAULT_SUP, REPLICA_SUP])
    _report(db, log).status(SYNC_DONE)

    [row] = db.sups.sync_statuses()
    assert row.wsus_server_name == "sup1.contoso.com"
    assert row.wsus_source_server == "Microsoft Update"
    assert row.last_sync_state == SYNC_DONE
    assert row.last_sync_error_code == 0
    assert row.last_successful_sync_time == AT
    assert row.replication_link_status == 0
    assert row.last_replication_link_check_time == AT


def test_failed_reports_6703_the_alert_and_the_retry(db: SiteDatabase, log: CMTraceLog) -> None:
    db.sups.replace([DEFAULT_SUP])
    report = SyncReport(db, SETTINGS, log, clock, None, jitter_source(15))
    report.status(SYNC_DONE)

    result = report.failed(
        SyncFailure("catalog refused", "WSUS", 0x80244010), DEFAULT_SUP, time.monotonic()
    )

    assert not result.succeeded
    assert result.error == "catalog refused"
    assert result.content_version == 0
    status = db.sync.status()
    assert status.last_sync_state == SYNC_FAILED
    assert status.last_error_code == 0x80244010
    assert status.last_error_text == "catalog refused"
    [message] = db.messages.find(message_id=SYNC_FAILED)
    assert message.last_error == 0x80244010
    assert "WSUS" in message.strings
    assert "catalog refused" in message.strings
    [row] = db.sups.sync_statuses()
    assert row.last_sync_state == SYNC_FAILED
    assert row.last_sync_error_code == 0x80244010
    assert row.last_successful_sync_time == AT  # kept from the earlier success
    [alert] = db.alerts.find(alert_type=AlertType.SYNC_FAILURE)
    assert alert.is_raised
    assert alert.instance == "sup1.contoso.com"
    errors = [e.message for e in _entries(log) if e.severity is Severity.ERROR]
    assert errors[0] == "Sync failed: catalog refused. Source: WSUS"
    assert errors[1].startswith(f"STATMSG: ID={SYNC_FAILED} ")
    # The configured 45 minutes plus whole minutes of jitter (at most a tenth more), the
    # same delay the result hands the site server for its retry.
    wait = SITE_SYNC_RETRY.scaled(45 * 60.0).next_delay(1, jitter_source(15))
    assert result.retry_in == wait == report.announced_retry
    assert 45 <= wait / 60 <= 49 and wait % 60 == 0
    assert errors[-1] == f"Sync failed. Will retry in {int(wait // 60)} minutes"


def test_sites_that_fail_together_announce_retries_minutes_apart(
    db: SiteDatabase, log: CMTraceLog
) -> None:
    said = set()
    for seed in range(8):
        report = SyncReport(db, SETTINGS, log, clock, None, jitter_source(seed))
        report.failed(SyncFailure("catalog refused", "WSUS", 0x80244010), None, time.monotonic())
        said.add([e.message for e in _entries(log)][-1])
    assert len(said) > 1
    assert all(re.fullmatch(r"Sync failed\. Will retry in (4[5-9]) minutes", m) for m in said)


def test_failed_on_an_unexpected_error_uses_the_generic_error(
    db: SiteDatabase, log: CMTraceLog
) -> None:
    _report(db, log).failed(RuntimeError(), None, time.monotonic())

    status = db.sync.status()
    assert status.last_error_code == GENERIC_ERROR
    assert status.last_error_text == "RuntimeError"
    [alert] = db.alerts.find(alert_type=AlertType.SYNC_FAILURE)
    assert alert.instance == "cs1.contoso.com"


def test_replica_failed_reports_on_the_replica(db: SiteDatabase, log: CMTraceLog) -> None:
    db.sups.replace([DEFAULT_SUP, REPLICA_SUP])
    report = _report(db, log)
    report.status(SYNC_DONE)

    report.replica_failed(REPLICA_SUP, SyncFailure("no answer", "WSUS replica", 0x80072EE2))

    statuses = {row.wsus_server_name: row for row in db.sups.sync_statuses()}
    assert statuses["sup1.contoso.com"].last_sync_state == SYNC_DONE
    replica = statuses["sup2.contoso.com"]
    assert replica.last_sync_state == SYNC_FAILED
    assert replica.last_sync_error_code == 0x80072EE2
    assert replica.wsus_source_server == "sup1.contoso.com"
    assert db.sync.status().last_sync_state == SYNC_DONE  # the site's own state is untouched
    [message] = db.messages.find(message_id=SYNC_FAILED)
    assert f"{REPLICA_FAILURE}sup2.contoso.com: no answer" in message.strings
    [alert] = db.alerts.find(alert_type=AlertType.SYNC_FAILURE)
    assert alert.instance == "sup2.contoso.com"
    errors = [e.message for e in _entries(log) if e.severity is Severity.ERROR]
    assert errors[0] == (
        "Failed to synchronize replica WSUS server sup2.contoso.com: no answer. "
        "Source: WSUS replica"
    )


def _raised(db: SiteDatabase) -> set[str]:
    return {a.instance for a in db.alerts.find(alert_type=AlertType.SYNC_FAILURE) if a.is_raised}


def test_cancel_sync_alerts_cancels_all_without_keep(db: SiteDatabase, log: CMTraceLog) -> None:
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, "sup1.contoso.com")
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, "sup2.contoso.com")
    _report(db, log).cancel_sync_alerts(keep=[])
    assert _raised(db) == set()


def test_cancel_sync_alerts_keeps_the_named_replicas(db: SiteDatabase, log: CMTraceLog) -> None:
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, "sup1.contoso.com")
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, "sup2.contoso.com")
    _report(db, log).cancel_sync_alerts(keep=["sup2.contoso.com"])
    assert _raised(db) == {"sup2.contoso.com"}


def test_content_version_line(db: SiteDatabase, log: CMTraceLog) -> None:
    report = SyncReport(db, replace(SETTINGS, update_source="{X}"), log, clock, None)
    report.content_version_line(7)
    [entry] = _entries(log)
    assert entry.message == "Set content version of update source {X} for site CS1 to 7"


def test_an_audit_not_available_raises_nothing_and_cancels_nothing(
    db: SiteDatabase, log: CMTraceLog
) -> None:
    report = _report(db, log)
    report.audit(
        REPLICA_SUP,
        "sup1.contoso.com",
        {
            "result": "differs",
            "own_count": 9,
            "upstream_count": 10,
            "own_digest": "a" * 64,
            "upstream_digest": "b" * 64,
        },
    )
    (raised,) = db.alerts.find(alert_type=AlertType.CONTENT_OUT_OF_SYNC)
    reason = "the upstream does not answer GetRevisionSetDigest (fault InvalidParameters)"
    report.audit(REPLICA_SUP, "sup1.contoso.com", {"result": "not available", "reason": reason})
    assert db.alerts.find(alert_type=AlertType.CONTENT_OUT_OF_SYNC) == [raised]  # still raised
    assert len(db.messages.find(message_id=6707)) == 1
    (audit,) = db.sups.audits()
    assert (audit.result, audit.reason, audit.checked_at) == ("not available", reason, AT)
    assert _entries(log)[-1].message == (
        "Could not compare content of WSUS Server SUP2.CONTOSO.COM with upstream server "
        f"sup1.contoso.com: {reason}"
    )
    report.audit(
        REPLICA_SUP, "sup1.contoso.com", {"result": "equal", "own_count": 10, "upstream_count": 10}
    )
    (canceled,) = db.alerts.find(alert_type=AlertType.CONTENT_OUT_OF_SYNC)
    assert canceled.alert_id == raised.alert_id and not canceled.is_raised
    assert _entries(log)[-1].message == (
        "Content of WSUS Server SUP2.CONTOSO.COM matches upstream server sup1.contoso.com "
        "(10 revisions)"
    )
