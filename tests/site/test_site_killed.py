"""The site server killed (SIGKILL) inside the site-database phase, then started again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_a_kill_in_the_site_database_phase_leaves_nothing_half_applied(tmp_path: Path) -> None:
    killed, calm = tmp_path / "killed", tmp_path / "calm"
    # An undisturbed run, for the state the disturbed one must reach.
    subprocess.run([*DEMO, "--once", "--data", str(calm)], check=True, capture_output=True)
    final = _state(calm / "hierarchy" / "CS1")

    child = subprocess.Popen(
        [*DEMO, "--data", str(killed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert child.stdout is not None
    for line in child.stdout:  # the demo echoes each site's WSyncMgr.log as it is written
        if line.startswith("CS1  sync: SMS synchronizing updates"):
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    cis, version = _state(killed / "hierarchy" / "CS1")
    with SiteDatabase.open(killed / "hierarchy" / "CS1") as db:
        interrupted = db.sync.status().last_sync_state
    assert interrupted == 6705
    # One transaction: either none of the phase's CIs, or all of them (killed after commit).
    assert (cis, version) == (0, 1) or (cis > 0 and version == 2)

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
