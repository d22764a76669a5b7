"""What the roles of one hierarchy share: the context they run in, their start/stop
bookkeeping, and the error a role that cannot start raises."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from updatesync.config import Hierarchy
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.roles.serving import BackgroundServer
from updatesync.security.signing import SYSTEM_CALLERS, HmacAuth


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
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self, app: Any, port: int, sock: socket.socket | None, host: str) -> str:
        server = BackgroundServer(app, host=host, port=port, sock=sock)
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
