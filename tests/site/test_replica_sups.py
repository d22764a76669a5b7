"""A child primary's replica SUP (ps1sys, a replica of ps1site) that cannot be reached during
the site's sync: the failure is reported for that SUP, and the site's sync still stands
(SPEC sections 3.4 and 4)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hierarchy_inprocess import SITE_CODES, InProcessHierarchy

from updatesync.logs.status_messages import StatusMessage
from updatesync.site.database.models import SUPSyncStatus
from updatesync.site.sync.outcome import SiteSyncResult
from updatesync.site.watch.alerts import Alert, AlertState, AlertType
from updatesync.updateserver.failures import CANNOT_CONNECT
from updatesync.vocabulary import MessageSeverity

REPLICA = "ps1sys.contoso.com"
DEFAULT = "ps1site.contoso.com"


@dataclass
class ReplicaDown:
    h: InProcessHierarchy
    messages: list[StatusMessage]
    """PS1's own status messages, oldest first."""
    sup_status: dict[str, SUPSyncStatus]
    alerts: list[Alert]
    log: list[str]
    results: dict[str, list[SiteSyncResult]]
    """Each site's sync results after that first sync (a later test syncs again)."""
    versions: dict[str, int]
    """Each site's content version then."""
    ps1_state: int | None
    ss1_revisions: set[tuple[str, int]]
    default_revisions: set[tuple[str, int]]


@pytest.fixture(scope="module")
def replica_down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaDown]:
    with InProcessHierarchy(tmp_path_factory.mktemp("hierarchy"), updates=150) as h:
        h.stop_role(f"sup:{REPLICA}")  # its port now refuses connections
        h.sync_now("CS1")
        h.wait_all(1)
        h.wait_idle()
        db = h.db("PS1")
        yield ReplicaDown(
            h=h,
            messages=list(reversed(db.messages.find(site_code="PS1"))),
            sup_status={s.wsus_server_name: s for s in db.sups.sync_statuses(site_code="PS1")},
            alerts=db.alerts.find(site_code="PS1", alert_type=AlertType.SYNC_FAILURE),
            log=h.log("PS1"),
            results={code: list(h.results(code)) for code in SITE_CODES},
            versions={code: h.db(code).content.version() for code in SITE_CODES},
            ps1_state=db.sync.status().last_sync_state,
            ss1_revisions=h.revisions("ss1site.contoso.com"),
            default_revisions=h.revisions(DEFAULT),
        )


def test_the_failing_replica_is_reported_with_6703_naming_it(replica_down: ReplicaDown) -> None:
    ids = [m.message_id for m in replica_down.messages]
    assert ids == [6701, 6704, 6706, 6703, 6702]
    failed = replica_down.messages[3]
    assert failed.severity is MessageSeverity.ERROR
    assert failed.last_error == CANNOT_CONNECT
    assert any(REPLICA in text for text in failed.strings[:2]), failed.strings
    assert any(
        line.startswith(f"Failed to synchronize replica WSUS server {REPLICA}: ")
        for line in replica_down.log
    )


def test_the_replicas_sup_status_and_alert_show_the_failure(replica_down: ReplicaDown) -> None:
    replica = replica_down.sup_status[REPLICA]
    assert replica.last_sync_state == 6703
    assert replica.last_sync_error_code == CANNOT_CONNECT
    assert replica.last_successful_sync_time is None
    assert replica.wsus_source_server == DEFAULT
    default = replica_down.sup_status[DEFAULT]
    assert (default.last_sync_state, default.last_sync_error_code) == (6702, 0)
    raised = [a for a in replica_down.alerts if a.state is AlertState.RAISED]
    assert [a.instance for a in raised] == [REPLICA]
    assert raised[0].text == f"Synchronization failure alert for software update point: {REPLICA}"


def test_the_sites_sync_still_succeeds_and_reaches_the_secondary(replica_down: ReplicaDown) -> None:
    version = replica_down.versions["CS1"]
    (ps1,) = replica_down.results["PS1"]
    assert ps1.succeeded, ps1.error
    assert replica_down.versions["PS1"] == version
    assert replica_down.ps1_state == 6702
    assert f"Successfully synced site with parent CS1, version {version}" in replica_down.log
    assert "Sending sync notification to child site(s): SS1" in replica_down.log
    (ss1,) = replica_down.results["SS1"]
    assert ss1.succeeded, ss1.error
    assert replica_down.versions["SS1"] == version
    assert replica_down.ss1_revisions == replica_down.default_revisions


def test_the_replica_back_catches_up_at_the_next_sync_and_its_alert_is_canceled(
    replica_down: ReplicaDown,
) -> None:
    h = replica_down.h
    h.start_role(f"sup:{REPLICA}")
    h.sync_now("CS1")
    h.wait_all(2)
    h.wait_idle()
    for code in SITE_CODES:
        assert h.results(code)[-1].succeeded, code
    db = h.db("PS1")
    replica = next(
        s for s in db.sups.sync_statuses(site_code="PS1") if s.wsus_server_name == REPLICA
    )
    assert (replica.last_sync_state, replica.last_sync_error_code) == (6702, 0)
    assert replica.last_successful_sync_time is not None
    assert h.revisions(REPLICA) == h.revisions(DEFAULT)
    assert db.alerts.find(alert_type=AlertType.SYNC_FAILURE, state=AlertState.RAISED) == []
