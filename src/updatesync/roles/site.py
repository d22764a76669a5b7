"""A site server's role: every component of one site, on the site's port.

The site database, the SMS Provider, the database notification monitor, the inbox, the sync
manager, the replication manager that carries notifications to the child sites, the database
replication from the parent (child sites) and the site-wide client policy (primary and
secondary sites). Its port serves the provider (`/api/...`, a token or a signature needed),
the site-to-site routes (`/site/v1/...`, signed) and the client policy (`/policy/v1/...`,
open to clients unless the file says otherwise). The first start of a top-level site
creates the Full Administrator and writes its token to `<site data folder>/admin.token`.
With TLS on it serves HTTPS only, and every call it makes to another site or to a SUP
verifies the peer against the hierarchy's CA (`RoleContext.verify`).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from updatesync.config import Site, WebhookSettings
from updatesync.config.databases import password_variable, with_password
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.roles.context import Role, RoleContext, RoleError
from updatesync.security.access import Permission
from updatesync.security.limits import limit_bodies
from updatesync.security.private_files import InsecureFileError
from updatesync.security.signing import SecretError, require_signature
from updatesync.security.webhook_signing import load_webhook_secret
from updatesync.site.api.auth import ADMIN_TOKEN_FILE, AuthMiddleware, ProviderAuth, bootstrap_admin
from updatesync.site.api.client_policy import policy_routes, publish_policy
from updatesync.site.api.hierarchy import DEFAULT_STALE_AFTER, check_picture, pictures
from updatesync.site.api.logs import SiteLogs
from updatesync.site.api.provider import create_provider_app
from updatesync.site.database.models import SoftwareUpdatePoint
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.replication.db_replication import DatabaseReplicator, replication_routes
from updatesync.site.replication.file_replication import ReplicationManager, file_receiver_routes
from updatesync.site.replication.site_data import SiteDataPuller, site_data_routes
from updatesync.site.sync.db_monitor import DatabaseMonitor
from updatesync.site.sync.inbox import Inbox
from updatesync.site.sync.outcome import SiteSyncResult
from updatesync.site.sync.sup_client import UpdateServerApi
from updatesync.site.sync.sync_manager import SiteSyncSettings, SyncManager
from updatesync.site.sync.wcm import BOX as WCM_BOX
from updatesync.site.sync.wcm import WcmInbox, WcmSettings, WsusConfigurationManager
from updatesync.site.sync.worker import SyncWorker
from updatesync.site.watch.alert_watcher import AlertWatcher
from updatesync.site.watch.metrics import METRICS_PATH, SiteMetrics
from updatesync.site.watch.webhooks import Webhook
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
    WSUS_CONFIGURATION_LOG,
    WSUS_CONFIGURATION_MANAGER,
)

SITE_ROUTES = "/site/"
"""Site-to-site routes: file replication and database replication, signed."""
HELLO_PATH = "/site/v1/hello"
"""A neighbour site announcing it is up."""
POLICY_ROUTES = "/policy/"
"""The client policy (open unless `[hierarchy.security] policy_need_token`)."""


class SiteRole(Role):
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
        self.admin_token_file = self.site_dir / ADMIN_TOKEN_FILE
        """The Full Administrator's token, written by the first start of a top-level site."""
        self.admin_token_created: Path | None = None
        """`admin_token_file` when this start wrote it."""
        self.parent: Site | None = h.parent(self.code)
        self._parent_code = self.parent.code if self.parent is not None else None
        self.children = tuple(child.code for child in h.children(self.code))
        self.replicator: DatabaseReplicator | None = None
        self.site_data: SiteDataPuller | None = None
        """At a parent site, the pull of site data from its children (replicated upward)."""
        self.results: list[SiteSyncResult] = []
        self._done = threading.Condition()
        self._stopping = threading.Event()

    # -- starting, part by part ----------------------------------------------------------

    def _start(self) -> None:
        tls = self.context.server_tls(self.name)
        self.verify = self.context.verify
        # The replication manager's log: what it sends to the other sites, and the
        # site-to-site calls this site refused.
        self.links_log = self.context.log(
            self.log_dir, REPLICATION_MANAGER_LOG, REPLICATION_MANAGER
        )
        self.db = self._open_database()
        self.metrics = SiteMetrics(self.db, self.code, phase_counts=self._phase_counts)
        inbox = Inbox(self.site_dir / "inboxes" / "WSyncMgr.box")
        self.notifier = self._replication_manager()
        if self.parent is not None:
            self.replicator = self._database_replicator(self.parent)
        if self.children:
            self.site_data = site_data_puller(
                self.context,
                self.db,
                self.links_log,
                interval=self.replication_interval,
                # What came from below goes on up at once (a CAS sees its grandchildren).
                on_changed=self._tell_parent if self.parent is not None else None,
            )
        monitor = DatabaseMonitor(
            self.db,
            inbox,
            self.context.log(self.log_dir, DATABASE_MONITOR_LOG, DATABASE_NOTIFICATION_MONITOR),
            poll_interval=self.monitor_interval,
            wake=threading.Event(),
        )
        self.wcm = self._configuration_manager()
        monitor.watch_subscription(self.wcm.inbox, self.wcm.files_dropped)
        self.server = SyncWorker(
            self.db,
            self._sync_manager(inbox),
            inbox,
            monitor,
            schedule=self.context.hierarchy.schedule if self.parent is None else None,
            retry=self.context.hierarchy.retry_interval,
            on_sync_done=self._finished,
        )
        self.watcher = self._alert_watcher()
        app = self._app(on_sync_requested=monitor.notify)
        self._start_components()
        self.url = self._serve(app, self.site.port, self.sock, self.context.listen_host, tls)
        self._run_thread(self._greet, "hello")

    def _open_database(self) -> SiteDatabase:
        """The site database, with the site's SUPs as the hierarchy file lists them."""
        url = self.site.database
        db = SiteDatabase.open(
            self.site_dir,
            site_code=self.code,
            url=with_password(url, password_variable(self.code)) if url else None,
        )
        self._on_stop(db.close)
        before = db.sups.find()
        after = db.sups.replace(
            [
                SoftwareUpdatePoint(s.fqdn, s.port, s.https, s.internet_facing)
                for s in self.site.sups
            ]
        )
        # A SUP added, removed or moved since the site last ran is a site control change:
        # the WSUS configuration manager's first cycle says so.
        self._site_control_changed = before != after
        # The hierarchy's criteria are what the SUPs sync; a change raises the version, and
        # the database monitor wakes the WSUS configuration manager. The file's criteria are
        # applied when they changed since the file last gave them: a subscription set at the
        # top-level site's SMS Provider since (and replicated below) outlives a restart.
        criteria = self.context.hierarchy.criteria
        db.wsus.apply_file_criteria(
            tuple(criteria.products), tuple(criteria.classifications), tuple(criteria.languages)
        )
        return db

    def _configuration_manager(self) -> WsusConfigurationManager:
        """The site's WSUS configuration manager (WCM.log): it sets each SUP's subscription."""
        auth = self.context.auth(self.code)
        return WsusConfigurationManager(
            self.db,
            WcmSettings(self.code, upstream_of=partial(expected_upstream, self)),
            self.context.log(self.log_dir, WSUS_CONFIGURATION_LOG, WSUS_CONFIGURATION_MANAGER),
            lambda sup: UpdateServerApi(self._sup_url(sup), auth=auth, verify=self.verify),
            WcmInbox(self.site_dir / "inboxes" / WCM_BOX),
            first="scf" if self._site_control_changed else "start",
        )

    def _replication_manager(self) -> ReplicationManager:
        """Carries this site's notifications to its child sites."""
        h = self.context.hierarchy
        return ReplicationManager(
            self.site_dir / "inboxes" / "replmgr.box",
            self.code,
            resolve=lambda code: h.site(code).url,
            auth=self.context.auth(self.code),
            log=self.links_log,
            verify=self.verify,
        )

    def _database_replicator(self, parent: Site) -> DatabaseReplicator:
        """A child site's database replication from its parent."""
        return DatabaseReplicator(
            self.db,
            parent.code,
            parent.url,
            auth=self.context.auth(self.code),
            log=self.context.log(
                self.log_dir, REPLICATION_CONFIGURATION_LOG, REPLICATION_CONFIGURATION_MONITOR
            ),
            poll_interval=self.replication_interval,
            verify=self.verify,
            # The link's alert follows its status at once, not at the watcher's next round.
            on_status_change=lambda _status: self.watcher.poke(),
        )

    def _sync_manager(self, inbox: Inbox) -> SyncManager:
        auth = self.context.auth(self.code)
        replication = (
            _ParentLink(self.db, self.replicator, self.parent.code)
            if self.parent is not None and self.replicator is not None
            else None
        )
        return SyncManager(
            self.db,
            sync_settings(self.context, self.site, self.children, inbox),
            self.context.log(self.log_dir, SYNC_MANAGER_LOG, SYNC_MANAGER),
            lambda sup: UpdateServerApi(self._sup_url(sup), auth=auth, verify=self.verify),
            notifier=self.notifier if self.children else None,
            replication=replication,
            configuration=self.wcm,
        )

    def _sup_url(self, sup: SoftwareUpdatePoint) -> str:
        _, configured = self.context.hierarchy.find_sup(sup.fqdn)
        return configured.url

    def _webhook(self, hook: WebhookSettings) -> Webhook:
        """A webhook of the file, with its secret read (a private file) unless the file
        says it is sent unsigned."""
        if hook.unsigned:
            return Webhook(hook.url)
        if hook.secret_file is None:
            raise RoleError(
                f"{self.name}: webhook {hook.url} has no secret_file; give it one (or "
                "unsigned = true) in [[hierarchy.alerts.webhooks]]"
            )
        try:
            return Webhook(hook.url, secret=load_webhook_secret(hook.secret_file))
        except SecretError as exc:
            raise RoleError(f"{self.name}: webhook {hook.url}: {exc}") from None

    def _alert_watcher(self) -> AlertWatcher:
        h = self.context.hierarchy
        return AlertWatcher(
            self.db,
            self.code,
            overdue_after=h.alerts.overdue_after,
            log=self.context.log(self.log_dir, ALERT_WATCHER_LOG, ALERT_WATCHER),
            check_interval=60.0,
            webhooks=[self._webhook(hook) for hook in h.alerts.webhooks],
            hierarchy=h.name,
            legacy_state_file=self.site_dir / "alerting.sqlite",
        )

    def _app(self, on_sync_requested: Callable[[], object]) -> Any:
        """The site's port: the site-to-site routes (signed), the greeting, the client
        policy, /metrics and the SMS Provider (which needs a token or a signature)."""
        provider_log = self.context.log(self.log_dir, PROVIDER_LOG, PROVIDER)
        if self.parent is None:
            try:
                self.admin_token_created = bootstrap_admin(
                    self.db, self.admin_token_file, provider_log
                )
            except InsecureFileError as exc:
                raise RoleError(f"{self.name}: {exc}") from None
        provider = create_provider_app(
            self.db,
            log=provider_log,
            site_code=self.code,
            on_sync_requested=on_sync_requested,
            sync_history=self,
            secret=self.context.secret or None,
            parent_site=self._parent_code,
            callers=self.context.callers,
            hosts=self.context.names(self.site.fqdn, self.site.address),
            logs=SiteLogs.of(self.context.hierarchy, self.code),
            stale_after=DEFAULT_STALE_AFTER,
        )
        site_routes = [
            *replication_routes(self.db),
            *site_data_routes(
                self.db,
                lambda now: pictures(self.db, now, DEFAULT_STALE_AFTER, self.next_retry_at()),
            ),
            *file_receiver_routes(
                self.site_dir / "inboxes",
                self.code,
                on_received=lambda _sender, _name: self._parent_notified(),
            ),
        ]
        security = self.context.hierarchy.security
        guarded = [
            path
            for path, needed in (
                (METRICS_PATH, security.metrics_need_token),
                (POLICY_ROUTES, security.policy_need_token),
            )
            if needed
        ]
        app: Any = Starlette(
            routes=[
                *site_routes,
                Route(HELLO_PATH, self._hello, methods=["POST"]),
                *policy_routes(self.db, self.site),
                self.metrics.route(),
                Mount("", app=provider),
            ]
        )
        if guarded:
            app = AuthMiddleware(
                app,
                auth=ProviderAuth(
                    self.db,
                    self.context.secret or None,
                    callers=self.context.callers,
                    hosts=self.context.names(self.site.fqdn, self.site.address),
                ),
                prefixes=guarded,
                need=Permission.READ,
            )
        # Every body at most 1 MB (a replicated file is at most 64 KB), checked outside the
        # signature check, which reads the body.
        return limit_bodies(
            require_signature(
                app,
                self.context.secret,
                protect=[SITE_ROUTES],
                callers=self.context.callers,
                hosts=self.context.names(self.site.fqdn, self.site.address),
                log=self.links_log.warning,
            )
        )

    def _start_components(self) -> None:
        """Start the background components; each stops (in reverse) when the role stops."""
        self.notifier.start()
        self._on_stop(self.notifier.stop)
        if self.replicator is not None:
            self.replicator.start()
            self._on_stop(self.replicator.stop)
        if self.site_data is not None:
            self.site_data.start()
            self._on_stop(self.site_data.stop)
        self.wcm.start()
        self._on_stop(self.wcm.stop)
        self.server.start()
        self._on_stop(self.server.stop)
        self.watcher.start()
        self._on_stop(self.watcher.stop)

    def stop(self) -> None:
        self._stopping.set()  # the greeting gives up the neighbours it has not told yet
        super().stop()

    # -- neighbours ----------------------------------------------------------------------

    def _greet(self) -> None:
        """Tell the parent and the children this site is up: the parent delivers the
        notifications it holds for it at once, a child resumes its database replication,
        instead of waiting for their next retry."""
        h = self.context.hierarchy
        neighbours = [self.parent.code] if self.parent else []
        neighbours += list(self.children)
        auth = self.context.auth(self.code)
        with httpx.Client(auth=auth, timeout=10, verify=self.verify) as client:
            for code in neighbours:
                if self._stopping.is_set():
                    return
                # A site that is down greets this one when it comes up.
                with contextlib.suppress(httpx.HTTPError):
                    client.post(h.site(code).url + HELLO_PATH)

    def _hello(self, request: Request) -> JSONResponse:
        caller = str(request.scope.get("updatesync.caller", "")).upper()
        if caller in self.children:
            self.notifier.poke()
            if self.site_data is not None:
                self.site_data.poke(caller)
        elif self.replicator is not None and caller == self._parent_code:
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

    def _tell_parent(self) -> None:
        """Greet the parent, so that it pulls this site's site data now (after a sync, or
        after new data came from below); a parent that is down pulls at its next turn."""
        if self.parent is not None and not self._stopping.is_set():
            greet_later(self.parent.url + HELLO_PATH, self.context.auth(self.code), self.verify)

    def _parent_notified(self) -> None:
        if self.replicator is not None:
            self.replicator.poke()
        self.server.poke()

    # -- syncs ---------------------------------------------------------------------------

    def _finished(self, result: SiteSyncResult) -> None:
        self.metrics.sync_ended(result.succeeded)  # counted before anyone waiting is told
        if result.succeeded and self.site.type != "cas":
            publish_policy(self.db)
        self.watcher.poke()  # a failure or a recovery goes to the webhooks at once
        self._tell_parent()  # the parent pulls this site's site data now
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

    def next_retry_at(self) -> datetime | None:
        """When the site server retries its last, failed sync (None: no retry pending)."""
        return self.server.retry_at

    def nth(self, number: int) -> dict[str, Any] | None:
        """The `number`-th sync since the site server started (1: the first), as a dict."""
        with self._done:
            if 1 <= number <= len(self.results):
                return asdict(self.results[number - 1])
            return None

    def wait_for_sync(self, count: int, timeout: float | None = None) -> bool:
        """Wait until this site has finished `count` syncs since it started."""
        with self._done:
            return self._done.wait_for(lambda: len(self.results) >= count, timeout)


