"""`updatesync serve` and `updatesync secret`: run the roles of a hierarchy file.

`secret new FILE` writes a new shared secret; `secret rotate FILE` starts a rotation (a new
current secret, the old one kept as previous) and `secret rotate --finish FILE` ends it.
`secret webhook FILE` writes a webhook's signing secret.

`serve --hierarchy HIERARCHY.toml --role site:PS1` (or the file alone) runs one site server
at the address and port the file gives it; `--role sup:FQDN` one SUP's update server;
`--role console` the web console of the whole hierarchy (`--host`, `--console-port`);
`--role all` every role of the file on this host, and the console. A site or SUP listens on
its `listen` address, or on the address of this host its `address` (else its FQDN) names
(`roles.listen_address`); the console on `--host`, 127.0.0.1 unless told: nothing listens on
every interface unless the file or the command line says `0.0.0.0`. Each role prints one
line `role <name> at <url>` when it listens, then the command runs until Ctrl-C or SIGTERM.

`--role all` on a file whose every site and SUP is at an address of this host (loopback,
or this host's own) runs each at the address and port the file gives it, so that `sync-now
--hierarchy FILE` and the other commands reach them through the same file. On a file none
of whose roles is here (one written for many hosts, tried on one machine) every role runs on
127.0.0.1 at a free port, written in a copy of the file, `<data_dir>/loopback/hierarchy.toml`
(same data folder and secret), which the command names for the other commands. A file with
some roles here and some elsewhere is refused, naming those elsewhere.

With `--processes`, each role named (with `all`: each SUP, each site and the console) runs
as its own child process, `serve FILE --role <name>` (with `all`, FILE or its loopback copy
as above); the command prints `role <name> at <url> (pid <pid>)` once the role answers
there, and stops every child when it stops. A child that dies is reported (its exit code,
the end of its output) and the others are stopped: the command then exits with status 1.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from updatesync.cli.output import console, error, port_in_range, user_error_text

if TYPE_CHECKING:
    from updatesync.config import Hierarchy
    from updatesync.roles import Role, RoleError
    from updatesync.roles.supervisor import Supervisor

DEFAULT_CONSOLE_PORT = 8450
"""Where `serve --role console` (and `--role all`) serves the web console."""
DEFAULT_CONSOLE_HOST = "127.0.0.1"
"""The address the web console listens on unless `--host` says another."""
LOOPBACK_COPY = Path("loopback", "hierarchy.toml")
"""Where, under the data folder, `--role all` writes the copy of a file written for many
hosts that it runs on loopback."""

secret_app = typer.Typer(help="The hierarchy's shared secret for site-to-site calls.")


@secret_app.command("new")
def secret_new(
    path: Annotated[Path, typer.Argument(help="Where to write the secret (must not exist).")],
) -> None:
    """Write a new random shared secret; copy the file to every host of the hierarchy."""
    from updatesync.security.signing import create_secret

    try:
        create_secret(path)
    except FileExistsError:
        error(f"{path} exists; remove it first to replace it")
        raise typer.Exit(1) from None
    except OSError as exc:
        error(f"cannot write {path}: {exc.strerror or exc}")
        raise typer.Exit(1) from exc
    console.print(f"wrote a new shared secret to {path} (readable by you only)", highlight=False)


@secret_app.command("webhook")
def secret_webhook(
    path: Annotated[Path, typer.Argument(help="Where to write the secret (must not exist).")],
) -> None:
    """Write a new webhook signing secret (Standard Webhooks, `whsec_...`); name the file as
    the webhook's secret_file and give the receiver the same text."""
    from updatesync.security.webhook_signing import create_webhook_secret

    try:
        create_webhook_secret(path)
    except FileExistsError:
        error(f"{path} exists; remove it first to replace it")
        raise typer.Exit(1) from None
    except OSError as exc:
        error(f"cannot write {path}: {user_error_text(exc)}")
        raise typer.Exit(1) from exc
    console.print(
        f"wrote a new webhook secret to {path} (readable by you only): name it "
        "as the webhook's secret_file in [[hierarchy.alerts.webhooks]] and give the receiver "
        "the same text to verify the webhook-signature header",
    )


