"""The console's role: the web console of the whole hierarchy on its own port."""

from __future__ import annotations

import socket

from updatesync.roles.context import Role, RoleContext


class ConsoleRole(Role):
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

    def _start(self) -> None:
        from updatesync.console import create_console_app

        # The console calls each site's SMS Provider as a role of the hierarchy (signed).
        app = create_console_app(
            self.context.hierarchy, auth=self.context.auth("console"), verify=self.context.verify
        )
        tls = self.context.server_tls("console")
        self.url = self._serve(app, self.port, self.sock, self.context.listen_host, tls)
