"""`updatesync serve` and `updatesync secret`: run the roles of a hierarchy file.

`serve HIERARCHY.toml --role site:PS1` runs one site server at the address and port the file
gives it; `--role sup:FQDN` one SUP's update server; `--role console` the web console of the
whole hierarchy (`--console-port`); `--role all` every role of the file in this process, each
on a free loopback port, and the console. Each role prints one line `role <name> at <url>`
when it listens, then the command runs until Ctrl-C or SIGTERM.

With `--processes`, each role named (with `all`: each SUP, each site and the console) runs
as its own child process, `serve FILE --role <name>` at the address and port the file gives
it (with `all` and a file whose roles are not all at loopback addresses, as one written for
many hosts, a copy of the file with every role on a free loopback port, as `--role all`
does in one process); the command prints `role <name> at <url> (pid <pid>)` once the
role answers there, and stops every child when it stops. A child that dies is reported (its
exit code, the end of its output) and the others are stopped: the command then exits with
status 1.
"""

from __future__ import annotations

import ipaddress
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from updatesync.config import Hierarchy, HierarchyError, load_hierarchy
from updatesync.roles import (
    ConsoleRole,
    Role,
    RoleContext,
    RoleError,
    loopback_file,
    on_loopback,
    parse_role,
    start_roles,
)
from updatesync.roles.supervisor import Supervisor
from updatesync.security.signing import SecretError, create_secret, load_secret
from updatesync.site.api.auth import ADMIN_TOKEN_FILE

console = Console()
err_console = Console(stderr=True)

DEFAULT_CONSOLE_PORT = 8450
"""Where `serve --role console` (and `--role all`) serves the web console."""

secret_app = typer.Typer(help="The hierarchy's shared secret for site-to-site calls.")


@secret_app.command("new")
def secret_new(
    path: Annotated[Path, typer.Argument(help="Where to write the secret (must not exist).")],
) -> None:
    """Write a new random shared secret; copy the file to every host of the hierarchy."""
    try:
        create_secret(path)
    except FileExistsError:
        err_console.print(f"[bold red]error:[/] {path} exists; remove it first to replace it")
        raise typer.Exit(1) from None
    except OSError as exc:
        err_console.print(f"[bold red]error:[/] cannot write {path}: {exc}")
        raise typer.Exit(1) from exc
    console.print(f"wrote a new shared secret to {path} (readable by you only)", highlight=False)


def _listen_host(hierarchy: Hierarchy, name: str) -> str:
    """Listen on the role's address when it is an IP address, else on every interface."""
    kind, _, value = name.partition(":")
    address = (
        hierarchy.site(value).address if kind == "site" else hierarchy.find_sup(value)[1].address
    )
    if address:
        try:
            ipaddress.ip_address(address)
            return address
        except ValueError:
            pass
    return "0.0.0.0"


