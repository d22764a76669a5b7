"""`updatesync serve` and `updatesync secret`: run the roles of a hierarchy file.

`serve HIERARCHY.toml --role site:PS1` runs one site server at the address and port the file
gives it; `--role sup:FQDN` one SUP's update server; `--role console` the web console of the
whole hierarchy (`--console-port`); `--role all` every role of the file in this process, each
on a free loopback port, and the console. Each role prints one line `role <name> at <url>`
when it listens, then the command runs until Ctrl-C or SIGTERM.
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

from updatesync.config import Hierarchy, HierarchyError, load_hierarchy
from updatesync.security.signing import SecretError, create_secret, load_secret

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
) -> None:
    """Run roles of a hierarchy: one site server, one SUP, the web console, or every role
    (`all`, the console included)."""
    from updatesync.roles import (
        ConsoleRole,
        RoleContext,
        RoleError,
        on_loopback,
        parse_role,
        start_roles,
    )

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
        secret = b"" if console_only else load_secret(hierarchy.secret_path)
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
        print(f"updatesync: {len(roles)} role(s) running; Ctrl-C to stop", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        for started in reversed(roles):
            started.stop()
        print("updatesync: stopped", file=sys.stderr, flush=True)
