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

`/metrics` (`updateserver/metrics.py`) is on the SUP's port (never on its plain-HTTP port),
open as a site server's is unless `[hierarchy.security] metrics_need_token`; then it answers
only a request with `Authorization: Bearer <token>` of a token its site server knows (any
security role): the SUP holds no tokens, so it asks its site's SMS Provider (`GET
/api/whoami`) and remembers a token it accepted for `TOKEN_MEMORY` seconds.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from typing import Any

import httpx

from updatesync.config.databases import password_variable, with_password
from updatesync.roles.context import Role, RoleContext
from updatesync.security.access import bearer_of, send_json, unauthorized_text
from updatesync.security.limits import limit_bodies
from updatesync.security.signing import require_signature
from updatesync.updateserver.admin_api import admin_routes, service_error_logger, upstream_runner
from updatesync.updateserver.admin_openapi import openapi_routes
from updatesync.updateserver.metrics import METRICS_PATH, UpdateServerMetrics
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.updateserver.sync.context import default_log
from updatesync.wsusss.service import create_app

ADMIN_ROUTES = "/api/"
"""An update server's admin API, called by its site server, signed."""
ADMIN_LOG_SOURCE = "AdminApi"
"""The source of SoftwareDistribution.log lines about the admin API (refused calls)."""
TOKEN_MEMORY = 60.0
"""Seconds a SUP takes a token its site server accepted for `/metrics` without asking again."""


class SiteTokenGuard:
    """`app` with `/metrics` answered only to a bearer token the site server at `site_url`
    accepts (`GET /api/whoami` answers 200); 401 (`WWW-Authenticate: Bearer`) otherwise, 503
    when the site server cannot be asked."""

    def __init__(
        self, app: Any, site_url: str, *, verify: ssl.SSLContext | bool, site: str
    ) -> None:
        self.app = app
        self.whoami = site_url.rstrip("/") + "/api/whoami"
        self.verify = verify
        self.site = site
        self._accepted: dict[bytes, float] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != METRICS_PATH:
            await self.app(scope, receive, send)
            return
        token = bearer_of(scope)
        if token is None:
            await send_json(send, 401, {"detail": unauthorized_text("no token")}, True)
            return
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        if self._accepted.get(digest, 0.0) < time.monotonic():
            refused = await self._ask(token)
            if refused is not None:
                await send_json(send, refused[0], {"detail": refused[1]}, refused[0] == 401)
                return
            now = time.monotonic()
            self._accepted = {k: v for k, v in self._accepted.items() if v > now}
            self._accepted[digest] = now + TOKEN_MEMORY
        await self.app(scope, receive, send)

    async def _ask(self, token: str) -> tuple[int, str] | None:
        """None when the site server knows the token, else the status and why not."""
        try:
            async with httpx.AsyncClient(verify=self.verify, timeout=10) as client:
                answer = await client.get(self.whoami, headers={"authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            return 503, (
                f"the token cannot be checked: site server {self.site} does not answer "
                f"({type(exc).__name__}); /metrics needs a token its site server knows"
            )
        if answer.status_code == 200:
            return None
        if answer.status_code == 401:
            return 401, unauthorized_text(f"site server {self.site} does not know this token")
        return 503, (
            f"the token cannot be checked: site server {self.site} answered {answer.status_code}"
        )


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
        self.metrics = metrics = UpdateServerMetrics(store, self.sup.fqdn)
        runner = upstream_runner(
            store,
            upstream,
            server_name=self.sup.fqdn,
            replica=self.replica,
            verify=verify if not isinstance(verify, bool) else None,
            on_finished=metrics.count_sync,
        )
        # Stopping ends the sync that runs (the servers are stopped first) before the
        # store closes.
        self._on_stop(runner.close)
        app = create_app(
            StoreBackend(store),
            extra_routes=[*admin_routes(store, runner), *openapi_routes(), metrics.route()],
            on_error=service_error_logger(store),
            on_answer=metrics.count_request,
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
        if self.context.hierarchy.security.metrics_need_token:
            guarded = SiteTokenGuard(
                guarded, self.site.url, verify=self.context.verify, site=self.site.code
            )
        # The body limits outside the signature check, which reads the body.
        limited = limit_bodies(guarded, app.state.body_limits)
        host = self.context.listen_host
        self.url = self._serve(limited, self.sup.port, self.sock, host, tls)
        if tls is not None and (self.sup.http_port is not None or self.http_sock is not None):
            # The protocol alone: an app without the admin routes, over the same store.
            plain = create_app(
                StoreBackend(store),
                on_error=service_error_logger(store),
                on_answer=metrics.count_request,
            )
            self.http_url = self._serve(plain, self.sup.http_port or 0, self.http_sock, host)
