"""The update server's admin API over real HTTP: status, changes, sync control, downstreams."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from databases import Databases

from updatesync.metadata.export import write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.admin_api import SyncRunner, UpstreamSyncRequest, admin_routes
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.peers import upstream_state
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.updateserver.sync import SyncHooks, SyncResult, SyncSettings, sync_from_upstream
from updatesync.wsusss.messages import (
    GetAuthorizationCookieRequest,
    GetAuthorizationCookieResponse,
    operation_for,
)
from updatesync.wsusss.service import create_app
from updatesync.wsusss.soap import CONTENT_TYPE, DSS_AUTH_PATH


@pytest.fixture
def store(tmp_path: Path, databases: Databases) -> UpdateStore:
    write_export(tmp_path / "m1.cab", generate_catalog(50, seed=4))
    opened = UpdateStore.open(tmp_path / "sup", url=databases.new().url)
    import_export_cabinet(opened, tmp_path / "m1.cab")
    return opened


def test_status_and_changes(store: UpdateStore) -> None:
    app = create_app(StoreBackend(store), extra_routes=admin_routes(store, None))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
        status = http.get("/api/status").json()
        assert status["revisions"] == store.status().revisions
        counter = status["last_change"]
        changes = http.get("/api/changes", params={"since": counter - 3}).json()
        assert changes["change_counter"] == counter
        assert [tuple(r) for r in changes["revisions"]] == [
            (k.update_id, k.revision) for k in store.changed_since(counter - 3)
        ]
        assert len(changes["revisions"]) == 3
        bad = http.get("/api/changes", params={"since": "yesterday"})
        assert bad.status_code == 400
        assert "whole number" in bad.json()["error"]
        # No upstream configured: syncing is refused with the reason.
        refused = http.post("/api/sync", json={})
        assert refused.status_code == 409
        assert "no upstream" in refused.json()["error"]


def test_a_sync_runs_once_at_a_time_and_reports_progress(store: UpdateStore) -> None:
    release = threading.Event()
    reached = threading.Event()

    def run(request: UpstreamSyncRequest, hooks: SyncHooks) -> dict[str, object]:
        assert hooks.progress is not None
        progress = hooks.progress
        progress(3, 10)
        reached.set()
        release.wait(30)
        progress(10, 10)
        return {"full": request.full, "new_revisions": 10}

    runner = SyncRunner(run)
    app = create_app(StoreBackend(store), extra_routes=admin_routes(store, runner))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
        started = http.post("/api/sync", json={"full": True})
        assert started.status_code == 202
        assert reached.wait(30)
        state = http.get("/api/sync").json()
        assert state["running"] is True
        assert (state["done"], state["total"]) == (3, 10)
        assert http.post("/api/sync", json={}).status_code == 409
        release.set()
        runner.wait(30)
        state = http.get("/api/sync").json()
        assert state["running"] is False
        assert state["last_result"] == {"full": True, "new_revisions": 10}
        assert state["last_error"] is None


def test_a_failed_sync_is_reported(store: UpdateStore) -> None:
    def run(request: UpstreamSyncRequest, hooks: SyncHooks) -> None:
        raise RuntimeError("upstream http://wsus.example:8530 refused the connection")

    runner = SyncRunner(run)
    app = create_app(StoreBackend(store), extra_routes=admin_routes(store, runner))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
        assert http.post("/api/sync", json={}).status_code == 202
        runner.wait(30)
        state = http.get("/api/sync").json()
        assert state["last_error"] == "upstream http://wsus.example:8530 refused the connection"
        assert state["last_result"] is None


def test_a_downstream_is_registered_on_first_contact(store: UpdateStore) -> None:
    app = create_app(StoreBackend(store), extra_routes=admin_routes(store, None))
    account = str(uuid.uuid4())
    request = GetAuthorizationCookieRequest("ps1site.contoso.com", account)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/api/downstream").json()["items"] == []
        answer = http.post(
            DSS_AUTH_PATH,
            content=request.to_xml(),
            headers={
                "Content-Type": CONTENT_TYPE,
                "SOAPAction": operation_for(request).soap_action,
            },
        )
        assert answer.status_code == 200, answer.text
        assert GetAuthorizationCookieResponse.from_xml(answer.content).result.cookie_data
        listed = http.get("/api/downstream").json()["items"]
    assert [(d["account_guid"], d["account_name"], d["address"]) for d in listed] == [
        (account, "ps1site.contoso.com", "127.0.0.1")
    ]


# --------------------------------------------------------------------------- closing the runner


def _runner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "update-server-sync"]


def test_close_stops_a_running_sync_at_a_batch_boundary(
    store: UpdateStore, tmp_path: Path, databases: Databases
) -> None:
    """close() cancels the sync between two GetUpdateData batches: the batches committed
    stay, no anchor is saved past them, no thread is left, and the next sync completes."""
    down = UpdateStore.open(tmp_path / "down", url=databases.new().url)
    first_batch = threading.Event()
    with BackgroundServer(create_app(StoreBackend(store))) as up:

        def run(request: UpstreamSyncRequest, hooks: SyncHooks) -> SyncResult:
            cancel = hooks.cancel
            assert cancel is not None

            def progress(done: int, total: int) -> None:
                if done:  # a batch is committed: hold the sync here until close() asks
                    first_batch.set()
                    assert cancel.wait(30)

            settings = SyncSettings(up.url, full=request.full, server_name="dss.test")
            return sync_from_upstream(down, settings, hooks=replace(hooks, progress=progress))

        runner = SyncRunner(run)
        assert runner.start()
        assert first_batch.wait(30)
        assert runner.is_alive()
        runner.close()

        assert not runner.is_alive() and not _runner_threads()
        assert not runner.state.running
        assert runner.state.last_result is None
        assert "cancelled" in (runner.state.last_error or "")
        assert not runner.start()  # a closed runner starts nothing

        # One whole batch, nothing half-written, and no anchor past what was committed.
        held = down.revision_keys()
        assert 0 < len(held) < len(store.revision_keys())
        assert held <= store.revision_keys()
        assert upstream_state(down, up.url).update_list_anchor is None
        assert down.history()[0].result != "Succeeded"

        # The next sync resumes: it asks only for what is missing and ends complete.
        result = sync_from_upstream(down, SyncSettings(up.url, server_name="dss.test"))
        assert down.revision_keys() == store.revision_keys()
        assert result.revisions_requested == len(store.revision_keys()) - len(held)
    down.close()


def test_close_refuses_new_syncs_and_leaves_no_thread(store: UpdateStore) -> None:
    runs: list[UpstreamSyncRequest] = []

    def run(request: UpstreamSyncRequest, hooks: SyncHooks) -> dict[str, object]:
        runs.append(request)
        return {"ok": True}

    runner = SyncRunner(run)
    app = create_app(StoreBackend(store), extra_routes=admin_routes(store, runner))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
        assert http.post("/api/sync", json={}).status_code == 202
        runner.wait(30)
        runner.close(timeout=5.0)
        assert not runner.is_alive() and not _runner_threads()
        assert http.post("/api/sync", json={}).status_code == 409
        assert http.get("/api/sync").json()["last_result"] == {"ok": True}
    assert len(runs) == 1
    SyncRunner(run).close()  # a runner that never ran closes at once
