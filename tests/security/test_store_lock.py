"""One sync per store, across processes.

Finding (issue 11, "One sync per store"): two `updatesync updateserver sync` runs on one
store at once both ran (double work, wrong counts). Now the second is refused at once,
exit 1, with a message naming the running one (process id, host, start time, upstream);
the admin API's `POST /api/sync` on the same store answers 409 with the same reason; and a
sync killed in the middle leaves no lock behind.

The first sync is held where the test hook `UPDATESYNC_FAULT` pauses it (its first batch of
updates committed, more to come), not at a moment seen from outside.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from upstream import stand_in_upstream

from updatesync.config.fault_injection import VARIABLE as FAULT_VARIABLE
from updatesync.metadata.generator import generate_catalog
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.admin_api import admin_routes, upstream_runner
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.service import create_app

pytestmark = pytest.mark.slow


def _command(data: Path, upstream: str) -> list[str]:
    sync = ("updatesync", "updateserver", "sync")
    return [sys.executable, "-m", *sync, "--data", str(data), "--upstream", upstream]


def _sync(data: Path, upstream: str, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _command(data, upstream),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[arg-type]
    )


def _wait_for(signal_file: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not signal_file.exists():
        assert process.poll() is None, f"the first sync ended: {process.communicate()}"
        assert time.monotonic() < deadline, "the first sync never paused"
        time.sleep(0.05)


def test_a_second_sync_of_a_syncing_store_is_refused_naming_the_first(tmp_path: Path) -> None:
    data = tmp_path / "sup"
    paused = tmp_path / "paused"
    env = {
        **os.environ,
        "COLUMNS": "500",
        FAULT_VARIABLE: f"pause-before:update-server-updates-batch:{paused}",
    }
    plain = {**os.environ, "COLUMNS": "500"}
    with stand_in_upstream(tmp_path, generate_catalog(300, seed=5)) as (_mu, up):
        first = _sync(data, up.url, env=env)
        try:
            _wait_for(paused, first)

            # The CLI: refused at once, exit 1, naming the running sync.
            began = time.monotonic()
            second = subprocess.run(
                _command(data, up.url),
                capture_output=True,
                text=True,
                timeout=60,
                env=plain,
                check=False,
            )
            said = " ".join(second.stderr.split())
            assert second.returncode == 1, said
            assert f"the update server at {data} is already syncing" in said
            assert f"process {first.pid} on {socket.gethostname()}" in said
            assert f"syncing from {up.url}" in said and "started 20" in said
            assert "Traceback" not in said
            assert time.monotonic() - began < 30  # at once: not after the first one

            # The admin API of a server on the same store: 409, the same reason.
            with UpdateStore.open(data) as store:
                runner = upstream_runner(store, up.url)
                app = create_app(StoreBackend(store), extra_routes=admin_routes(store, runner))
                with BackgroundServer(app) as server:
                    answer = httpx.post(f"{server.url}/api/sync", json={})
                    state = httpx.get(f"{server.url}/api/sync").json()
                runner.close()
            assert answer.status_code == 409
            assert f"process {first.pid} on {socket.gethostname()}" in answer.json()["error"]
            assert state["running"] is False and state["last_error"] is None
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)

        # The lock went with the killed process: the next sync runs to the end.
        again = subprocess.run(
            _command(data, up.url),
            capture_output=True,
            text=True,
            timeout=300,
            env=plain,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        assert "synced from" in again.stdout
