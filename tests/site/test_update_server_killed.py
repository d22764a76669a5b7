"""The SUP's update server killed (SIGKILL) in the middle of its sync, then started again."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.metadata.document import parse_update
from updatesync.metadata.export import write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.roles.serving import BackgroundServer, bind
from updatesync.site.database.models import SoftwareUpdatePoint
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.outcome import SiteSyncResult
from updatesync.site.sync.sup_client import UpdateServerApi
from updatesync.site.sync.sync_manager import SiteSyncSettings, SyncManager
from updatesync.site.watch.alerts import AlertState, AlertType
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.service import create_app

pytestmark = pytest.mark.slow


def _serve_sup(data: Path, port: int, upstream: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "updatesync",
            "updateserver",
            "serve",
            "--data",
            str(data),
            "--port",
            str(port),
            "--upstream",
            upstream,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # it says when it listens
        if "listening on" in line:
            return process
    raise AssertionError(f"the update server did not start (exit {process.wait()})")


def test_a_killed_update_server_fails_the_sync_and_the_next_one_completes(tmp_path: Path) -> None:
    records = list(generate_catalog(6000, seed=71))
    write_export(tmp_path / "m1.cab", records)
    mu = UpdateStore.open(tmp_path / "mu")
    import_export_cabinet(mu, tmp_path / "m1.cab")
    free = bind("127.0.0.1", 0)
    port = free.getsockname()[1]
    free.close()
    with (
        BackgroundServer(create_app(StoreBackend(mu))) as up,
        SiteDatabase.open(tmp_path / "CS1", site_code="CS1") as db,
    ):
        db.sups.replace([SoftwareUpdatePoint("cs1site.contoso.com", port=port)])
        manager = SyncManager(
            db,
            SiteSyncSettings(site_code="CS1", site_fqdn="CS1SITE.CONTOSO.COM"),
            CMTraceLog(tmp_path / "WSyncMgr.log", component="SMS_WSUS_SYNC_MANAGER"),
            lambda sup: UpdateServerApi(f"http://127.0.0.1:{sup.port}"),
        )
        sup = _serve_sup(tmp_path / "sup", port, up.url)
        outcome: list[SiteSyncResult] = []
        worker = threading.Thread(target=lambda: outcome.append(manager.run("SELF")))
        worker.start()
        # Follow the update server's own sync (long polls) until it is fetching updates.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            state = {"version": 0, "phase": None, "phase_done": 0}
            while not (state["phase"] == "updates" and state["phase_done"] > 0):
                state = http.get(
                    "/api/sync", params={"version": state["version"], "wait": 30}
                ).json()
        sup.send_signal(signal.SIGKILL)
        sup.wait(timeout=30)
        worker.join(timeout=120)
        (failed,) = outcome
        assert not failed.succeeded
        assert (db.content.ci_count(), db.content.version()) == (0, 0)
        last = db.messages.find(limit=1)[0]
        assert last.message_id == 6703
        assert last.strings[1]
        assert [a.state for a in db.alerts.find(alert_type=AlertType.SYNC_FAILURE)] == [
            AlertState.RAISED
        ]

        sup = _serve_sup(tmp_path / "sup", port, up.url)
        try:
            again = manager.run("SELF")
        finally:
            sup.send_signal(signal.SIGTERM)
            sup.wait(timeout=30)
        assert again.succeeded, again.error
        every_update = {
            d.update_id
            for d in map(parse_update, (r.xml for r in records))
            if d.update_type in ("Software", "Driver")
        }
        assert {ci.update_id for ci in db.content.configuration_items()} == every_update
        assert db.content.version() == 2
        assert [a.state for a in db.alerts.find(alert_type=AlertType.SYNC_FAILURE)] == [
            AlertState.CANCELED
        ]
    mu.close()
