"""The roles of a hierarchy, each runnable alone: a site server or a software update point.

`updatesync serve HIERARCHY.toml --role site:PS1` runs one site server; `--role
sup:ps1sys.contoso.com` one SUP's update server; `--role all` every role of the file in one
process. Whatever runs where, a role owns its own database, data folder and logs, and talks
to the others only over HTTP at the addresses the hierarchy file gives, signing each call
with the hierarchy's shared secret:

- a **SUP role** (`SupRole`): the update server's store, its MS-WSUSSS services (which
  downstream update servers sync from, as WSUS does) and its admin API (which only its own
  site server calls, signed). It syncs from the upstream the hierarchy gives it: the
  upstream source at the top-level default SUP, the site's default SUP for a replica, the
  parent site's default SUP for a child's default SUP; as a replica when it is one.
- a **site role** (`SiteRole`): the site database, the SMS Provider, the database
  notification monitor, the inbox, the sync manager, the replication manager that carries
  notifications to the child sites, the database replication from the parent (child sites)
  and the site-wide client policy (primary and secondary sites). Its port serves the
  provider (`/api/...`), the site-to-site routes (`/site/v1/...`, signed) and the client
  policy (`/policy/v1/...`, open to clients).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from updatesync.config import Hierarchy, Site
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.roles.serving import BackgroundServer, bind
from updatesync.security.signing import HmacAuth, require_signature
from updatesync.site.api.client_policy import policy_routes, publish_policy
from updatesync.site.api.provider import create_provider_app
from updatesync.site.database.models import SoftwareUpdatePoint
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.replication.db_replication import DatabaseReplicator, replication_routes
from updatesync.site.replication.file_replication import ReplicationManager, file_receiver_routes
from updatesync.site.sync.db_monitor import DatabaseMonitor
from updatesync.site.sync.inbox import Inbox
from updatesync.site.sync.sup_client import UpdateServerApi
from updatesync.site.sync.sync_manager import SiteSyncResult, SiteSyncSettings, SyncManager
from updatesync.site.sync.worker import SyncWorker
from updatesync.site.watch.alert_watcher import AlertWatcher
from updatesync.site.watch.metrics import metrics_route
from updatesync.site.watch.webhooks import Webhook
from updatesync.updateserver.admin_api import admin_routes, service_error_logger, upstream_runner
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.vocabulary import (
    ALERT_WATCHER,
    ALERT_WATCHER_LOG,
    DATABASE_MONITOR_LOG,
    DATABASE_NOTIFICATION_MONITOR,
    PHASE_SITEDB,
    PHASE_WSUS,
    PROVIDER,
    PROVIDER_LOG,
    REPLICATION_CONFIGURATION_LOG,
    REPLICATION_CONFIGURATION_MONITOR,
    REPLICATION_MANAGER,
    REPLICATION_MANAGER_LOG,
    SYNC_MANAGER,
    SYNC_MANAGER_LOG,
)
from updatesync.wsusss.service import create_app

SITE_ROUTES = "/site/"
"""Site-to-site routes: file replication and database replication, signed."""
ADMIN_ROUTES = "/api/"
"""An update server's admin API, called by its site server, signed."""
HELLO_PATH = "/site/v1/hello"
"""A neighbour site announcing it is up."""


class RoleError(Exception):
    """A role cannot start; the message says which role and what to do."""


@dataclass(frozen=True)
class RoleContext:
    """What every role of one hierarchy shares: the file, the secret, the log settings."""

    hierarchy: Hierarchy
    secret: bytes
    upstream_url: str | None = None
    """Replaces the file's upstream for the top-level default SUP (a disconnected top, or a
    stand-in Microsoft Update)."""
    listen_host: str = "127.0.0.1"

    def log(self, folder: Path, name: str, component: str) -> CMTraceLog:
        bias = self.hierarchy.logs.tz_bias
        return CMTraceLog(
            folder / name,
            component=component,
            bias_minutes=None if bias == "local" else bias,
            max_bytes=self.hierarchy.logs.max_bytes,
        )

    def auth(self, caller: str) -> HmacAuth:
        return HmacAuth(self.secret, caller)