@secret_app.command("rotate")
def secret_rotate(
    path: Annotated[Path, typer.Argument(help="The hierarchy's shared secret file.")],
    finish: Annotated[
        bool,
        typer.Option("--finish", help="End the rotation: drop the previous secret from the file."),
    ] = False,
) -> None:
    """Rotate the shared secret: a new current secret, the old one kept as previous (both
    accepted) until `--finish`, run once the file is on every host."""
    from updatesync.security.shared_secret import SecretError, finish_rotation, rotate_secret

    try:
        if finish:
            dropped = finish_rotation(path)
        else:
            rotate_secret(path)
    except SecretError as exc:
        error(str(exc))
        raise typer.Exit(1) from None
    except OSError as exc:
        error(f"cannot write {path}: {user_error_text(exc)}")
        raise typer.Exit(1) from exc
    if finish and not dropped:
        console.print(f"{path} holds no previous secret: no rotation to finish")
    elif finish:
        console.print(
            f"dropped the previous secret from {path}: calls signed with it are refused from "
            "now on. Copy the file to every host of the hierarchy and restart their roles."
        )
    else:
        console.print(
            f"wrote a new current secret to {path}, keeping the old one as previous (roles "
            "accept both; they sign with the new one). Copy the file to every host of the "
            "hierarchy and restart their roles, then run "
            f"`updatesync secret rotate --finish {path}` and copy the file again."
        )


def _hierarchy_file(positional: Path | None, option: Path | None) -> Path:
    """The hierarchy file of `serve`: `--hierarchy FILE` (as every command names it) or the
    file alone; both only when they agree; neither is a usage error."""
    if positional is not None and option is not None and positional != option:
        raise typer.BadParameter(
            f"two hierarchy files, {positional} and --hierarchy {option}: give one",
            param_hint="--hierarchy",
        )
    chosen = option or positional
    if chosen is None:
        raise typer.BadParameter(
            "give the hierarchy file: updatesync serve --hierarchy FILE", param_hint="--hierarchy"
        )
    return chosen


