"""The SUP's update server killed (SIGKILL) in the middle of its sync, then started again.

The kill comes where the test hook `UPDATESYNC_FAULT` pauses the update server's sync (its
first batch of updates committed, more to come), not at a moment seen from outside.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tokens import BearerFile
from upstream import stand_in_upstream

from updatesync.config.fault_injection import VARIABLE as FAULT_VARIABLE
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.metadata.document import parse_update
from updatesync.metadata.generator import generate_catalog
from updatesync.roles.serving import bind
from updatesync.site.database.models import SoftwareUpdatePoint
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.outcome import SiteSyncResult
from updatesync.site.sync.sup_client import UpdateServerApi
from updatesync.site.sync.sync_manager import SiteSyncSettings, SyncManager
from updatesync.site.watch.alerts import AlertState, AlertType

pytestmark = pytest.mark.slow


def _serve_sup(
    data: Path, port: int, upstream: str, *, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
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
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    for line in process.stdout:  # it says when it listens
        if "listening on" in line:
            # Keep reading its output, so that it never blocks on a full pipe.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process
    raise AssertionError(f"the update server did not start (exit {process.wait()})")


def test_a_killed_update_server_fails_the_sync_and_the_next_one_completes(tmp_path: Path) -> None:
    # 1,500 updates: at most 100 an answer, fifteen GetUpdateData calls or more, so that the kill
    # after the first committed batch leaves most of the sync undone.
    records = list(generate_catalog(1500, seed=71))
    free = bind("127.0.0.1", 0)
    port = free.getsockname()[1]
    free.close()
    with (
        stand_in_upstream(tmp_path, records) as (_mu, up),
        SiteDatabase.open(tmp_path / "CS1", site_code="CS1") as db,
    ):
        db.sups.replace([SoftwareUpdatePoint("cs1site.contoso.com", port=port)])
        manager = SyncManager(
            db,
            SiteSyncSettings(site_code="CS1", site_fqdn="CS1SITE.CONTOSO.COM"),
            CMTraceLog(tmp_path / "WSyncMgr.log", component="SMS_WSUS_SYNC_MANAGER"),
            lambda sup: UpdateServerApi(
                f"http://127.0.0.1:{sup.port}", auth=BearerFile(tmp_path / "sup" / "admin.token")
            ),
        )
        # The test hook pauses the update server's sync once it committed its first batch of
        # updates, and says so by creating `paused`: the kill comes at that point.
        paused = tmp_path / "paused"
        fault = {FAULT_VARIABLE: f"pause-before:update-server-updates-batch:{paused}"}
        sup = _serve_sup(tmp_path / "sup", port, up.url, env=fault)
        outcome: list[SiteSyncResult] = []
        worker = threading.Thread(target=lambda: outcome.append(manager.run("SELF")))
        worker.start()
        deadline = time.monotonic() + 120
        while not paused.exists():
            assert sup.poll() is None, f"the update server ended (exit {sup.returncode})"
            assert time.monotonic() < deadline, "the update server's sync never paused"
            time.sleep(0.1)
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
