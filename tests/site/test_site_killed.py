"""The site server killed (SIGKILL) inside the site-database phase, then started again.

The kill comes where the test hook `UPDATESYNC_FAULT` pauses the sync (the phase's CIs
written, not committed), never after a log line, when the phase could already be over. The
demo runs a hierarchy of the top-level site alone: the phase is the top's, and the sites
below it would only add their syncs to each run. The killed runs take the catalogs the
undisturbed run generated (the demo keeps those it finds in its folder).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from updatesync.config.fault_injection import VARIABLE as FAULT_VARIABLE
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.sync_manager import CI_BATCH
from updatesync.site.watch.alerts import AlertState, AlertType

pytestmark = pytest.mark.slow

UPDATES = 5000
"""Enough for the first month's CIs to fill more than one batch (`CI_BATCH`) of the phase."""

TOP_ALONE = """\
[hierarchy]
name = "Contoso"

[hierarchy.upstream]
kind = "microsoft-update"

[[sites]]
code = "CS1"
fqdn = "cs1site.contoso.com"
type = "cas"

[[sites.sups]]
fqdn = "cs1site.contoso.com"
"""

DEMO = [
    sys.executable,
    "-m",
    "updatesync",
    "demo",
    "--updates",
    str(UPDATES),
    "--port",
    "0",
    "--console-port",
    "0",
]


def _state(site_dir: Path) -> tuple[int, int]:
    with SiteDatabase.open(site_dir) as db:
        return db.content.ci_count(), db.content.version()


def _wait_for(file: Path, process: subprocess.Popen[bytes], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not file.exists():
        assert process.poll() is None, (
            f"the demo ended (exit {process.returncode}) before the pause"
        )
        assert time.monotonic() < deadline, f"the demo did not reach the pause in {timeout} s"
        time.sleep(0.1)


def test_a_kill_in_the_site_database_phase_leaves_nothing_half_applied(tmp_path: Path) -> None:
    killed, calm = tmp_path / "killed", tmp_path / "calm"
    hierarchy = tmp_path / "top-alone.toml"
    hierarchy.write_text(TOP_ALONE, encoding="utf-8")
    demo = [*DEMO, "--hierarchy", str(hierarchy)]
    # An undisturbed run, for the state the disturbed one must reach.
    subprocess.run([*demo, "--once", "--data", str(calm)], check=True, capture_output=True)
    final = _state(calm / "hierarchy" / "CS1")
    # The first month alone (all but next month's changes) fills more than one batch of the
    # phase: the kill comes after batches written, not after a single one.
    assert final[0] - UPDATES // 30 > CI_BATCH
    killed.mkdir(mode=0o700)
    for catalog in calm.glob("catalog-month*.cab"):
        shutil.copy(catalog, killed)

    # The test hook pauses CS1's sync inside its site-database phase, the CIs written and
    # not committed, and says so by creating `paused`: the kill comes at that point.
    paused = tmp_path / "paused"
    child = subprocess.Popen(
        [*demo, "--data", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, FAULT_VARIABLE: f"pause-before:site-database-commit:{paused}"},
    )
    try:
        _wait_for(paused, child, timeout=300)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    cis, version = _state(killed / "hierarchy" / "CS1")
    with SiteDatabase.open(killed / "hierarchy" / "CS1") as db:
        interrupted = db.sync.status().last_sync_state
    assert interrupted == 6705
    # One transaction: none of the phase's CIs, the content version as before the phase.
    assert (cis, version) == (0, 1)

    again = subprocess.run([*demo, "--once", "--data", str(killed)], capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    with SiteDatabase.open(killed / "hierarchy" / "CS1") as db:
        failures = db.messages.find(message_id=6703)
        assert failures, "the interrupted sync is reported at the next start"
        assert "site database phase" in failures[-1].strings[1]
        assert [a.state for a in db.alerts.find(alert_type=AlertType.SYNC_FAILURE)] == [
            AlertState.CANCELED
        ]
    assert _state(killed / "hierarchy" / "CS1") == final