def serve(
    hierarchy_file: Annotated[
        Path | None,
        typer.Argument(
            help="The hierarchy file (TOML); --hierarchy FILE says the same, as every other "
            "command does.",
            show_default=False,
        ),
    ] = None,
    hierarchy_option: Annotated[
        Path | None,
        typer.Option("--hierarchy", help="The hierarchy file (TOML).", show_default=False),
    ] = None,
    role: Annotated[
        str,
        typer.Option(
            help="all, console, site:<CODE> (site:PS1) or sup:<FQDN> (sup:ps1sys.contoso.com); "
            "a site code or a SUP's FQDN alone too (PS1, ps1sys.contoso.com)."
        ),
    ] = "all",
    upstream: Annotated[
        str | None,
        typer.Option(help="Sync the top-level default SUP from this URL instead of the file's."),
    ] = None,
    console_port: Annotated[
        int,
        typer.Option(
            help="Port of the web console (with --role console or all; 0: any).",
            callback=port_in_range,
        ),
    ] = DEFAULT_CONSOLE_PORT,
    host: Annotated[
        str,
        typer.Option(
            help="Address the web console listens on (with --role console or all); "
            "0.0.0.0 serves the whole network."
        ),
    ] = DEFAULT_CONSOLE_HOST,
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
    from updatesync.config import HierarchyError, load_hierarchy
    from updatesync.roles import (
        RoleContext,
        RoleError,
        listen_address,
        local_address,
        parse_role,
        start_roles,
    )
    from updatesync.security.signing import SecretError, create_secret, load_secret

    hierarchy_file = _hierarchy_file(hierarchy_file, hierarchy_option)
    if processes:
        _serve_processes(hierarchy_file, role, upstream, console_port, host)
        return
    try:
        hierarchy = load_hierarchy(hierarchy_file)
        console_only = role.strip().lower() == "console"
        names = [] if console_only else parse_role(hierarchy, role)
        everything = role.strip().lower() == "all"
        socks = {}
        if everything:
            hierarchy, socks = _place_everything(hierarchy_file, hierarchy)
            if not hierarchy.secret_path.exists():
                create_secret(hierarchy.secret_path)
        secret = load_secret(hierarchy.secret_path)  # the console signs its provider calls
        if everything or console_only:
            listen = local_address(host, f"--host {host}", "give an address of this host")
        else:
            listen = listen_address(hierarchy, names[0])
        context = RoleContext(hierarchy, secret, upstream_url=upstream, listen_host=listen)
        roles = start_roles(context, names, socks=socks)
        if everything or console_only:
            try:
                from updatesync.roles.console import ConsoleRole

                roles.append(ConsoleRole(context, port=console_port).start())
            except BaseException:
                for started in reversed(roles):
                    started.stop()
                raise
    except (HierarchyError, RoleError, SecretError, ValueError, OSError) as exc:
        error(user_error_text(exc))
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
    hierarchy_file: Path, role: str, upstream: str | None, console_port: int, host: str
) -> None:
    """`serve --processes`: each role its own child process, until Ctrl-C or SIGTERM."""
    from updatesync.config import HierarchyError, load_hierarchy
    from updatesync.roles import RoleError, parse_role
    from updatesync.roles.supervisor import Supervisor
    from updatesync.security.signing import SecretError, create_secret
    from updatesync.site.api.auth import ADMIN_TOKEN_FILE

    try:
        hierarchy = load_hierarchy(hierarchy_file)
        text = role.strip().lower()
        names = [] if text == "console" else parse_role(hierarchy, role)
        if text in ("all", "console"):
            names.append("console")
        if text == "all" and not hierarchy.secret_path.exists():
            create_secret(hierarchy.secret_path)
        if text == "all" and not _all_here(hierarchy_file, hierarchy):
            hierarchy_file = _loopback_copy(hierarchy_file, hierarchy)
    except (HierarchyError, RoleError, SecretError, ValueError, OSError) as exc:
        error(user_error_text(exc))
        raise typer.Exit(1) from exc
    supervisor = Supervisor(
        hierarchy_file,
        names,
        hierarchy.data_dir / "processes",
        upstream=upstream,
        console_port=console_port,
        console_host=host,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        top = hierarchy.top.code
        failed = _supervise(supervisor, stop, hierarchy.data_dir / top / ADMIN_TOKEN_FILE)
        if failed is not None:
            error(str(failed))
    finally:
        supervisor.stop()
    if failed is not None:
        print("updatesync: stopped every role", file=sys.stderr, flush=True)
        raise typer.Exit(1)
    print("updatesync: stopped", file=sys.stderr, flush=True)


def _all_here(hierarchy_file: Path, hierarchy: Hierarchy) -> bool:
    """True when every site and SUP of the file is at an address of this host, False when
    none is; a RoleError naming those elsewhere when only some are."""
    from updatesync.roles import RoleError, elsewhere, parse_role

    away = elsewhere(hierarchy)
    if not away:
        return True
    names = parse_role(hierarchy, "all")
    if len(away) == len(names):
        return False
    here = [name for name in names if name not in away]
    raise RoleError(
        f"{hierarchy_file}: --role all runs every role of the file on this host, but "
        + "; ".join(f"{name} is elsewhere ({why})" for name, why in away.items())
        + f". Run the roles of this host one by one (updatesync serve --hierarchy {hierarchy_file} "
        f"--role {here[0]}, ...) and the others on their own hosts; or give every site and "
        "SUP an address of this host (127.0.0.1 with a port each) to run them all here"
    )


def _place_everything(
    hierarchy_file: Path, hierarchy: Hierarchy
) -> tuple[Hierarchy, dict[str, socket.socket]]:
    """`--role all` in one process: the hierarchy to run and every role's socket, bound and
    listening: at the file's addresses and ports when every role is here, else on loopback
    at free ports as written in the loopback copy (see the module)."""
    from updatesync.config import load_hierarchy
    from updatesync.roles import at_file_addresses, on_loopback

    if _all_here(hierarchy_file, hierarchy):
        return hierarchy, at_file_addresses(hierarchy)
    _, socks = on_loopback(hierarchy)
    try:
        ports = {name: int(sock.getsockname()[1]) for name, sock in socks.items()}
        copy = _loopback_copy(hierarchy_file, hierarchy, ports)
        return load_hierarchy(copy), socks
    except BaseException:
        for sock in socks.values():
            sock.close()
        raise


def _loopback_copy(
    hierarchy_file: Path, hierarchy: Hierarchy, ports: dict[str, int] | None = None
) -> Path:
    """`--role all` on a file written for many hosts (host names, shared ports): a copy of
    the file with every role at 127.0.0.1, at `ports` (by role name) or free ports, the
    same data folder and secret; the command says where it is."""
    from updatesync.roles import elsewhere, loopback_file

    copy = hierarchy.data_dir / LOOPBACK_COPY
    loopback_file(
        hierarchy_file,
        copy,
        settings={"data_dir": hierarchy.data_dir, "secret_file": hierarchy.secret_path},
        ports=ports,
    )
    why = next(iter(elsewhere(hierarchy).values()))
    console.print(
        f"{hierarchy_file}: no site or SUP of it is at an address of this host ({why}); "
        f"every role runs on 127.0.0.1 at a free port, as written in {copy}: give that file "
        f"to the other commands (updatesync sync-now --hierarchy {copy} ...)",
        highlight=False,
        markup=False,
    )
    return copy


def _supervise(
    supervisor: Supervisor, stop: threading.Event, admin_token: Path | None = None
) -> RoleError | None:
    """Start the children, print where each listens, and watch them until `stop` is set;
    the failure that ended the run early, if any."""
    from updatesync.roles import RoleError

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
