"""A top-level site CS1 whose SUP's update server syncs from a stand-in Microsoft Update.

`top_level_site(root, updates=N, seed=S)` generates a catalog of N updates, loads it into a
stand-in Microsoft Update served over loopback HTTP, serves CS1's SUP update server (admin
API included) syncing from it, opens CS1's site database with that SUP in its site control,
and yields a `TopLevelSite` with a `SyncManager` reaching the SUP at `sup_url()` (which a
test may redirect, e.g. to a port where nothing listens).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.metadata.export import write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.roles.serving import BackgroundServer
from updatesync.site.database.models import SoftwareUpdatePoint
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.sup_client import UpdateServerApi
from updatesync.site.sync.sync_manager import SiteSyncSettings, SyncManager
from updatesync.updateserver.admin_api import SyncRunner, admin_routes
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.updateserver.sync import SyncSettings, sync_from_upstream
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.service import create_app

SUP = "cs1site.contoso.com"
SECURITY = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
CRITICAL = "e6cf1350-c01b-414d-a61f-263d14d133b4"


@dataclass
class TopLevelSite:
    db: SiteDatabase
    manager: SyncManager
    sup_server: BackgroundServer
    redirect: Callable[[str | None], None]
    """Send the sync manager's calls of the SUP to another URL (None: the SUP again)."""


@contextmanager
def top_level_site(root: Path, *, updates: int, seed: int) -> Iterator[TopLevelSite]:
    write_export(root / "m1.cab", list(generate_catalog(updates, seed=seed)))
    mu = UpdateStore.open(root / "microsoft-update")
    import_export_cabinet(mu, root / "m1.cab")
    sup_store = UpdateStore.open(root / SUP)
    products = tuple(c.update_id for c in mu.categories("Product"))
    try:
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
                target = {"url": sup_server.url}
                db = SiteDatabase.open(root / "CS1", site_code="CS1")
                db.sups.replace([SoftwareUpdatePoint(SUP, port=sup_server.port)])
                manager = SyncManager(
                    db,
                    SiteSyncSettings(
                        site_code="CS1",
                        site_fqdn="CS1SITE.CONTOSO.COM",
                        products=products,
                        classifications=(SECURITY, CRITICAL),
                        languages=("en",),
                    ),
                    CMTraceLog(
                        root / "CS1" / "logs" / "WSyncMgr.log", component="SMS_WSUS_SYNC_MANAGER"
                    ),
                    lambda _sup: UpdateServerApi(target["url"], timeout=30),
                )
                try:
                    yield TopLevelSite(
                        db,
                        manager,
                        sup_server,
                        lambda url: target.update(url=url or sup_server.url),
                    )
                finally:
                    db.close()
    finally:
        mu.close()
        sup_store.close()
