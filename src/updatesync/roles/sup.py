"""A software update point's role: its update server on the SUP's port.

The update server's store, its MS-WSUSSS services (which downstream update servers sync
from, as WSUS does) and its admin API (which only its own site server calls, signed). It
syncs from the upstream the hierarchy gives it: the upstream source at the top-level default
SUP, the site's default SUP for a replica, the parent site's default SUP for a child's
default SUP; as a replica when it is one.

With TLS on (`[hierarchy.tls]`) it serves HTTPS only, with its certificate, and verifies an
upstream of the hierarchy against the hierarchy's CA (an upstream outside it, such as
Microsoft Update, against the system's trust store). Where the file gives it an
`http_port`, it also serves MS-WSUSSS there over plain HTTP, for downstream servers that
need it: the protocol only, never the admin API.
"""

from __future__ import annotations

import socket

from updatesync.config.databases import password_variable, with_password
from updatesync.roles.context import Role, RoleContext
from updatesync.security.limits import limit_bodies
from updatesync.security.signing import require_signature
from updatesync.updateserver.admin_api import admin_routes, service_error_logger, upstream_runner
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.updateserver.sync.context import default_log
from updatesync.wsusss.service import create_app

ADMIN_ROUTES = "/api/"
"""An update server's admin API, called by its site server, signed."""
ADMIN_LOG_SOURCE = "AdminApi"
"""The source of SoftwareDistribution.log lines about the admin API (refused calls)."""


class SupRole(Role):
    """One software update point: its update server on the SUP's port."""

    def __init__(
        self,
        context: RoleContext,
        fqdn: str,
        *,
        sock: socket.socket | None = None,
        http_sock: socket.socket | None = None,
    ) -> None:
        """`http_sock`: the bound socket of the plain-HTTP MS-WSUSSS port, if reserved."""
        super().__init__()
        self.context = context
        self.site, self.sup = context.hierarchy.find_sup(fqdn)
        self.name = f"sup:{self.sup.fqdn}"
        self.sock = sock
        self.http_sock = http_sock
        self.http_url = ""
        self.data = context.hierarchy.update_server_dir(self.sup.fqdn)
        self.replica = context.hierarchy.is_replica(self.site, self.sup)

    def upstream(self) -> str | None:
        h = self.context.hierarchy
        if self.site.parent is None and self.sup == self.site.default_sup:
            return self.context.upstream_url or h.upstream.url
        return h.sup_upstream(self.site, self.sup)

    def _start(self) -> None:
        tls = self.context.server_tls(self.name)
        upstream = self.upstream()
        verify = self.context.verify_for(upstream) if upstream else None
        url = self.sup.database
        store = UpdateStore.open(
            self.data,
            url=with_password(url, password_variable(self.sup.fqdn)) if url else None,
        )
        self._on_stop(store.close)
        runner = upstream_runner(
            store,
            upstream,
            server_name=self.sup.fqdn,
            replica=self.replica,
            verify=verify if not isinstance(verify, bool) else None,
        )
        # Stopping ends the sync that runs (the servers are stopped first) before the
        # store closes.
        self._on_stop(runner.close)
        app = create_app(
            StoreBackend(store),
            extra_routes=admin_routes(store, runner),
            on_error=service_error_logger(store),
        )
        log = default_log(store)
        guarded = require_signature(
            app,
            self.context.secret,
            protect=[ADMIN_ROUTES],
            callers=self.context.callers,
            hosts=self.context.names(self.sup.fqdn, self.sup.address),
            log=None if log is None else lambda line: log.warning(ADMIN_LOG_SOURCE, line),
        )
        # The body limits outside the signature check, which reads the body.
        limited = limit_bodies(guarded, app.state.body_limits)
        host = self.context.listen_host
        self.url = self._serve(limited, self.sup.port, self.sock, host, tls)
        if tls is not None and (self.sup.http_port is not None or self.http_sock is not None):
            # The protocol alone: an app without the admin routes, over the same store.
            plain = create_app(StoreBackend(store), on_error=service_error_logger(store))
            self.http_url = self._serve(plain, self.sup.http_port or 0, self.http_sock, host)