def sync_settings(
    context: RoleContext, site: Site, children: tuple[str, ...], inbox: Inbox
) -> SiteSyncSettings:
    """The sync manager's settings of `site`, from the hierarchy file."""
    h = context.hierarchy
    parent = h.parent(site.code)
    default = site.default_sup
    if parent is None:
        source = (
            "Microsoft Update"
            if h.upstream.kind == "microsoft-update"
            else (h.upstream.url or "WSUS export")
        )
    else:
        upstream_sup = parent.default_sup
        source = upstream_sup.fqdn if upstream_sup else parent.code
    return SiteSyncSettings(
        site_code=site.code,
        site_fqdn=site.fqdn,
        products=h.criteria.products,
        classifications=h.criteria.classifications,
        languages=h.criteria.languages,
        retry_minutes=max(int(h.retry_interval.total_seconds() // 60), 1),
        source_name=source,
        parent_site=parent.code if parent else None,
        default_is_replica=default is not None and h.is_replica(site, default),
        children=children,
        outbox=inbox.path / "outbox",
        replication_timeout_seconds=h.replication_timeout.total_seconds(),
        updates_cleanup_age=h.criteria.updates_cleanup_age,
    )


def site_data_puller(
    context: RoleContext,
    db: SiteDatabase,
    log: CMTraceLog,
    *,
    interval: float,
    on_changed: Callable[[], None] | None,
) -> SiteDataPuller:
    """A parent site's pull of site data from its children: their status messages and the
    status of each site below it, for its provider's hierarchy-wide answers."""
    h = context.hierarchy
    code = db.site_code

    def below(site: str) -> list[str]:
        return [s for c in h.children(site) for s in (c.code, *below(c.code))]

    children = [c.code for c in h.children(code)]
    return SiteDataPuller(
        db,
        {child: h.site(child).url for child in children},
        below={child: below(child) for child in children},
        auth=context.auth(code),
        log=log,
        interval=interval,
        verify=context.verify,
        on_changed=on_changed,
        check=check_picture,
    )


def greet_later(url: str, auth: httpx.Auth, verify: ssl.SSLContext | bool) -> None:
    """POST to a neighbour's greeting `url` in a thread of its own; a neighbour that is down
    is not waited for."""

    def greet() -> None:
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.Client(auth=auth, timeout=10, verify=verify) as client,
        ):
            client.post(url)

    threading.Thread(target=greet, name=f"greeting {url}", daemon=True).start()


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


def expected_upstream(role: SiteRole, sup: SoftwareUpdatePoint) -> str | None:
    """Where `role`'s site expects `sup` to sync from ("Microsoft Update" for a top-level
    default SUP syncing from it; None when nothing is expected)."""
    h = role.context.hierarchy
    default = role.site.default_sup
    if role.parent is None and default is not None and sup.fqdn == default.fqdn:
        if h.upstream.kind == "microsoft-update":
            return "Microsoft Update"
        return role.context.upstream_url or h.upstream.url
    return h.sup_upstream(role.site, sup.fqdn)
