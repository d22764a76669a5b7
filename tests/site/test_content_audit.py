"""The consistency audit in a site's sync (issue 14, item 6): CS1 with its default SUP and a
replica SUP, every role in one process on SQLite or PostgreSQL. The replica's store loses a
revision at a point the test chooses; the next sync raises 6707 with the reference's text,
its inserts, the WSyncMgr.log lines and an alert naming both servers; the sync after it is
a full sync of the replica and ends proven equal, the alert canceled."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import httpx
from databases import Databases
from drift import lose_revision
from hierarchy_inprocess import InProcessHierarchy

from updatesync.config import Hierarchy, Sup
from updatesync.logs.runs import SyncRun
from updatesync.logs.status_messages import describe, format_statmsg
from updatesync.logs.tracker import track_paths
from updatesync.site.watch.alerts import AlertState, AlertType
from updatesync.updateserver.store import UpdateStore
from updatesync.vocabulary import CATALOGUE, CONTENT_OUT_OF_SYNC

DEFAULT = "cs1site.contoso.com"
REPLICA = "cs1rep.contoso.com"
TEXT_6707 = "Content of WSUS Server %1 is out of sync with upstream server %2."


def _cs1_alone_with_a_replica(hierarchy: Hierarchy) -> Hierarchy:
    (cs1,) = [site for site in hierarchy.sites if site.code == "CS1"]
    return replace(hierarchy, sites=(replace(cs1, sups=(*cs1.sups, Sup(REPLICA))),))


def test_a_drifted_replica_raises_6707_and_the_full_sync_after_it_proves_it_equal(
    tmp_path: Path, databases: Databases
) -> None:
    assert CATALOGUE[CONTENT_OUT_OF_SYNC].text == TEXT_6707  # the reference's words
    new = None if databases.kind == "sqlite" else lambda name: databases.new(name).url
    with InProcessHierarchy(
        tmp_path, updates=120, adjust=_cs1_alone_with_a_replica, database=new
    ) as h:
        db = h.db("CS1")
        h.sync_now("CS1")
        h.wait("CS1", 1)
        h.wait_idle(("CS1",))
        audits = {a.wsus_server_name: a for a in db.sups.audits()}
        # The default SUP against the stand-in Microsoft Update (an updatesync server here),
        # the replica against the default SUP: both proven equal.
        assert audits[DEFAULT].result == audits[REPLICA].result == "equal"
        assert audits[REPLICA].upstream_server == DEFAULT
        assert audits[REPLICA].own_count == audits[REPLICA].upstream_count > 100
        assert not db.alerts.find(alert_type=AlertType.CONTENT_OUT_OF_SYNC)

        # The replica's store loses a subscribed update's revision, behind its back.
        _, sup = h.hierarchy.find_sup(REPLICA)
        with UpdateStore.open(h.hierarchy.update_server_dir(REPLICA), url=sup.database) as store:
            lost = next(
                k
                for k in sorted(store.revision_keys())
                if store.products_and_classifications(k.update_id)[1]
            )
            lose_revision(store.engine, lost)
        assert (lost.update_id, lost.revision) not in h.revisions(REPLICA)

        h.sync_now("CS1")
        h.wait("CS1", 2)
        h.wait_idle(("CS1",))
        (message,) = db.messages.find(site_code="CS1", message_id=CONTENT_OUT_OF_SYNC)
        assert message.strings[:3] == (REPLICA, DEFAULT, "")
        assert describe(message) == (
            f"Content of WSUS Server {REPLICA} is out of sync with upstream server {DEFAULT}."
        )
        audit = {a.wsus_server_name: a for a in db.sups.audits()}[REPLICA]
        assert audit.result == "differs"
        assert (audit.own_count or 0) + 1 == audit.upstream_count
        (alert,) = db.alerts.find(alert_type=AlertType.CONTENT_OUT_OF_SYNC)
        assert alert.state is AlertState.RAISED and alert.instance == REPLICA
        assert REPLICA in alert.text and DEFAULT in alert.text
        log = h.log("CS1")
        name = REPLICA.upper()
        at = log.index(format_statmsg(message))
        assert log[at - 2] == f"Done synchronizing WSUS Server {REPLICA}"
        assert re.fullmatch(
            rf"Content of WSUS Server {re.escape(name)} differs from upstream server "
            rf"{DEFAULT}: {audit.own_count} revisions \(digest [0-9a-f]{{64}}\), upstream "
            rf"{audit.upstream_count} revisions \(digest [0-9a-f]{{64}}\)",
            log[at - 1],
        )
        assert (
            log[at + 1]
            == f"Next synchronization of WSUS Server {name} will be a full synchronization"
        )
        # The provider and the console show it per SUP.
        rows = httpx.get(
            f"{h.url('CS1')}/api/sites/CS1/sup-sync-status",
            headers=h.admin(),
            verify=h.verify,
        ).json()
        shown = {r["WSUSServerName"]: r for r in rows}
        assert shown[REPLICA]["ContentAudit"] == "differs"
        assert shown[REPLICA]["ContentAuditUpstream"] == DEFAULT
        assert shown[DEFAULT]["ContentAudit"] == "equal"

        h.sync_now("CS1")
        h.wait("CS1", 3)
        h.wait_idle(("CS1",))
        assert (lost.update_id, lost.revision) in h.revisions(REPLICA)  # the full sync's
        audit = {a.wsus_server_name: a for a in db.sups.audits()}[REPLICA]
        assert audit.result == "equal" and audit.own_count == audit.upstream_count
        (alert,) = db.alerts.find(alert_type=AlertType.CONTENT_OUT_OF_SYNC)
        assert alert.state is AlertState.CANCELED
        assert len(db.messages.find(site_code="CS1", message_id=CONTENT_OUT_OF_SYNC)) == 1
        assert f"Content of WSUS Server {name} matches upstream server {DEFAULT} (" in "\n".join(
            h.log("CS1")
        )

        # The log tracker reports the run with the 6707 as such.
        runs = [r for r in track_paths([h.site("CS1").log_dir]) if isinstance(r, SyncRun)]
        assert len(runs) == 3 and all(r.result == "success" for r in runs)
        assert [r.warnings for r in runs] == [[], [describe(message)], []]
