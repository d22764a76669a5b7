"""A top-level site with every role in one process: the embedded default.

The site server (site database, SMS Provider, database notification monitor, inbox, sync
manager) and its default software update point's update server each run on their own
loopback port and talk to each other over HTTP only, as they would across hosts. Folders:
`<data>/<SITE>/` (site database, `inboxes/WSyncMgr.box`, `logs/`) and `<data>/<SUP FQDN>/`
(the update server's store and its `logs/`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from updatesync.config import Hierarchy, Schedule
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.logs.rollover import DEFAULT_MAX_BYTES
from updatesync.roles.serving import BackgroundServer
from updatesync.site.api.provider import create_provider_app
from updatesync.site.database.models import SoftwareUpdatePoint
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.db_monitor import DatabaseMonitor
from updatesync.site.sync.inbox import Inbox
from updatesync.site.sync.sup_client import UpdateServerApi
from updatesync.site.sync.sync_manager import SiteSyncResult, SiteSyncSettings, SyncManager
from updatesync.site.sync.worker import SyncWorker
from updatesync.updateserver.admin_api import admin_routes, upstream_runner
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.service import create_app


@dataclass
class EmbeddedSiteConfig:
    data: Path
    site_code: str
    site_fqdn: str
    sup_fqdn: str
    upstream_url: str
    products: tuple[str, ...] = ()
    classifications: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    provider_port: int = 0
    log_bias_minutes: int | None = None
    log_max_bytes: int = DEFAULT_MAX_BYTES
    schedule: Schedule | None = None
    retry: timedelta = timedelta(minutes=60)
    on_sync_done: Callable[[SiteSyncResult], None] | None = field(default=None, repr=False)


class EmbeddedTopLevelSite:
    """Start with `with EmbeddedTopLevelSite(config) as site:`; `site.provider_url`."""

    def __init__(self, config: EmbeddedSiteConfig) -> None:
        self.config = config
        self.site_dir = config.data / config.site_code
        self.sup_dir = config.data / config.sup_fqdn
        self.log_dir = self.site_dir / "logs"
        self._servers: list[BackgroundServer] = []
        self._closers: list[Callable[[], object]] = []
        self.done = threading.Event()
        self.results: list[SiteSyncResult] = []

    # -- the roles -----------------------------------------------------------------------

    def start(self) -> EmbeddedTopLevelSite:
        cfg = self.config
        sup_store = UpdateStore.open(self.sup_dir)
        self._closers.append(sup_store.close)

        sup_app = create_app(
            StoreBackend(sup_store),
            extra_routes=admin_routes(
                sup_store,
                upstream_runner(sup_store, cfg.upstream_url, server_name=cfg.sup_fqdn),
            ),
        )
        sup_server = self._serve(BackgroundServer(sup_app))
        self.sup_url = sup_server.url

        db = SiteDatabase.open(self.site_dir, site_code=cfg.site_code)
        self._closers.append(db.close)
        db.sups.replace([SoftwareUpdatePoint(cfg.sup_fqdn, port=sup_server.port)])
        self.db = db
        manager = SyncManager(
            db,
            SiteSyncSettings(
                site_code=cfg.site_code,
                site_fqdn=cfg.site_fqdn,
                products=cfg.products,
                classifications=cfg.classifications,
                languages=cfg.languages,
                retry_minutes=max(int(cfg.retry.total_seconds() // 60), 1),
            ),
            self._log("WSyncMgr.log", "SMS_WSUS_SYNC_MANAGER"),
            # The SCF names the SUP by FQDN; here every role listens on loopback.
            lambda sup: UpdateServerApi(f"http://127.0.0.1:{sup.port}"),
        )
        inbox = Inbox(self.site_dir / "inboxes" / "WSyncMgr.box")
        wake = threading.Event()
        monitor = DatabaseMonitor(
            db,
            inbox,
            self._log("SMSDBMON.log", "SMS_DATABASE_NOTIFICATION_MONITOR"),
            poll_interval=2.0,
            wake=wake,
        )
        self.server = SyncWorker(
            db,
            manager,
            inbox,
            monitor,
            schedule=cfg.schedule,
            retry=cfg.retry,
            on_sync_done=self._finished,
        )
        provider = create_provider_app(
            db,
            log=self._log("SMSProv.log", "SMS Provider"),
            site_code=cfg.site_code,
            on_sync_requested=monitor.notify,
        )
        self.server.start()
        provider_server = self._serve(BackgroundServer(provider, port=cfg.provider_port))
        self.provider_url = provider_server.url
        return self

    def _finished(self, result: SiteSyncResult) -> None:
        self.results.append(result)
        if self.config.on_sync_done is not None:
            self.config.on_sync_done(result)
        self.done.set()

    def _log(self, name: str, component: str) -> CMTraceLog:
        return CMTraceLog(
            self.log_dir / name,
            component=component,
            bias_minutes=self.config.log_bias_minutes,
            max_bytes=self.config.log_max_bytes,
        )

    def _serve(self, server: BackgroundServer) -> BackgroundServer:
        server.start()
        self._servers.append(server)
        return server

    def stop(self) -> None:
        server_loop = getattr(self, "server", None)
        if server_loop is not None:
            server_loop.stop()
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
        for close in reversed(self._closers):
            close()
        self._closers.clear()

    def __enter__(self) -> EmbeddedTopLevelSite:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def log_path(self) -> Path:
        return Path(self.log_dir)


def config_from_hierarchy(
    hierarchy: Hierarchy, *, provider_port: int = 0, upstream_url: str | None = None
) -> EmbeddedSiteConfig:
    """The embedded run of a hierarchy file's top-level site: its code, FQDN, default SUP,
    upstream, criteria, schedule, retry interval and log settings. `upstream_url` replaces
    the file's upstream (a disconnected top, `kind = "none"`, needs one to sync from)."""
    top = hierarchy.top
    sup = top.default_sup
    if sup is None:
        raise ValueError(
            f"{hierarchy.source}: site {top.code} has no software update point; add one under "
            f"[[sites.sups]] of site {top.code}"
        )
    url = upstream_url or hierarchy.upstream.url
    if url is None:
        raise ValueError(
            f"{hierarchy.source}: the upstream is 'none' (disconnected); give --upstream URL of "
            "an update server to sync from, or import an export into the SUP"
        )
    bias = hierarchy.logs.tz_bias
    return EmbeddedSiteConfig(
        data=hierarchy.data_dir,
        site_code=top.code,
        site_fqdn=top.fqdn,
        sup_fqdn=sup.fqdn,
        upstream_url=url,
        products=hierarchy.criteria.products,
        classifications=hierarchy.criteria.classifications,
        languages=hierarchy.criteria.languages,
        provider_port=provider_port,
        log_bias_minutes=None if bias == "local" else bias,
        log_max_bytes=hierarchy.logs.max_bytes,
        schedule=hierarchy.schedule,
        retry=hierarchy.retry_interval,
    )
