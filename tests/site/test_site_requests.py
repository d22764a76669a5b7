"""Requests reaching a real top-level site: inbox drops, SyncNow during a running sync."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tokens import bearer, token_for
from top_site import top_level_site

from updatesync.logs.cmtrace import CMTraceLog, read_cmtrace
from updatesync.roles.serving import BackgroundServer
from updatesync.security.access import SecurityRole
from updatesync.site.api.provider import create_provider_app
from updatesync.site.sync.db_monitor import DatabaseMonitor
from updatesync.site.sync.inbox import Inbox
from updatesync.site.sync.sync_manager import SiteSyncResult
from updatesync.site.sync.worker import SyncWorker
from updatesync.updateserver.admin_api import UpstreamSyncRequest

WAIT = 60.0


@dataclass
class RunningSite:
    server: SyncWorker
    inbox: Inbox
    provider: str
    log: Path
    results: list[SiteSyncResult]
    sup_requests: list[bool]
    gate: threading.Event
    entered: threading.Event
    token: str


@pytest.fixture
def site(tmp_path: Path) -> Iterator[RunningSite]:
    gate, entered = threading.Event(), threading.Event()
    gate.set()
    sup_requests: list[bool] = []
    results: list[SiteSyncResult] = []

    def held(request: UpstreamSyncRequest) -> None:
        sup_requests.append(request.full)
        entered.set()
        assert gate.wait(WAIT)

    with top_level_site(
        tmp_path, updates=300, seed=61, subscribe=False, on_sup_request=held
    ) as top:
        db, manager, log = top.db, top.manager, top.log_path
        inbox = Inbox(tmp_path / "CS1" / "inboxes" / "WSyncMgr.box")
        dbmon_log = CMTraceLog(
            tmp_path / "CS1" / "logs" / "SMSDBMON.log",
            component="SMS_DATABASE_NOTIFICATION_MONITOR",
        )
        monitor = DatabaseMonitor(db, inbox, dbmon_log, wake=threading.Event())
        server = SyncWorker(db, manager, inbox, monitor, on_sync_done=results.append)
        provider_log = CMTraceLog(
            tmp_path / "CS1" / "logs" / "SMSProv.log", component="SMS Provider"
        )
        provider = create_provider_app(
            db, log=provider_log, site_code="CS1", on_sync_requested=monitor.notify
        )
        server.start()
        token = token_for(db, "manager", SecurityRole.SOFTWARE_UPDATE_MANAGER)
        with BackgroundServer(provider) as prov:
            yield RunningSite(
                server, inbox, prov.url, log, results, sup_requests, gate, entered, token
            )
        server.stop()


def _lines(log: Path) -> list[str]:
    return [e.message for e in read_cmtrace(log)]


def test_a_hand_made_full_syn_runs_a_full_sync_and_self_syn_a_delta(site: RunningSite) -> None:
    site.inbox.drop("SELF")
    assert site.server.wait_idle(WAIT)
    first = len(_lines(site.log))
    site.inbox.drop("SELF")  # nothing changed upstream: the delta lists no update
    assert site.server.wait_idle(WAIT)
    delta = _lines(site.log)[first:]
    site.inbox.drop("FULL")  # everything is re-examined
    assert site.server.wait_idle(WAIT)
    full = _lines(site.log)[first + len(delta) :]
    assert site.sup_requests == [False, False, True]
    assert not any(line.startswith("sync: SMS synchronizing updates, processed") for line in delta)
    examined = [
        line for line in full if line.startswith("sync: SMS synchronizing updates, processed")
    ]
    assert examined and examined[0].endswith("(100%)")
    assert [r.succeeded for r in site.results] == [True, True, True]
    assert site.results[-1].cis_changed == 0


def test_three_requests_during_a_sync_give_exactly_one_follow_up(site: RunningSite) -> None:
    site.gate.clear()
    with httpx.Client(base_url=site.provider, headers=bearer(site.token)) as http:
        assert http.post("/api/sites/CS1/sync", json={"full": False}).status_code == 202
        assert site.entered.wait(WAIT)  # the first sync is inside its update server phase
        for full in (False, True, False):
            assert http.post("/api/sites/CS1/sync", json={"full": full}).status_code == 202
        site.gate.set()
        assert site.server.wait_idle(WAIT)
    assert site.sup_requests == [False, True]  # one follow-up, FULL among the three wins
    assert [r.succeeded for r in site.results] == [True, True]
