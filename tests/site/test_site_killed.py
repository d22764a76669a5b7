"""The site server killed (SIGKILL) inside the site-database phase, then started again.

The kill comes where the test hook `UPDATESYNC_FAULT` pauses the sync (the phase's CIs
written, not committed), never after a log line, when the phase could already be over.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from updatesync.config.fault_injection import VARIABLE as FAULT_VARIABLE
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.watch.alerts import AlertState, AlertType

pytestmark = pytest.mark.slow

DEMO = [
    sys.executable,
    "-m",
    "updatesync",
    "demo",
    "--updates",
    "5000",
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
    # An undisturbed run, for the state the disturbed one must reach.
    subprocess.run([*DEMO, "--once", "--data", str(calm)], check=True, capture_output=True)
    final = _state(calm / "hierarchy" / "CS1")

    # The test hook pauses CS1's sync inside its site-database phase, the CIs written and
    # not committed, and says so by creating `paused`: the kill comes at that point.
    paused = tmp_path / "paused"
    child = subprocess.Popen(
        [*DEMO, "--data", str(killed)],
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

    again = subprocess.run([*DEMO, "--once", "--data", str(killed)], capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    with SiteDatabase.open(killed / "hierarchy" / "CS1") as db:
        failures = db.messages.find(message_id=6703)
        assert failures, "the interrupted sync is reported at the next start"
        assert "site database phase" in failures[-1].strings[1]
        assert [a.state for a in db.alerts.find(alert_type=AlertType.SYNC_FAILURE)] == [
            AlertState.CANCELED
        ]
    assert _state(killed / "hierarchy" / "CS1") == final
