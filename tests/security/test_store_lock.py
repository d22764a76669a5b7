"""One sync per store, across processes.

Finding (issue 11, "One sync per store"): two `updatesync updateserver sync` runs on one
store at once both ran (double work, wrong counts). Now the second is refused at once,
exit 1, with a message naming the running one (process id, host, start time, upstream);
the admin API's `POST /api/sync` on the same store answers 409 with the same reason; and a
sync killed in the middle leaves no lock behind.

The first sync is held where the test hook `UPDATESYNC_FAULT` pauses it (its first batch of
updates committed, more to come), not at a moment seen from outside.

A store on PostgreSQL may be shared by update servers on several hosts, each with its own
data folder: two data folders on ONE PostgreSQL database stand for two hosts. The second
host's sync is refused naming the first (its advisory lock), runs once the first has ended,
and a first one killed with SIGKILL leaves no lock behind.
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
from databases import postgresql_database
from sqlalchemy import create_engine, text
from upstream import stand_in_upstream

from updatesync.config.fault_injection import VARIABLE as FAULT_VARIABLE
from updatesync.metadata.generator import generate_catalog
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.admin_api import admin_routes, upstream_runner
from updatesync.updateserver.database import database_name
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.updateserver.sync.run import sync_from_upstream
from updatesync.updateserver.sync.settings import SyncSettings
from updatesync.updateserver.sync_lock import SyncBusy, acquire_sync_lock
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


# -- two hosts, one PostgreSQL store ----------------------------------------------------------

_SYNC_ON_DATABASE = """
import sys
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.sync.run import sync_from_upstream
from updatesync.updateserver.sync.settings import SyncSettings
with UpdateStore.open(sys.argv[1], url=sys.argv[2]) as store:
    sync_from_upstream(store, SyncSettings(sys.argv[3]))
"""


def test_hosts_sharing_a_postgresql_store_sync_one_at_a_time(tmp_path: Path) -> None:
    with (
        postgresql_database() as database,
        UpdateStore.open(tmp_path / "host-a", url=database.url) as host_a,
        UpdateStore.open(tmp_path / "host-b", url=database.url) as host_b,
    ):
        first = acquire_sync_lock(host_a, "https://upstream.example:8531")
        assert first is not None
        try:
            with pytest.raises(SyncBusy) as refused:
                acquire_sync_lock(host_b, "https://other.example:8531")
            said = str(refused.value)
            assert f"the update server store {database_name(database.url)}" in said
            assert f"(used by the update server at {tmp_path / 'host-b'})" in said
            assert f"process {os.getpid()} on {socket.gethostname()}" in said
            assert f"started {first.holder.started_at}" in said
            assert "syncing from https://upstream.example:8531" in said
        finally:
            first.release()

        second = acquire_sync_lock(host_b, "https://other.example:8531")
        assert second is not None
        second.release()


def _advisory_locks(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = (
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            return int(conn.execute(text(query)).scalar_one())
    finally:
        engine.dispose()


def test_a_killed_sync_on_another_host_leaves_no_lock_on_the_shared_store(
    tmp_path: Path,
) -> None:
    paused = tmp_path / "paused"
    env = {**os.environ, FAULT_VARIABLE: f"pause-before:update-server-updates-batch:{paused}"}
    with (
        postgresql_database() as database,
        stand_in_upstream(tmp_path, generate_catalog(300, seed=5)) as (_mu, up),
    ):
        command = [sys.executable, "-c", _SYNC_ON_DATABASE, str(tmp_path / "host-a")]
        first = subprocess.Popen(
            [*command, database.url, up.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            _wait_for(paused, first)
            with UpdateStore.open(tmp_path / "host-b", url=database.url) as host_b:
                with pytest.raises(SyncBusy) as refused:
                    sync_from_upstream(host_b, SyncSettings(up.url))
                said = str(refused.value)
                assert f"process {first.pid} on {socket.gethostname()}" in said
                assert f"syncing from {up.url}" in said
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)

        # Its session ends with it (the server sees the connection close), and the lock goes.
        deadline = time.monotonic() + 60
        while _advisory_locks(database.url):
            assert time.monotonic() < deadline, "the killed sync's advisory lock stayed"
            time.sleep(0.05)
        with UpdateStore.open(tmp_path / "host-b", url=database.url) as host_b:
            result = sync_from_upstream(host_b, SyncSettings(up.url))
            assert result.new_revisions > 0