def serve(
    hierarchy_file: Annotated[Path, typer.Argument(help="The hierarchy file (TOML).")],
    role: Annotated[
        str,
        typer.Option(help="all, site:<CODE> (site:PS1) or sup:<FQDN> (sup:ps1sys.contoso.com)."),
    ] = "all",
    upstream: Annotated[
        str | None,
        typer.Option(help="Sync the top-level default SUP from this URL instead of the file's."),
    ] = None,
    console_port: Annotated[
        int,
        typer.Option(help="Port of the web console (with --role console or all; 0: any)."),
    ] = DEFAULT_CONSOLE_PORT,
    processes: Annotated[
        bool,
        typer.Option(
            "--processes",
            help="Run each role as its own process, at the address and port the file gives it.",
        ),
    ] = False,
) -> None:
    """Run roles of a hierarchy: one site server, one SUP, the web console, or every role
    (`all`, the console included)."""
    if processes:
        _serve_processes(hierarchy_file, role, upstream, console_port)
        return
    try:
        hierarchy = load_hierarchy(hierarchy_file)
        console_only = role.strip().lower() == "console"
        names = [] if console_only else parse_role(hierarchy, role)
        everything = role.strip().lower() == "all"
        socks = {}
        if everything:
            hierarchy, socks = on_loopback(hierarchy)
            if not hierarchy.secret_path.exists():
                create_secret(hierarchy.secret_path)
        secret = load_secret(hierarchy.secret_path)  # the console signs its provider calls
        if everything:
            host = "127.0.0.1"
        elif console_only:
            host = "0.0.0.0"
        else:
            host = _listen_host(hierarchy, names[0])
        context = RoleContext(hierarchy, secret, upstream_url=upstream, listen_host=host)
        roles = start_roles(context, names, socks=socks)
        if everything or console_only:
            try:
                roles.append(ConsoleRole(context, port=console_port).start())
            except BaseException:
                for started in reversed(roles):
                    started.stop()
                raise
    except (HierarchyError, RoleError, SecretError, ValueError, OSError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        for started in roles:
            print(f"role {started.name} at {started.url}", flush=True)
        _say_admin_token(roles)
        print(f"updatesync: {len(roles)} role(s) running; Ctrl-C to stop", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        for started in reversed(roles):
            started.stop()
        print("updatesync: stopped", file=sys.stderr, flush=True)


def _say_admin_token(roles: list[Role]) -> None:
    """Where the first start of a top-level site wrote the Full Administrator's token."""
    for started in roles:
        written = getattr(started, "admin_token_created", None)
        if written is not None:
            print(
                f"created the Full Administrator user admin; its API token is in {written} "
                "(readable by you only): updatesync user/token/sync-now --token-file "
                f"{written}",
                flush=True,
            )


def _serve_processes(
    hierarchy_file: Path, role: str, upstream: str | None, console_port: int
) -> None:
    """`serve --processes`: each role its own child process, until Ctrl-C or SIGTERM."""
    try:
        hierarchy = load_hierarchy(hierarchy_file)
        text = role.strip().lower()
        names = [] if text == "console" else parse_role(hierarchy, role)
        if text in ("all", "console"):
            names.append("console")
        if text == "all" and not hierarchy.secret_path.exists():
            create_secret(hierarchy.secret_path)
        if text == "all" and not _on_this_machine(hierarchy):
            hierarchy_file = _loopback_copy(hierarchy_file, hierarchy)
    except (HierarchyError, RoleError, SecretError, ValueError, OSError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    supervisor = Supervisor(
        hierarchy_file,
        names,
        hierarchy.data_dir / "processes",
        upstream=upstream,
        console_port=console_port,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        top = hierarchy.top.code
        failed = _supervise(supervisor, stop, hierarchy.data_dir / top / ADMIN_TOKEN_FILE)
        if failed is not None:
            err_console.print(
                f"[bold red]error:[/] {escape(str(failed))}", highlight=False, soft_wrap=True
            )
    finally:
        supervisor.stop()
    if failed is not None:
        print("updatesync: stopped every role", file=sys.stderr, flush=True)
        raise typer.Exit(1)
    print("updatesync: stopped", file=sys.stderr, flush=True)


def _on_this_machine(hierarchy: Hierarchy) -> bool:
    """Every site and SUP of the file has a loopback address: the file was written for
    running the whole hierarchy on one machine, at its own ports."""

    def loopback(address: str | None) -> bool:
        try:
            return address is not None and ipaddress.ip_address(address).is_loopback
        except ValueError:
            return False

    return all(
        loopback(site.address) and all(loopback(sup.address) for sup in site.sups)
        for site in hierarchy.sites
    )


def _loopback_copy(hierarchy_file: Path, hierarchy: Hierarchy) -> Path:
    """`--role all --processes` on a file written for many hosts (host names, shared
    ports): like `--role all` in one process, every role goes to a free loopback port, in a
    copy of the file that the child processes read (same data folder and secret)."""
    copy = hierarchy.data_dir / "processes" / "hierarchy.toml"
    loopback_file(
        hierarchy_file,
        copy,
        settings={"data_dir": hierarchy.data_dir, "secret_file": hierarchy.secret_path},
    )
    console.print(
        f"{hierarchy_file}: its sites and SUPs are not all at loopback addresses; every role "
        f"runs on 127.0.0.1 at a free port, as written in {copy}",
        highlight=False,
        markup=False,
    )
    return copy


def _supervise(
    supervisor: Supervisor, stop: threading.Event, admin_token: Path | None = None
) -> RoleError | None:
    """Start the children, print where each listens, and watch them until `stop` is set;
    the failure that ended the run early, if any."""
    try:
        supervisor.start(cancel=stop)
    except RoleError as exc:
        return None if stop.is_set() else exc
    for name, child in supervisor.children.items():
        print(f"role {name} at {child.url} (pid {child.pid})", flush=True)
    if admin_token is not None and admin_token.is_file():
        print(f"the Full Administrator's API token is in {admin_token}", flush=True)
    print(
        f"updatesync: {len(supervisor.children)} role(s) running, each in its own process "
        f"(their output in {supervisor.output_dir}); Ctrl-C to stop",
        flush=True,
    )
    while not stop.wait(0.5):
        dead = supervisor.exited()
        if dead:
            return dead[0].failure()
    return None
