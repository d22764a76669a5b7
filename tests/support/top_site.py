"""A top-level site CS1 whose SUP's update server syncs from a stand-in Microsoft Update.

`top_level_site(root, updates=N, seed=S)` generates a catalog of N updates, loads it into a
stand-in Microsoft Update served over loopback HTTP, serves CS1's SUP update server (admin
API included) syncing from it, opens CS1's site database with that SUP in its site control,
and yields a `TopLevelSite` with a `SyncManager` reaching the SUP at the port the site
control gives (which a test may change, or override with `redirect`, e.g. to a port where
nothing listens). The site subscribes to every product and to security and critical updates
in English; with `subscribe=False` to nothing (its SUP then mirrors its upstream).
`on_sup_request` sees each sync request the SUP receives, before its sync runs. With
`license_files=False` the stand-in Microsoft Update does not serve the license terms'
files yet (`add_generated_license_files(site.upstream)` gives it them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from upstream import stand_in_upstream, sync_runner, update_server_app

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.metadata.export import ExportRecord
from updatesync.metadata.generator import generate_catalog
from updatesync.roles.serving import BackgroundServer
from updatesync.site.database.models import SoftwareUpdatePoint
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.sup_client import UpdateServerApi
from updatesync.site.sync.sync_manager import ConfigurationGate, SiteSyncSettings, SyncManager
from updatesync.site.sync.wcm import WcmInbox, WcmSettings, WsusConfigurationManager
from updatesync.updateserver.admin_api import UpstreamSyncRequest
from updatesync.updateserver.store import UpdateStore

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
    move_upstream: Callable[[str | None], None]
    """Make the SUP sync from another URL (None: the stand-in Microsoft Update again)."""
    records: list[ExportRecord]
    products: tuple[str, ...]
    upstream: UpdateStore
    sup_store: UpdateStore
    log_path: Path
    upstream_url: str


def configuration_manager(
    site: TopLevelSite, root: Path, **settings: float
) -> WsusConfigurationManager:
    """CS1's WSUS configuration manager for `site` (its WCM.log and WSUSMgr.box under
    `root`/CS1), expecting its SUP to sync from Microsoft Update."""
    return WsusConfigurationManager(
        site.db,
        WcmSettings("CS1", upstream_of=lambda _sup: "Microsoft Update", **settings),
        CMTraceLog(root / "CS1" / "logs" / "WCM.log", component="SMS_WSUS_CONFIGURATION_MANAGER"),
        lambda sup: UpdateServerApi(f"http://127.0.0.1:{sup.port}", timeout=30),
        WcmInbox(root / "CS1" / "inboxes" / "WSUSMgr.box"),
    )


def configured_sync_manager(site: TopLevelSite, configuration: ConfigurationGate) -> SyncManager:
    """A sync manager of `site` whose SUP a WSUS configuration manager configures: it sends
    no criteria of its own (the configuration manager set the subscription)."""
    return SyncManager(
        site.db,
        SiteSyncSettings(site_code="CS1", site_fqdn="CS1SITE.CONTOSO.COM"),
        site.manager.log,
        site.manager.api_for,
        configuration=configuration,
    )


@contextmanager
def top_level_site(
    root: Path,
    *,
    updates: int,
    seed: int,
    subscribe: bool = True,
    log_bias_minutes: int | None = None,
    on_sup_request: Callable[[UpstreamSyncRequest], None] | None = None,
    license_files: bool = True,
) -> Iterator[TopLevelSite]:
    records = list(generate_catalog(updates, seed=seed))
    with stand_in_upstream(root, records, license_files=license_files) as (mu, up):
        products = tuple(c.update_id for c in mu.categories("Product"))
        source = {"url": up.url}
        sup_store = UpdateStore.open(root / SUP)
        try:
            runner = sync_runner(sup_store, lambda: source["url"], on_request=on_sup_request)
            with BackgroundServer(update_server_app(sup_store, runner)) as sup_server:
                target: dict[str, str | None] = {"url": None}
                db = SiteDatabase.open(root / "CS1", site_code="CS1")
                db.sups.replace([SoftwareUpdatePoint(SUP, port=sup_server.port)])
                settings = SiteSyncSettings(site_code="CS1", site_fqdn="CS1SITE.CONTOSO.COM")
                if subscribe:
                    settings = SiteSyncSettings(
                        site_code="CS1",
                        site_fqdn="CS1SITE.CONTOSO.COM",
                        products=products,
                        classifications=(SECURITY, CRITICAL),
                        languages=("en",),
                    )
                log_path = root / "CS1" / "logs" / "WSyncMgr.log"
                manager = SyncManager(
                    db,
                    settings,
                    CMTraceLog(
                        log_path, component="SMS_WSUS_SYNC_MANAGER", bias_minutes=log_bias_minutes
                    ),
                    lambda sup: UpdateServerApi(
                        target["url"] or f"http://127.0.0.1:{sup.port}", timeout=30
                    ),
                )
                try:
                    yield TopLevelSite(
                        db=db,
                        manager=manager,
                        sup_server=sup_server,
                        redirect=lambda url: target.update(url=url),
                        move_upstream=lambda url: source.update(url=url or up.url),
                        records=records,
                        products=products,
                        upstream=mu,
                        sup_store=sup_store,
                        log_path=log_path,
                        upstream_url=up.url,
                    )
                finally:
                    db.close()
        finally:
            sup_store.close()