class _Role:
    """Start/stop bookkeeping shared by the roles."""

    name: str

    def __init__(self) -> None:
        self._servers: list[BackgroundServer] = []
        self._closers: list[Callable[[], object]] = []
        self.url = ""

    def _serve(self, app: Any, port: int, sock: socket.socket | None, host: str) -> str:
        server = BackgroundServer(app, host=host, port=port, sock=sock)
        try:
            server.start()
        except OSError as exc:
            raise RoleError(f"{self.name}: {exc}") from exc
        self._servers.append(server)
        return server.url

    def stop(self) -> None:
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
        for close in reversed(self._closers):
            close()
        self._closers.clear()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class SupRole(_Role):
    """One software update point: its update server on the SUP's port."""

    def __init__(
        self, context: RoleContext, fqdn: str, *, sock: socket.socket | None = None
    ) -> None:
        super().__init__()
        self.context = context
        self.site, self.sup = context.hierarchy.find_sup(fqdn)
        self.name = f"sup:{self.sup.fqdn}"
        self.sock = sock
        self.data = context.hierarchy.update_server_dir(self.sup.fqdn)
        self.replica = context.hierarchy.is_replica(self.site, self.sup)

    def upstream(self) -> str | None:
        h = self.context.hierarchy
        if self.site.parent is None and self.sup == self.site.default_sup:
            return self.context.upstream_url or h.upstream.url
        return h.sup_upstream(self.site, self.sup)

    def start(self) -> SupRole:
        store = UpdateStore.open(self.data)
        self._closers.append(store.close)
        runner = upstream_runner(
            store, self.upstream(), server_name=self.sup.fqdn, replica=self.replica
        )
        app = create_app(
            StoreBackend(store),
            extra_routes=admin_routes(store, runner),
            on_error=service_error_logger(store),
        )
        guarded = require_signature(app, self.context.secret, protect=[ADMIN_ROUTES])
        self.url = self._serve(guarded, self.sup.port, self.sock, self.context.listen_host)
        return self

    def __enter__(self) -> SupRole:
        return self.start()


