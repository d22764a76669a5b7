"""`updatesync pki`: the hierarchy's certificate authority and its server certificates.

`pki init DIR` creates the CA in DIR (0700): `ca.pem`, the bundle named by `[hierarchy.tls]
ca` and copied to every host, and `ca.key` (0600). `pki issue DIR --host FQDN [--ip ADDR]`
issues a server certificate for one host: `DIR/<FQDN>.pem` and `DIR/<FQDN>.key` (0600), the
names `[hierarchy.tls] dir` looks for. Neither overwrites a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from updatesync.cli.output import console, error, os_error_text

pki_app = typer.Typer(help="The hierarchy's certificate authority and server certificates.")


def _fail(message: str) -> typer.Exit:
    error(message)
    return typer.Exit(1)


@pki_app.command("init")
def pki_init(
    folder: Annotated[Path, typer.Argument(help="Where to create the CA (made 0700).")],
) -> None:
    """Create the hierarchy's certificate authority in FOLDER."""
    from updatesync.security.pki import CA_KEY, create_ca

    try:
        cert = create_ca(folder)
    except (FileExistsError, OSError) as exc:
        raise _fail(str(exc) if isinstance(exc, FileExistsError) else os_error_text(exc)) from None
    console.print(
        f"created the hierarchy's CA in {folder}: {cert} (name it in the hierarchy file as "
        f"[hierarchy.tls] ca, and copy it to every host) and {folder / CA_KEY} (its key, "
        f"readable by you only: keep it here). Next: updatesync pki issue {folder} --host "
        "FQDN for each site server and SUP",
        soft_wrap=True,
    )


@pki_app.command("issue")
def pki_issue(
    folder: Annotated[Path, typer.Argument(help="The CA's folder (from `pki init`).")],
    host: Annotated[str, typer.Option("--host", help="The server's FQDN.")],
    ip: Annotated[
        list[str] | None,
        typer.Option("--ip", help="An IP address the server is also reached at (repeat for more)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="Name the files <NAME>.pem and <NAME>.key instead of the host's: `console` "
            "for the web console's certificate."
        ),
    ] = None,
) -> None:
    """Issue a server certificate for HOST, signed by the CA in FOLDER."""
    from updatesync.security.pki import CA_CERT, TlsError, issue_certificate

    try:
        cert, key = issue_certificate(folder, host, ip or (), file_name=name)
    except (FileExistsError, TlsError) as exc:
        raise _fail(str(exc)) from None
    except ValueError as exc:
        raise _fail(f"{exc}; --host takes a host name, --ip an IPv4 or IPv6 address") from None
    except OSError as exc:
        raise _fail(os_error_text(exc)) from None
    names = ", ".join([host.strip().lower(), *(ip or ())])
    console.print(
        f"issued a certificate for {names}: {cert} and its key {key} (readable by you only), "
        f"signed by {folder / CA_CERT}; copy both to the host, where [hierarchy.tls] dir (or "
        "the role's cert and key) names them",
        soft_wrap=True,
    )
