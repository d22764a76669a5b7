"""`GET /metrics` of an update server: a SUP that syncs from a stand-in Microsoft Update
(a failed sync, then one that works) and serves a downstream server's sync, read back with
prometheus_client's own parser; on SQLite and PostgreSQL."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from databases import Databases
from scrape import Scrape
from upstream import stand_in_upstream, sync_runner

from updatesync import __version__
from updatesync.metadata.generator import generate_catalog
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.admin_api import SyncRunner, admin_routes
from updatesync.updateserver.metrics import UpdateServerMetrics
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.updateserver.sync import SyncSettings, sync_from_upstream
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.service import create_app
from updatesync.wsusss.soap import SERVER_SYNC_PATH

SUP = "cs1site.contoso.com"
NOWHERE = "http://127.0.0.1:9"
"""Where nothing listens: a sync from there fails."""


@dataclass
class Sup:
    store: UpdateStore
    url: str
    runner: SyncRunner
    upstream: dict[str, str]
    """Where its runner syncs from (`url`), changed by a test."""
    mu_url: str

    def scrape(self) -> Scrape:
        answer = httpx.get(f"{self.url}/metrics", timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        return Scrape(answer.text)

    def sync(self) -> None:
        assert self.runner.start()
        self.runner.wait()


@pytest.fixture
def sup(tmp_path: Path, databases: Databases) -> Iterator[Sup]:
    records = list(generate_catalog(20, seed=63))
    with (
        stand_in_upstream(tmp_path, records) as (_, mu),
        UpdateStore.open(tmp_path / SUP, url=databases.new("sup").url) as store,
    ):
        metrics = UpdateServerMetrics(store, SUP)
        source = {"url": mu.url}
        runner = sync_runner(store, lambda: source["url"], on_finished=metrics.count_sync)
        app = create_app(
            StoreBackend(store),
            extra_routes=[*admin_routes(store, runner), metrics.route()],
            on_answer=metrics.count_request,
        )
        try:
            with BackgroundServer(app) as server:
                yield Sup(store, server.url, runner, source, mu.url)
        finally:
            runner.close()


def test_an_update_server_that_never_synced(sup: Sup) -> None:
    f = sup.scrape()
    assert f.value("updatesync_build_info", version=__version__, python=platform.python_version())
    assert f.value("updatesync_update_server_revisions", server=SUP) == 0
    assert f.value("updatesync_update_server_downstream_servers", server=SUP) == 0
    assert f.series("updatesync_update_server_last_sync_timestamp_seconds") == {}
    assert f.value("updatesync_update_server_syncs_total", server=SUP, result="failed") == 0
    assert f.series("updatesync_wsusss_requests_total") == {}
    assert f.types["updatesync_wsusss_requests"] == "counter"


def test_its_syncs_and_a_downstream_servers_requests(sup: Sup, tmp_path: Path) -> None:
    sup.upstream["url"] = NOWHERE
    sup.sync()
    failed = sup.scrape()
    sup.upstream["url"] = sup.mu_url
    sup.sync()
    synced = sup.scrape()
    assert sup.runner.state.last_error is None, sup.runner.state.last_error

    assert failed.value("updatesync_update_server_syncs_total", server=SUP, result="failed") == 1
    assert failed.value("updatesync_update_server_last_sync_success", server=SUP) == 0
    assert synced.value("updatesync_update_server_syncs_total", server=SUP, result="failed") == 1
    assert synced.value("updatesync_update_server_syncs_total", server=SUP, result="success") == 1
    assert synced.value("updatesync_update_server_last_sync_success", server=SUP) == 1
    last = sup.store.history(limit=1)[0]
    assert synced.value(
        "updatesync_update_server_last_sync_timestamp_seconds", server=SUP
    ) == pytest.approx(last.finished_at.timestamp())
    revisions = sup.store.status().revisions
    assert revisions > 0
    assert synced.value("updatesync_update_server_revisions", server=SUP) == revisions
    assert synced.series("updatesync_wsusss_requests_total") == {}  # nobody asked it yet

    # A downstream server syncs from the SUP, and something that is not SOAP is sent.
    with (
        UpdateStore.open(tmp_path / "downstream") as downstream,
        UpstreamClient(sup.url, retries=0) as client,
    ):
        sync_from_upstream(downstream, SyncSettings(sup.url), client=client)
        assert downstream.status().revisions == revisions
    garbage = httpx.post(
        f"{sup.url}{SERVER_SYNC_PATH}", content=b"<not-soap/>", headers={"content-type": "text/xml"}
    )
    assert garbage.status_code == 500
    f = sup.scrape()

    requests = {
        (dict(k)["operation"], dict(k)["fault"]): v
        for k, v in f.series("updatesync_wsusss_requests_total").items()
    }
    for operation in ("GetAuthConfig", "GetAuthorizationCookie", "GetCookie", "GetConfigData"):
        assert requests[(operation, "none")] >= 1, requests
    assert requests[("GetRevisionIdList", "none")] >= 1
    assert requests[("GetUpdateData", "none")] >= 1
    assert requests[("unknown", "InvalidParameters")] == 1
    assert all(fault in ("none", "InvalidParameters") for _, fault in requests)
    assert f.value("updatesync_update_server_downstream_servers", server=SUP) == 1
