"""A top-level site's sync, end to end on loopback: the sync manager drives its SUP's update
server, which syncs from a stand-in Microsoft Update; then the site database phase."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from updatesync.logs.cmtrace import CMTraceLog, parse_rendered, read_cmtrace
from updatesync.logs.status_messages import parse_statmsg
from updatesync.metadata.document import parse_update
from updatesync.metadata.export import ExportRecord, write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import UpdateRevision, category_type_map
from updatesync.roles.serving import BackgroundServer
from updatesync.site.database.models import SoftwareUpdatePoint
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.sup_client import UpdateServerApi
from updatesync.site.sync.sync_manager import SiteSyncSettings, SyncManager
from updatesync.site.watch.alerts import AlertState, AlertType
from updatesync.updateserver.admin_api import SyncRunner, admin_routes
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.updateserver.sync import SyncSettings, sync_from_upstream
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.service import create_app

SECURITY = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
CRITICAL = "e6cf1350-c01b-414d-a61f-263d14d133b4"
SUP = "cs1site.contoso.com"


@dataclass
class Site:
    manager: SyncManager
    db: SiteDatabase
    log_path: Path
    records: list[ExportRecord]
    products: tuple[str, ...]
    upstream: UpdateStore
    sup_store: UpdateStore


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    records = list(generate_catalog(600, seed=51))
    write_export(tmp_path / "m1.cab", records)
    mu = UpdateStore.open(tmp_path / "microsoft-update")
    import_export_cabinet(mu, tmp_path / "m1.cab")
    sup_store = UpdateStore.open(tmp_path / SUP)
    products = tuple(c.update_id for c in mu.categories("Product"))
    with BackgroundServer(create_app(StoreBackend(mu))) as up:

        def run(request, hooks):  # type: ignore[no-untyped-def]
            settings = SyncSettings(
                up.url,
                full=request.full,
                products=request.products,
                classifications=request.classifications,
                languages=request.languages,
            )
            with UpstreamClient(up.url, retries=0) as client:
                return sync_from_upstream(sup_store, settings, hooks=hooks, client=client)

        app = create_app(
            StoreBackend(sup_store), extra_routes=admin_routes(sup_store, SyncRunner(run))
        )
        with BackgroundServer(app) as sup_server:
            db = SiteDatabase.open(tmp_path / "CS1", site_code="CS1")
            db.sups.replace([SoftwareUpdatePoint(SUP, port=sup_server.port)])
            log_path = tmp_path / "CS1" / "logs" / "WSyncMgr.log"
            settings = SiteSyncSettings(
                site_code="CS1",
                site_fqdn="CS1SITE.CONTOSO.COM",
                products=products,
                classifications=(SECURITY, CRITICAL),
                languages=("en",),
            )
            manager = SyncManager(
                db,
                settings,
                CMTraceLog(log_path, component="SMS_WSUS_SYNC_MANAGER", bias_minutes=480),
                lambda sup: UpdateServerApi(f"http://127.0.0.1:{sup.port}"),
            )
            yield Site(manager, db, log_path, records, products, mu, sup_store)
            db.close()
    mu.close()
    sup_store.close()


def _expected_cis(docs: list[UpdateRevision], classes: set[str]) -> dict[str, int]:
    kinds = category_type_map(docs)
    latest: dict[str, UpdateRevision] = {}
    for doc in docs:
        newer = doc.update_id not in latest or doc.revision > latest[doc.update_id].revision
        if doc.update_type in ("Software", "Driver") and newer:
            latest[doc.update_id] = doc
    out = {}
    for uid, doc in latest.items():
        prods, cls = doc.products_and_classifications(kinds)
        if prods and set(cls) & classes:
            out[uid] = doc.revision
    return out


def test_a_top_level_sync_from_sync_now_to_6702(site: Site, fixtures_dir: Path) -> None:
    first = site.manager.run("SELF")
    assert first.succeeded, first.error
    docs = [parse_update(r.xml) for r in site.records]
    expected = _expected_cis(docs, {SECURITY, CRITICAL})
    cis = {ci.update_id: ci.revision for ci in site.db.content.configuration_items()}
    assert cis == {uid: rev for uid, rev in expected.items()}
    # Two phases changed something: the content version rose twice.
    assert site.db.content.version() == 2
    messages = [m.message_id for m in reversed(site.db.messages.find(limit=50))]
    assert messages == [6701, 6704, 6705, 6702]

    sup_status = site.db.sups.sync_statuses()
    assert [(s.wsus_server_name, s.wsus_source_server, s.last_sync_state) for s in sup_status] == [
        (SUP, "Microsoft Update", 6702)
    ]
    assert sup_status[0].last_successful_sync_time is not None
    assert sup_status[0].sync_catalog_version == 2

    second = site.manager.run("SELF")
    assert second.succeeded
    assert site.db.content.version() == 2
    assert second.cis_changed == 0

    # The log reads like the article's, line for line (numbers, names and times aside).
    entries = list(read_cmtrace(site.log_path))
    ours = [e.message for e in entries]
    for entry in entries:
        if entry.message.startswith("STATMSG:"):
            stored = parse_statmsg(entry.message)
            assert stored.site_code == "CS1"
    article = fixtures_dir / "logs" / "msdocs-2014-hierarchy" / "CS1-WSyncMgr.rendered.txt"
    skip = ("Sleeping 2 more minutes", "Sending sync notification", "SQL Replication type")
    wanted = [m for m, _c in parse_rendered(article.read_text()) if not m.startswith(skip)]
    position = 0
    for line in wanted:
        pattern = _shape(line)
        while position < len(ours) and not pattern.fullmatch(ours[position]):
            position += 1
        assert position < len(ours), f"missing, in order: {line}"
        position += 1


def _shape(line: str) -> re.Pattern[str]:
    if line.startswith("STATMSG:"):
        ident = re.search(r"ID=(\d+)", line)
        assert ident is not None
        return re.compile(rf"STATMSG: ID={ident.group(1)} .*")
    if line.startswith("Synchronizing update "):
        return re.compile(r"Synchronizing update [0-9a-f-]{36} - .+")
    text = re.escape(line)
    text = re.sub(r"(?i)cs1site\\\.contoso\\\.com", r"\\S+", text)
    text = re.sub(r"\d+", r"\\d+", text)
    return re.compile(text)


def test_a_failed_sync_raises_the_alert_and_keeps_the_site_database(site: Site) -> None:
    assert site.manager.run("SELF").succeeded
    before = (site.db.content.ci_count(), site.db.content.version())
    site.db.sups.replace([SoftwareUpdatePoint(SUP, port=9)])  # nothing listens there
    failed = site.manager.run("SELF")
    assert not failed.succeeded
    assert (site.db.content.ci_count(), site.db.content.version()) == before
    last = site.db.messages.find(limit=1)[0]
    assert last.message_id == 6703
    assert last.strings[1]
    alerts = site.db.alerts.find(alert_type=AlertType.SYNC_FAILURE)
    assert [a.state for a in alerts] == [AlertState.RAISED]
    log = [e.message for e in read_cmtrace(site.log_path)]
    assert log[-1] == "Sync failed. Will retry in 60 minutes"
    assert any(line.startswith("Sync failed: ") and ". Source: " in line for line in log)


@pytest.fixture
def switchable(tmp_path: Path) -> Iterator[tuple[SyncManager, SiteDatabase, list[str], str]]:
    """A site whose SUP syncs from whatever upstream URL is first in the returned list."""
    records = list(generate_catalog(400, seed=52))
    write_export(tmp_path / "m1.cab", records)
    mu = UpdateStore.open(tmp_path / "microsoft-update")
    import_export_cabinet(mu, tmp_path / "m1.cab")
    sup_store = UpdateStore.open(tmp_path / SUP)
    upstream: list[str] = []

    async def garbage(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"<html>not a SOAP answer"})

    def run(request, hooks):  # type: ignore[no-untyped-def]
        settings = SyncSettings(upstream[0], full=request.full)
        with UpstreamClient(upstream[0], retries=0) as client:
            return sync_from_upstream(sup_store, settings, hooks=hooks, client=client)

    with (
        BackgroundServer(create_app(StoreBackend(mu))) as real,
        BackgroundServer(garbage) as bad,
        BackgroundServer(
            create_app(
                StoreBackend(sup_store), extra_routes=admin_routes(sup_store, SyncRunner(run))
            )
        ) as sup_server,
        SiteDatabase.open(tmp_path / "CS1", site_code="CS1") as db,
    ):
        db.sups.replace([SoftwareUpdatePoint(SUP, port=sup_server.port)])
        manager = SyncManager(
            db,
            SiteSyncSettings(site_code="CS1", site_fqdn="CS1SITE.CONTOSO.COM"),
            CMTraceLog(tmp_path / "WSyncMgr.log", component="SMS_WSUS_SYNC_MANAGER"),
            lambda sup: UpdateServerApi(f"http://127.0.0.1:{sup.port}"),
        )
        upstream.append(bad.url)
        yield manager, db, upstream, real.url
    mu.close()
    sup_store.close()


@pytest.mark.parametrize("trouble", ["garbage", "down"])
def test_an_upstream_in_trouble_fails_the_sync_cleanly_and_the_next_one_recovers(
    switchable: tuple[SyncManager, SiteDatabase, list[str], str], trouble: str
) -> None:
    manager, db, upstream, real = switchable
    if trouble == "down":
        upstream[0] = "http://127.0.0.1:9"
    failed = manager.run("SELF")
    assert not failed.succeeded
    assert (db.content.ci_count(), db.content.version()) == (0, 0)
    last = db.messages.find(limit=1)[0]
    assert last.message_id == 6703
    (sup_status,) = db.sups.sync_statuses()
    assert sup_status.last_sync_state == 6703
    assert sup_status.last_sync_error_code == last.last_error
    assert ("127.0.0.1:9" if trouble == "down" else "SOAP") in last.strings[1]
    assert [a.state for a in db.alerts.find(alert_type=AlertType.SYNC_FAILURE)] == [
        AlertState.RAISED
    ]
    upstream[0] = real
    assert manager.run("SELF").succeeded
    assert db.content.ci_count() > 0
    assert db.content.version() == 2
    assert [a.state for a in db.alerts.find(alert_type=AlertType.SYNC_FAILURE)] == [
        AlertState.CANCELED
    ]
