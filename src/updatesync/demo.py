"""`updatesync demo`: the article's hierarchy syncing in one process, shown as it spreads.

A local update server loaded with a generated catalog plays Microsoft Update. Every role of
the hierarchy file (by default the article's: CS1 → PS1 with SUPs ps1site and ps1sys, PS2;
SS1 under PS1) runs in this process on its own loopback port, talking to the others over
signed HTTPS only: the demo creates a CA under `<data>/pki/` (`ca.pem`), issues each host a
certificate (valid for 127.0.0.1, where it runs), and writes the hierarchy file it runs,
with those ports and that CA, to `<data>/hierarchy.toml`. The demo asks CS1's SMS Provider
to SyncNow and shows, live, each site's and each SUP's state, content version and items
while the sync travels down the tree; then it brings next month's catalog and syncs again.
At the end of each round a table gives, per site and SUP, the state, content version, items
and duration. The web console asks for a login: the demo gives the Full Administrator `admin`
a random password (through CS1's SMS Provider, `PUT /api/users/admin/password`), keeps it in
`<data>/admin.password` (0600) and prints where it is, never the password itself.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass, replace
from datetime import datetime
from importlib import resources
from pathlib import Path

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from updatesync.config import Criteria, Hierarchy, load_hierarchy
from updatesync.logs.cmtrace import read_cmtrace
from updatesync.metadata.export import read_export, write_export
from updatesync.metadata.generator import evolve_catalog, generate_catalog
from updatesync.roles import (
    ConsoleRole,
    RoleContext,
    SiteRole,
    SupRole,
    loopback_file,
    on_loopback,
    parse_role,
    start_roles,
)
from updatesync.roles.hierarchy import LOOPBACK
from updatesync.roles.serving import BackgroundServer, bind
from updatesync.security.access import read_token_file
from updatesync.security.pki import CA_CERT, create_ca, issue_certificate, server_files
from updatesync.security.private_files import create_private_file, private_dir
from updatesync.security.signing import create_secret, load_secret
from updatesync.site.api.auth import ADMIN_TOKEN_FILE
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.license_terms import add_generated_license_files
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.vocabulary import (
    SYNC_COMPLETED,
    SYNC_FAILED,
    SYNC_MANAGER_LOG,
    SYNC_STATES,
)
from updatesync.wsusss.service import create_app

DEMO_CLASSIFICATIONS = (
    "e6cf1350-c01b-414d-a61f-263d14d133b4",  # Critical Updates
    "0fa1201d-4330-4fa8-8ae9-b877473b6441",  # Security Updates
    "e0789628-ce08-4437-be74-2495b842f43b",  # Definition Updates
    "cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83",  # Updates
)
STATE_NAMES: dict[int | None, str] = {
    None: "idle",
    **{message_id: phase.demo_label for message_id, phase in SYNC_STATES.items()},
}
REFRESH_SECONDS = 0.25


def example_hierarchy() -> Path:
    """The article's hierarchy file, shipped with the package."""
    return Path(str(resources.files("updatesync") / "examples" / "hierarchy.toml"))


@dataclass
class RoundRow:
    role: str
    state: str
    version: str
    items: str
    seconds: str


