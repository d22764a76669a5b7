"""The store's sync lock: one holder at a time, in this process or another; re-entrant for
the sync that holds it; gone with its holder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import Database
from sqlalchemy import create_engine

from updatesync.updateserver.admin_api import SyncRunner, UpstreamSyncRequest
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.sync import SyncHooks
from updatesync.updateserver.sync_lock import (
    LOCK_FILE,
    SyncBusy,
    acquire_sync_lock,
    adopt,
    holding_sync_lock,
)


@pytest.fixture
def store(tmp_path: Path, database: Database) -> Iterator[UpdateStore]:
    with UpdateStore.open(tmp_path / "sup", url=database.url) as opened:
        yield opened


def test_a_second_holder_is_refused_until_the_first_lets_go(store: UpdateStore) -> None:
    lease = acquire_sync_lock(store, "http://up.example")
    assert lease is not None
    with pytest.raises(SyncBusy) as refused:
        acquire_sync_lock(store, "http://other.example")
    text = str(refused.value)
    assert f"the update server at {store.data_dir} is already syncing" in text
    assert f"process {os.getpid()} on {socket.gethostname()}" in text
    assert "syncing from http://up.example" in text
    assert (store.data_dir / LOCK_FILE).stat().st_mode & 0o077 == 0
    lease.release()
    lease.release()  # once is enough
    again = acquire_sync_lock(store, "http://other.example")
    assert again is not None
    again.release()


def test_two_stores_objects_of_one_folder_share_the_lock(store: UpdateStore) -> None:
    with (
        UpdateStore.open(
            store.data_dir, url=store.engine.url.render_as_string(hide_password=False)
        ) as other,
        holding_sync_lock(store, "a"),
        pytest.raises(SyncBusy),
    ):
        acquire_sync_lock(other, "b")


def test_the_holder_may_take_it_again(store: UpdateStore) -> None:
    with holding_sync_lock(store, "outer") as outer:
        with holding_sync_lock(store, "inner") as inner:
            assert inner is outer
        assert outer is not None and outer.held
    assert outer is not None and not outer.held


def test_another_thread_is_refused_unless_handed_the_lease(store: UpdateStore) -> None:
    lease = acquire_sync_lock(store, "up")
    seen: list[object] = []

    def other() -> None:
        try:
            with holding_sync_lock(store, "other"):
                seen.append("ran")
        except SyncBusy as busy:
            seen.append(busy)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert isinstance(seen.pop(), SyncBusy)

    def handed() -> None:
        with adopt(lease), holding_sync_lock(store, "nested") as nested:
            seen.append(nested)

    thread = threading.Thread(target=handed)
    thread.start()
    thread.join()
    assert seen == [lease]
    assert lease is not None and not lease.held  # adopt released it


def test_a_store_without_a_data_folder_has_no_lock() -> None:
    store = UpdateStore(create_engine("sqlite://"))
    assert store.data_dir is None
    with holding_sync_lock(store, "up") as lease:
        assert lease is None


def test_another_process_holding_the_lock_is_named(store: UpdateStore) -> None:
    code = (
        "import sys\n"
        "from updatesync.updateserver.store import UpdateStore\n"
        "from updatesync.updateserver.sync_lock import acquire_sync_lock\n"
        f"store = UpdateStore.open({str(store.data_dir)!r})\n"
        "acquire_sync_lock(store, 'http://far.example')\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(SyncBusy) as refused:
            acquire_sync_lock(store, "here")
        assert f"process {holder.pid} on" in str(refused.value)
        assert "syncing from http://far.example" in str(refused.value)
    finally:
        holder.kill()
        holder.wait()
    lease = acquire_sync_lock(store, "here")  # it went with the process
    assert lease is not None
    lease.release()


def test_a_runner_refuses_a_second_sync_naming_the_first(store: UpdateStore) -> None:
    release = threading.Event()
    running = threading.Event()

    def run(_request: UpstreamSyncRequest, _hooks: SyncHooks) -> object:
        with holding_sync_lock(store, "nested"):  # the runner's lease, re-entered
            running.set()
            release.wait(30)
        return {"ok": True}

    runner = SyncRunner(run, store=store, source="http://up.example")
    assert runner.begin() is None
    assert running.wait(30)
    refused = runner.begin()
    assert refused is not None and "syncing from http://up.example" in refused
    with pytest.raises(SyncBusy):
        acquire_sync_lock(store, "cli")
    release.set()
    runner.wait(30)
    assert runner.state.last_result == {"ok": True} and runner.state.last_error is None
    assert runner.start() is True  # the lock was let go
    runner.close()
