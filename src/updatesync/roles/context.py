"""What the roles of one hierarchy share: the context they run in (with the TLS files each
role serves with and the `verify` every call between roles checks its peer with), their
start/stop bookkeeping, and the error a role that cannot start raises."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from updatesync.config import Hierarchy
from updatesync.config.hierarchy import TlsFiles
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.roles.serving import BackgroundServer
from updatesync.security.pki import TlsError, check_server_files, client_context, public_context
from updatesync.security.signing import SYSTEM_CALLERS, HmacAuth
from updatesync.site.database.store import SiteDatabaseError
from updatesync.updateserver.errors import UpdateServerError


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
    _verify: dict[str, ssl.SSLContext | bool] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What every call between the roles verifies its peer with: a context trusting only
        the hierarchy's CA (`[hierarchy.tls] ca`), built once; the system's trust store,
        built once too, when the hierarchy has no TLS (every call is plain HTTP then; httpx's
        default, `True`, loaded its CA bundle again for every client made: a sync makes
        several, 20 to 80 ms each). RoleError naming the file when the CA cannot be read."""
        if "hierarchy" not in self._verify:
            tls = self.hierarchy.tls
            if tls is None:
                self._verify["hierarchy"] = self.verify_for(None)
            else:
                try:
                    self._verify["hierarchy"] = client_context(
                        tls.ca, f"[hierarchy.tls] ca of {self.hierarchy.source}"
                    )
                except TlsError as exc:
                    raise RoleError(str(exc)) from None
        return self._verify["hierarchy"]

    def verify_for(self, url: str | None) -> ssl.SSLContext | bool:
        """What a call to `url` verifies its peer with: the hierarchy's CA for a site or SUP
        of this hierarchy, the system's trust store for anything else (Microsoft Update, a
        WSUS server outside the hierarchy)."""
        if url is None or not self._in_hierarchy(url):
            if "public" not in self._verify:
                self._verify["public"] = public_context()
            return self._verify["public"]
        return self.verify

    def _in_hierarchy(self, url: str) -> bool:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
        for site in self.hierarchy.sites:
            ends = [(site.address or site.fqdn, site.port)]
            ends += [(sup.address or sup.fqdn, sup.port) for sup in site.sups]
            if any(host == h.lower() and port == p for h, p in ends):
                return True
        return False

    def server_tls(self, role: str) -> TlsFiles | None:
        """The certificate and key the role (`site:CS1`, `sup:FQDN`, `console`) serves HTTPS with,
        checked; None without TLS. RoleError naming the file, the key of the hierarchy file
        and how to issue one when they cannot be used."""
        kind, _, value = role.partition(":")
        h = self.hierarchy
        if kind == "console":
            files = h.console_tls()
        else:
            files = h.site_tls(value) if kind == "site" else h.sup_tls(value)
        if files is None:
            return None
        self.verify  # noqa: B018 - a role with TLS on needs the CA too: say first if it cannot
        if kind == "console":
            host = "CONSOLE-HOST --name console"
        else:
            host = h.site(value).fqdn if kind == "site" else h.find_sup(value)[1].fqdn
        try:
            check_server_files(
                files.cert,
                files.key,
                where=f"{files.where}, in {h.source}",
                host=host,
                folder=files.folder,
            )
        except TlsError as exc:
            raise RoleError(f"{role}: {exc}") from None
        return files

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

    @property
    def callers(self) -> tuple[str, ...]:
        """The names that may sign a call to a role of this hierarchy: its site codes, its
        SUPs' FQDNs and the system callers (the console, the demo)."""
        h = self.hierarchy
        return (
            *(site.code for site in h.sites),
            *(sup.fqdn for site in h.sites for sup in site.sups),
            *SYSTEM_CALLERS,
        )

    def names(self, fqdn: str, address: str | None) -> tuple[str, ...]:
        """The host names a role is addressed by: its FQDN, its address in the hierarchy
        file, and the address it listens on (unless that is every interface)."""
        listen = self.listen_host if self.listen_host not in ("0.0.0.0", "::", "") else None
        return tuple(name for name in (fqdn, address, listen) if name)


class Role:
    """Start/stop bookkeeping shared by the roles: the servers a role listens with, what
    it closes when it stops (in the reverse order of opening), and the threads it owns.

    A role's `start()` builds its parts in `_start()`; if one fails, what was already
    started is stopped before the error goes on. `stop()` stops the servers first (no new
    request comes in), joins the role's own threads, then stops every part."""

    name: str

    def __init__(self) -> None:
        self._servers: list[BackgroundServer] = []
        self._closers: list[Callable[[], object]] = []
        self._threads: list[threading.Thread] = []
        self.url = ""

    def _start(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        try:
            self._start()
        except (SiteDatabaseError, UpdateServerError) as exc:
            self.stop()  # its database cannot be used: the role says which and what to do
            raise RoleError(f"{self.name}: {exc}") from exc
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(
        self,
        app: Any,
        port: int,
        sock: socket.socket | None,
        host: str,
        tls: TlsFiles | None = None,
    ) -> str:
        server = BackgroundServer(
            app,
            host=host,
            port=port,
            sock=sock,
            ssl_certfile=tls.cert if tls else None,
            ssl_keyfile=tls.key if tls else None,
        )
        try:
            server.start()
        except OSError as exc:
            raise RoleError(f"{self.name}: {exc}") from exc
        self._servers.append(server)
        return server.url

    def _on_stop(self, close: Callable[[], object]) -> None:
        """Call `close` when the role stops (after what was registered later)."""
        self._closers.append(close)

    def _run_thread(self, target: Callable[[], object], what: str) -> None:
        """Run `target` in a thread of this role, joined when the role stops."""
        thread = threading.Thread(target=target, name=f"{self.name} {what}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        for server in reversed(self._servers):
            server.stop()
        self._servers.clear()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()
        for close in reversed(self._closers):
            close()
        self._closers.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