class HierarchyDemo:
    """Prepare with `HierarchyDemo(root, ...)`, then `with demo: demo.round(...)`."""

    def __init__(
        self,
        root: Path,
        *,
        hierarchy_file: Path | None = None,
        updates: int = 3000,
        console: Console | None = None,
        top_port: int = 0,
        console_port: int = 0,
    ) -> None:
        """`top_port`: the top-level site's port (its SMS Provider), 0 for any free one.
        A relative `root` is taken from the current folder (the hierarchy file written there
        names its paths whole, as a file's relative paths count from the file's folder)."""
        root = Path(root).absolute()
        self.root = root
        self.top_port = top_port
        self.console_port = console_port
        self.web: ConsoleRole | None = None
        self.updates = updates
        self.admin_token_file = root / ADMIN_TOKEN_FILE
        """A copy of the Full Administrator's token (the top-level site's), mode 0600."""
        self.console = console or Console()
        self.hierarchy_file = hierarchy_file or example_hierarchy()
        self.month1 = root / "catalog-month1.cab"
        self.month2 = root / "catalog-month2.cab"
        self.mu_dir = root / "microsoft-update.local"
        self.pki = root / "pki"
        self.file = root / "hierarchy.toml"
        self.password_file = root / "admin.password"
        self.sites: list[SiteRole] = []
        self.sups: list[SupRole] = []
        self.hierarchy: Hierarchy | None = None
        self._shown: dict[str, int] = {}
        self._sizes: dict[str, int] = {}
        self._admin: httpx.Client | None = None

    # -- set-up ------------------------------------------------------------------------------

    def _catalogs(self) -> None:
        if not self.month1.exists():
            write_export(self.month1, generate_catalog(self.updates, 7))
        if not self.month2.exists():
            with read_export(self.month1) as previous:
                write_export(
                    self.month2, evolve_catalog(previous.records(), max(self.updates // 30, 1), 8)
                )

    def _certificates(self, hierarchy: Hierarchy) -> None:
        """The demo's CA and a certificate for each host and for the web console (valid at
        127.0.0.1, where every role of the demo runs); those made by an earlier run are kept."""
        if not (self.pki / CA_CERT).exists():
            create_ca(self.pki, f"{hierarchy.name} demo CA")
        hosts = {site.fqdn for site in hierarchy.sites}
        hosts |= {sup.fqdn for site in hierarchy.sites for sup in site.sups}
        for host in sorted(hosts):
            if not server_files(self.pki, host)[0].exists():
                issue_certificate(self.pki, host, [LOOPBACK])
        if not server_files(self.pki, "console")[0].exists():  # the web console, on loopback
            issue_certificate(self.pki, "localhost", [LOOPBACK], file_name="console")

    def _write_file(self, loaded: Hierarchy) -> tuple[Hierarchy, dict[str, socket.socket]]:
        """Reserve every role's port, write the hierarchy file the demo runs (every role at
        127.0.0.1 on its port, TLS with the demo's CA) and load it back; the hierarchy and
        the reserved sockets, by role name."""
        _, socks = on_loopback(loaded)
        if self.top_port:
            name = f"site:{loaded.top.code}"
            socks[name].close()
            socks[name] = bind(LOOPBACK, self.top_port)
        loopback_file(
            self.hierarchy_file,
            self.file,
            settings={
                "data_dir": self.root / "hierarchy",
                "secret_file": None,
                "tls": {"ca": (self.pki / CA_CERT).as_posix(), "dir": self.pki.as_posix()},
            },
            ports={name: int(sock.getsockname()[1]) for name, sock in socks.items()},
        )
        return load_hierarchy(self.file), socks

    def _copy_token(self, source: Path) -> None:
        """The top-level site's admin token also at `<data>/admin.token` (0600)."""
        token = source.read_bytes()
        if self.admin_token_file.is_file() and self.admin_token_file.read_bytes() == token:
            return
        self.admin_token_file.unlink(missing_ok=True)
        create_private_file(self.admin_token_file, token)

    def start(self) -> HierarchyDemo:
        loaded = load_hierarchy(self.hierarchy_file)  # a wrong file is said before any work
        private_dir(self.root)
        self.console.print(
            "generating the stand-in Microsoft Update's catalogs", highlight=False, markup=False
        )
        self._catalogs()
        self.mu = UpdateStore.open(self.mu_dir)
        import_export_cabinet(self.mu, self.month1)
        add_generated_license_files(self.mu)  # Microsoft Update serves the license terms too
        self.mu_server = BackgroundServer(create_app(StoreBackend(self.mu))).start()
        products = tuple(c.update_id for c in self.mu.categories("Product"))
        self._certificates(loaded)
        written, socks = self._write_file(loaded)
        hierarchy = replace(written, criteria=Criteria(products, DEMO_CLASSIFICATIONS, ("en",)))
        self.hierarchy = hierarchy
        if not hierarchy.secret_path.exists():
            create_secret(hierarchy.secret_path)
        context = RoleContext(
            hierarchy, load_secret(hierarchy.secret_path), upstream_url=self.mu_server.url
        )
        self.context = context
        roles = start_roles(context, parse_role(hierarchy, "all"), socks=socks)
        self.sups = [r for r in roles if isinstance(r, SupRole)]
        self.sites = [r for r in roles if isinstance(r, SiteRole)]
        self.web = ConsoleRole(context, port=self.console_port).start()
        self.console.print(
            f"stand-in Microsoft Update at {self.mu_server.url}; hierarchy "
            f"{hierarchy.name!r}: "
            + ", ".join(f"{s.code} at {s.url}" for s in self.sites)
            + "; "
            + ", ".join(f"{s.sup.fqdn} at {s.url}" for s in self.sups),
            highlight=False,
            markup=False,
        )
        self.console.print(f"web console at {self.web.url}/", highlight=False, markup=False)
        self.console.print(
            "every site, SUP and the web console serve HTTPS with a certificate of the demo's CA "
            f"{self.pki / CA_CERT}; the hierarchy file they run: {self.file}",
            highlight=False,
            markup=False,
        )
        top_site = next(s for s in self.sites if s.parent is None)
        self._copy_token(top_site.admin_token_file)
        self.console.print(
            f"the Full Administrator's API token, for the commands you run: "
            f"{self.admin_token_file}",
            highlight=False,
            markup=False,
        )
        self.console.print(
            f"the Full Administrator's API token (user admin) is in {top_site.admin_token_file}",
            highlight=False,
            markup=False,
        )
        self._console_login(top_site)
        self.console.print(
            f"sign in to the web console as admin; the password is in {self.password_file}",
            highlight=False,
            markup=False,
        )
        return self

    def _console_login(self, top: SiteRole) -> None:
        """Give `admin` the password of `<data>/admin.password` (a new random one, written
        0600, when the file does not exist yet) at the top-level site's SMS Provider."""
        if not self.password_file.exists():
            create_private_file(self.password_file, (secrets.token_urlsafe(18) + "\n").encode())
        password = self.password_file.read_text(encoding="utf-8").strip()
        answer = httpx.put(
            f"{top.url}/api/users/admin/password",
            json={"password": password},
            verify=self.context.verify,
            headers={"authorization": f"Bearer {read_token_file(top.admin_token_file)}"},
            timeout=30,
        )
        answer.raise_for_status()

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        if self.web is not None:
            self.web.stop()
        for role in [*self.sites, *self.sups]:
            role.stop()
        if getattr(self, "mu_server", None) is not None:
            self.mu_server.stop()
            self.mu.close()

    def __enter__(self) -> HierarchyDemo:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- one round -----------------------------------------------------------------------------

    def next_month(self) -> None:
        import_export_cabinet(self.mu, self.month2)
        add_generated_license_files(self.mu)

    def round(self, label: str) -> bool:
        """SyncNow at the top-level site and follow the sync down the tree; True when every
        site's sync succeeded."""
        assert self.hierarchy is not None
        top = next(s for s in self.sites if s.parent is None)
        counts = {s.code: len(s.results) for s in self.sites}
        started = time.monotonic()
        answer = httpx.post(
            f"{top.url}/api/sites/{top.code}/sync",
            json={"full": False},
            verify=self.context.verify,
            headers={"authorization": f"Bearer {read_token_file(top.admin_token_file)}"},
        )
        answer.raise_for_status()
        every_done = threading.Event()
        by_code = {s.code: s for s in self.sites}

        def finished(site: SiteRole) -> bool:
            return len(site.results) > counts[site.code]

        def all_done() -> bool:
            """Every site whose parent's sync succeeded this round has finished its own."""
            for site in self.sites:
                parent = by_code.get(site.parent.code) if site.parent else None
                if parent is not None and not (finished(parent) and parent.results[-1].succeeded):
                    continue
                if not finished(site):
                    return False
            return True

        self.console.print()
        with Live(self._table(label, counts), console=self.console, transient=False) as live:
            while not all_done():
                every_done.wait(REFRESH_SECONDS)
                self._echo_logs(live.console)
                live.update(self._table(label, counts))
            self._echo_logs(live.console)
            live.update(self._table(label, counts, seconds=time.monotonic() - started))
        self.console.print()
        ok = all(finished(s) and s.results[-1].succeeded for s in self.sites)
        versions = sorted({s.db.content.version() for s in self.sites})
        if ok:
            self.console.print(
                f"{label}: every site synced; content version "
                f"{', '.join(map(str, versions))} at {', '.join(s.code for s in self.sites)}",
                highlight=False,
                markup=False,
            )
        else:
            failed = [
                f"{s.code}: {s.results[-1].error if finished(s) else 'did not sync'}"
                for s in self.sites
                if not (finished(s) and s.results[-1].succeeded)
            ]
            self.console.print(
                f"{label}: FAILED at " + "; ".join(failed), highlight=False, markup=False
            )
        return ok

    def _echo_logs(self, console: Console) -> None:
        """Print each site's new WSyncMgr.log lines, the site code first (the one line per
        configuration item left out: the table counts them)."""
        for site in self.sites:
            log = site.log_dir / SYNC_MANAGER_LOG
            size = log.stat().st_size if log.exists() else 0
            if size == self._sizes.get(site.code):
                continue  # nothing written since the last look: no need to parse it again
            self._sizes[site.code] = size
            entries = list(read_cmtrace(log)) if size else []
            for entry in entries[self._shown.get(site.code, 0) :]:
                text = entry.message
                if text.startswith("Synchronizing update "):
                    continue
                if text.startswith("STATMSG: "):
                    # The id and severity say it; the rest is in the log.
                    text = " ".join(text.split(" ")[:3]) + " ..."
                style = (
                    "red" if entry.severity == 3 else "dim" if text.startswith("STATMSG") else ""
                )
                console.print(
                    Text(f"{site.code}  {text}", style=style),
                    highlight=False,
                    no_wrap=True,
                    overflow="ellipsis",
                )
            self._shown[site.code] = len(entries)

    def _table(self, label: str, counts: dict[str, int], seconds: float | None = None) -> Table:
        title = f"{label}: SyncNow at {self.sites[0].code}"
        if seconds is not None:
            title += f" — every site and SUP done in {seconds:.1f} s"
        table = Table(title=Text(title, style="table.title"), title_justify="left")
        table.add_column("site / SUP", no_wrap=True, min_width=22)
        for column in ("state", "version", "items", "time"):
            table.add_column(column, justify="right", no_wrap=True)
        for row in self.rows(counts):
            table.add_row(*(Text(cell) for cell in astuple(row)))
        return table

    def rows(self, counts: dict[str, int]) -> list[RoundRow]:
        """Per site (then its SUPs): state, content version, items, duration."""
        rows: list[RoundRow] = []
        sups = {s.sup.fqdn: s for s in self.sups}
        for site in self.sites:
            status = site.db.sync.status()
            finished = len(site.results) > counts.get(site.code, 0)
            result = site.results[-1] if finished else None
            state = STATE_NAMES.get(status.last_sync_state, str(status.last_sync_state))
            if not finished and status.last_sync_state in (*SYNC_COMPLETED, SYNC_FAILED):
                state = "waiting for parent" if site.parent is not None else "requested"
            rows.append(
                RoundRow(
                    f"{site.code} ({site.site.type})",
                    state,
                    str(site.db.content.version()),
                    f"{site.db.content.ci_count():,} CIs",
                    f"{result.seconds:.1f} s" if result else "",
                )
            )
            held = {s.wsus_server_name: s for s in site.db.sups.sync_statuses()}
            for configured in site.site.sups:
                role = sups.get(configured.fqdn)
                row = held.get(configured.fqdn)
                sup_state = STATE_NAMES.get(row.last_sync_state if row else None, "")
                rows.append(
                    RoundRow(
                        f"  {configured.fqdn}",
                        sup_state,
                        str(row.sync_catalog_version) if row else "",
                        *(self._sup_figures(role) if role else ("", "")),
                    )
                )
        return rows

    def _sup_figures(self, role: SupRole) -> tuple[str, str]:
        """(revisions held, last sync's duration) from the update server's admin API."""
        if self._admin is None:
            self._admin = httpx.Client(
                auth=self.context.auth("demo"), timeout=5, verify=self.context.verify
            )
        try:
            status = self._admin.get(f"{role.url}/api/status").json()
            sync = self._admin.get(f"{role.url}/api/sync").json()
        except httpx.HTTPError:
            return "?", "?"
        seconds = ""
        if sync.get("started_at") and sync.get("last_finished_at") and not sync.get("running"):
            span = datetime.fromisoformat(sync["last_finished_at"]) - datetime.fromisoformat(
                sync["started_at"]
            )
            seconds = f"{span.total_seconds():.1f} s"
        return f"{status['revisions']:,} revs", seconds


def run_demo(
    root: Path,
    *,
    updates: int,
    hierarchy_file: Path | None,
    console: Console,
    top_port: int = 0,
    console_port: int = 0,
    keep_serving: Callable[[HierarchyDemo], None] | None = None,
) -> bool:
    """Two rounds (first sync, next month); True when every sync of both succeeded.
    `keep_serving(demo)` runs after them, with every role still up."""
    ok = True
    with HierarchyDemo(
        root,
        hierarchy_file=hierarchy_file,
        updates=updates,
        console=console,
        top_port=top_port,
        console_port=console_port,
    ) as demo:
        for label in ("first sync", "next month"):
            if label == "next month":
                demo.next_month()
            ok = demo.round(label) and ok
        logs = ", ".join(str(s.log_dir) for s in demo.sites)
        console.print(f"logs: {logs}", highlight=False, markup=False)
        if keep_serving is not None:
            keep_serving(demo)
    return ok
