"""A replica SUP at the top-level site: it syncs after the site's 6702, then the children
are notified (SPEC section 2, steps 6 to 8)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from hierarchy_inprocess import InProcessHierarchy, assert_in_order

from updatesync.config import Hierarchy, Sup


def _with_cs1_replica(hierarchy: Hierarchy) -> Hierarchy:
    sites = tuple(
        replace(site, sups=(*site.sups, Sup("cs1rep.contoso.com"))) if site.code == "CS1" else site
        for site in hierarchy.sites
    )
    return replace(hierarchy, sites=sites)


def test_a_top_level_replica_syncs_after_6702_and_before_the_notification(
    tmp_path: Path,
) -> None:
    with InProcessHierarchy(tmp_path, updates=150, adjust=_with_cs1_replica) as h:
        h.sync_now("CS1")
        h.wait_all(1)
        h.wait_idle()
        log = h.log("CS1")
        expected = [
            "STATMSG: ID=6702 ",
            "Sync succeeded. Setting sync alert to canceled state on site CS1",
            "Sync time: ",
            "Synchronizing replica WSUS servers",
            "STATMSG: ID=6706 ",
            "Synchronizing WSUS server cs1rep.contoso.com ...",
            "sync: Starting Replica WSUS synchronization",
            "sync: Replica WSUS synchronizing other items",
            "Done synchronizing WSUS Server cs1rep.contoso.com",
            "Sending sync notification to child site(s): PS1, PS2",
        ]
        assert_in_order([re.compile(re.escape(line) + ".*") for line in expected], log)
        assert h.revisions("cs1rep.contoso.com") == h.revisions("cs1site.contoso.com")
        rows = {s.wsus_server_name: s for s in h.db("CS1").sups.sync_statuses()}
        assert rows["cs1rep.contoso.com"].last_sync_state == 6702
        assert rows["cs1rep.contoso.com"].wsus_source_server == "cs1site.contoso.com"
        # The site's own sync state stays "done": the replica ran after it.
        assert h.db("CS1").sync.status().last_sync_state == 6702
        assert all(result.succeeded for result in h.results("PS1"))