class SiteRole(_Role):
    """One site server, with every component of it, on the site's port."""

    def __init__(
        self,
        context: RoleContext,
        code: str,
        *,
        sock: socket.socket | None = None,
        on_sync_done: Callable[[SiteRole, SiteSyncResult], None] | None = None,
        monitor_interval: float = 2.0,
        replication_interval: float = 30.0,
    ) -> None:
        super().__init__()
        h = context.hierarchy
        self.context = context
        self.site: Site = h.site(code)
        self.code = self.site.code
        self.name = f"site:{self.code}"
        self.sock = sock
        self.on_sync_done = on_sync_done
        self.monitor_interval = monitor_interval
        self.replication_interval = replication_interval
        self.site_dir = h.data_dir / self.code
        self.log_dir = self.site_dir / "logs"
        self.parent: Site | None = h.parent(self.code)
        self.children = tuple(child.code for child in h.children(self.code))
        self.results: list[SiteSyncResult] = []
        self._done = threading.Condition()

    # -- parts ---------------------------------------------------------------------------

    def _sup_url(self, sup: SoftwareUpdatePoint) -> str:
        _, configured = self.context.hierarchy.find_sup(sup.fqdn)
        return configured.url

    def _settings(self, inbox: Inbox) -> SiteSyncSettings:
        h = self.context.hierarchy
        default = self.site.default_sup
        if self.parent is None:
            source = (
                "Microsoft Update"
                if h.upstream.kind == "microsoft-update"
                else (h.upstream.url or "WSUS export")
            )
        else:
            upstream_sup = self.parent.default_sup
            source = upstream_sup.fqdn if upstream_sup else self.parent.code
        return SiteSyncSettings(
            site_code=self.code,
            site_fqdn=self.site.fqdn,
            products=h.criteria.products,
            classifications=h.criteria.classifications,
            languages=h.criteria.languages,
            retry_minutes=max(int(h.retry_interval.total_seconds() // 60), 1),
            source_name=source,
            parent_site=self.parent.code if self.parent else None,
            default_is_replica=default is not None and h.is_replica(self.site, default),
            children=self.children,
            outbox=inbox.path / "outbox",
            replication_timeout_seconds=h.replication_timeout.total_seconds(),
        )

    def start(self) -> SiteRole:
        h = self.context.hierarchy
        auth = self.context.auth(self.code)
        db = SiteDatabase.open(self.site_dir, site_code=self.code)
        self._closers.append(db.close)
        self.db = db
        db.sups.replace(
            [
                SoftwareUpdatePoint(s.fqdn, s.port, s.https, s.internet_facing)
                for s in self.site.sups
            ]
        )
        inbox = Inbox(self.site_dir / "inboxes" / "WSyncMgr.box")
        notifier = ReplicationManager(
            self.site_dir / "inboxes" / "replmgr.box",
            self.code,
            resolve=lambda code: h.site(code).url,
            auth=auth,
            log=self.context.log(self.log_dir, REPLICATION_MANAGER_LOG, REPLICATION_MANAGER),
        )
        self.notifier = notifier
        replication: _ParentLink | None = None
        if self.parent is not None:
            replicator = DatabaseReplicator(
                db,
                self.parent.code,
                self.parent.url,
                auth=auth,
                log=self.context.log(
                    self.log_dir, REPLICATION_CONFIGURATION_LOG, REPLICATION_CONFIGURATION_MONITOR
                ),
                poll_interval=self.replication_interval,
            )
            replication = _ParentLink(db, replicator, self.parent.code)
            self.replicator = replicator
        manager = SyncManager(
            db,
            self._settings(inbox),
            self.context.log(self.log_dir, SYNC_MANAGER_LOG, SYNC_MANAGER),
            lambda sup: UpdateServerApi(self._sup_url(sup), auth=auth),
            notifier=notifier if self.children else None,
            replication=replication,
        )
        wake = threading.Event()
        monitor = DatabaseMonitor(
            db,
            inbox,
            self.context.log(self.log_dir, DATABASE_MONITOR_LOG, DATABASE_NOTIFICATION_MONITOR),
            poll_interval=self.monitor_interval,
            wake=wake,
        )
        self.server = SyncWorker(
            db,
            manager,
            inbox,
            monitor,
            schedule=h.schedule if self.parent is None else None,
            retry=h.retry_interval,
            on_sync_done=self._finished,
        )
        provider = create_provider_app(
            db,
            log=self.context.log(self.log_dir, PROVIDER_LOG, PROVIDER),
            site_code=self.code,
            on_sync_requested=monitor.notify,
            sync_history=self,
        )
        self.watcher = AlertWatcher(
            db,
            self.code,
            overdue_after=h.alerts.overdue_after,
            log=self.context.log(self.log_dir, ALERT_WATCHER_LOG, ALERT_WATCHER),
            check_interval=60.0,
            webhooks=[Webhook(url) for url in h.alerts.webhooks],
            hierarchy=h.name,
            state_file=self.site_dir / "alerting.sqlite",
        )
        site_routes = [
            *replication_routes(db),
            *file_receiver_routes(
                self.site_dir / "inboxes",
                self.code,
                on_received=lambda _sender, _name: self._parent_notified(),
            ),
        ]
        app = Starlette(
            routes=[
                *site_routes,
                Route(HELLO_PATH, self._hello, methods=["POST"]),
                *policy_routes(db, self.site),
                metrics_route(db, self.code, phase_counts=self._phase_counts),
                Mount("", app=provider),
            ]
        )
        guarded = require_signature(app, self.context.secret, protect=[SITE_ROUTES])
        notifier.start()
        self._closers.append(notifier.stop)
        if self.parent is not None:
            self.replicator.start()
            self._closers.append(self.replicator.stop)
        self.server.start()
        self._closers.append(self.server.stop)
        self.watcher.start()
        self._closers.append(self.watcher.stop)
        self.url = self._serve(guarded, self.site.port, self.sock, self.context.listen_host)
        threading.Thread(target=self._greet, name=f"{self.name} hello", daemon=True).start()
        return self

    # -- neighbours ----------------------------------------------------------------------

    def _greet(self) -> None:
        """Tell the parent and the children this site is up: the parent delivers the
        notifications it holds for it at once, a child resumes its database replication,
        instead of waiting for their next retry."""
        h = self.context.hierarchy
        neighbours = [self.parent.code] if self.parent else []
        neighbours += list(self.children)
        for code in neighbours:
            try:
                with httpx.Client(auth=self.context.auth(self.code), timeout=10) as client:
                    client.post(h.site(code).url + HELLO_PATH)
            except httpx.HTTPError:
                pass  # that site is down; it greets this one when it comes up

    def _hello(self, request: Request) -> JSONResponse:
        caller = str(request.scope.get("updatesync.caller", "")).upper()
        if caller in self.children:
            self.notifier.poke()
        elif self.parent is not None and caller == self.parent.code:
            self.replicator.poke()
        return JSONResponse({"site": self.code})

    def _phase_counts(self) -> dict[str, int]:
        """Items per phase of the last sync this site server ran (for /metrics)."""
        with self._done:
            last = self.results[-1] if self.results else None
        if last is None or not last.succeeded:
            return {}
        counts = {PHASE_WSUS.metric_name: last.items_updated}
        if self.parent is None:
            counts[PHASE_SITEDB.metric_name] = last.cis_changed
        return counts

    def _parent_notified(self) -> None:
        if self.parent is not None:
            self.replicator.poke()
        self.server.poke()

    def _finished(self, result: SiteSyncResult) -> None:
        if result.succeeded and self.site.type != "cas":
            publish_policy(self.db)
        self.watcher.poke()  # a failure or a recovery goes to the webhooks at once
        with self._done:
            self.results.append(result)
            self._done.notify_all()
        if self.on_sync_done is not None:
            self.on_sync_done(self, result)

    def wait_after(self, count: int, timeout: float) -> tuple[int, dict[str, Any] | None]:
        """The SMS Provider's long poll: (syncs finished, the last as a dict)."""
        with self._done:
            self._done.wait_for(lambda: len(self.results) > count, timeout)
            last = self.results[-1] if self.results else None
            return len(self.results), (asdict(last) if last is not None else None)

    def wait_for_sync(self, count: int, timeout: float | None = None) -> bool:
        """Wait until this site has finished `count` syncs since it started."""
        with self._done:
            return self._done.wait_for(lambda: len(self.results) >= count, timeout)

    def __enter__(self) -> SiteRole:
        return self.start()


class ConsoleRole(_Role):
    """The web console of the whole hierarchy: it reads every site's SMS Provider over HTTP
    and keeps no database of its own."""

    name = "console"

    def __init__(
        self, context: RoleContext, *, port: int = 0, sock: socket.socket | None = None
    ) -> None:
        super().__init__()
        self.context = context
        self.port = port
        self.sock = sock

    def start(self) -> ConsoleRole:
        from updatesync.console import create_console_app

        app = create_console_app(self.context.hierarchy)
        self.url = self._serve(app, self.port, self.sock, self.context.listen_host)
        return self

    def __enter__(self) -> ConsoleRole:
        return self.start()


class _ParentLink:
    """A child site's database replication, as the sync manager asks for it."""

    def __init__(self, db: SiteDatabase, replicator: DatabaseReplicator, parent: str) -> None:
        self.db = db
        self.replicator = replicator
        self.parent = parent

    def catch_up(self, timeout: float) -> int:
        return self.replicator.catch_up(timeout).content_version

    def link_state(self) -> tuple[int, datetime | None]:
        link = self.db.replication.link(self.parent)
        if link is None:
            return 2, None
        return link.status, link.last_check_time


# -- naming and running roles --------------------------------------------------------------


def parse_role(hierarchy: Hierarchy, role: str) -> list[str]:
    """`site:PS1`, `sup:ps1sys.contoso.com` or `all` → the role names it covers."""
    text = role.strip()
    if text.lower() == "all":
        names = [f"sup:{sup.fqdn}" for site in hierarchy.walk() for sup in site.sups]
        return names + [f"site:{site.code}" for site in hierarchy.walk()]
    kind, _, value = text.partition(":")
    try:
        if kind.lower() == "site":
            return [f"site:{hierarchy.site(value).code}"]
        if kind.lower() == "sup":
            return [f"sup:{hierarchy.find_sup(value)[1].fqdn}"]
    except KeyError as exc:
        raise RoleError(f"role {role!r}: {exc.args[0]}") from None
    raise RoleError(
        f"role {role!r} is not one of: all, site:<CODE> (e.g. site:PS1), sup:<FQDN> "
        "(e.g. sup:ps1sys.contoso.com)"
    )


def on_loopback(
    hierarchy: Hierarchy, host: str = "127.0.0.1"
) -> tuple[Hierarchy, dict[str, socket.socket]]:
    """The hierarchy with every site and SUP at `host` on a free port, and those ports'
    sockets, bound and listening, by role name: for running every role on one machine."""
    socks: dict[str, socket.socket] = {}

    def reserve(name: str) -> int:
        socks[name] = bind(host, 0)
        return int(socks[name].getsockname()[1])

    sites = []
    for site in hierarchy.sites:
        sups = tuple(
            replace(sup, address=host, port=reserve(f"sup:{sup.fqdn}"), https=False)
            for sup in site.sups
        )
        sites.append(replace(site, sups=sups, address=host, port=reserve(f"site:{site.code}")))
    return replace(hierarchy, sites=tuple(sites)), socks


def start_roles(
    context: RoleContext,
    names: list[str],
    *,
    socks: dict[str, socket.socket] | None = None,
    on_sync_done: Callable[[SiteRole, SiteSyncResult], None] | None = None,
) -> list[_Role]:
    """Start the named roles, SUPs first (a site's sync needs its SUPs); stop those started
    if one fails."""
    started: list[_Role] = []
    given = socks or {}
    try:
        for name in names:
            kind, _, value = name.partition(":")
            role: _Role
            if kind == "sup":
                role = SupRole(context, value, sock=given.get(name)).start()
            else:
                role = SiteRole(
                    context, value, sock=given.get(name), on_sync_done=on_sync_done
                ).start()
            started.append(role)
    except BaseException:
        for role in reversed(started):
            role.stop()
        raise
    return started
