"""`updatesync service unit`: the systemd unit template that runs one role per service.

The template ships in the package (`updatesync/deploy/updatesync@.service`); its instance
name is the role (`updatesync@CS1`, `updatesync@ps1site.contoso.com.service`,
`updatesync@console`), which `serve FILE --role %i` takes as it is (`roles.parse_role`). The
command prints the template with ExecStart naming the `updatesync` of the installation it
runs from (the script beside this Python: a venv's or pipx's `bin`), and with `--hierarchy
FILE` that file (made absolute) and its data folder as the one folder the service may write.
An installation under /home or /root is said to be out of the service's reach
(`ProtectHome=yes`).
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from updatesync.cli.output import error, user_error_text

UNIT_NAME = "updatesync@.service"
"""The file name of the template, in the package's `deploy` folder and in /etc/systemd/system."""
TEMPLATE_COMMAND = "/opt/updatesync/bin/updatesync"
"""The `updatesync` the shipped template names (an installation in a venv at /opt/updatesync)."""
TEMPLATE_HIERARCHY = "/etc/updatesync/hierarchy.toml"
"""The hierarchy file the shipped template names."""
TEMPLATE_DATA = "/var/lib/updatesync"
"""The data folder the shipped template lets the service write (its StateDirectory)."""
HIDDEN_FROM_SERVICES = (Path("/home"), Path("/root"), Path("/run/user"))
"""Where a service with `ProtectHome=yes` sees nothing."""

service_app = typer.Typer(help="Run the roles of a hierarchy as system services (systemd).")


def unit_template() -> str:
    """The systemd unit template as shipped in the package."""
    return (resources.files("updatesync") / "deploy" / UNIT_NAME).read_text(encoding="utf-8")


def installed_command() -> str:
    """How a service runs this installation's `updatesync`: the script beside this Python,
    else this Python with `-m updatesync`."""
    python = Path(sys.executable).absolute()
    script = python.parent / "updatesync"
    if script.is_file() and os.access(script, os.X_OK):
        return str(script)
    return f"{python} -m updatesync"


def unit_text(
    command: str = TEMPLATE_COMMAND,
    hierarchy: Path | None = None,
    data_dir: Path | None = None,
) -> str:
    """The template with ExecStart running `command`, for the hierarchy file `hierarchy`,
    and `data_dir` as the folder the service may write (each the template's when None)."""
    text = unit_template().replace(f"ExecStart={TEMPLATE_COMMAND} ", f"ExecStart={command} ")
    if hierarchy is not None:
        text = text.replace(
            f" serve --hierarchy {TEMPLATE_HIERARCHY} ", f" serve --hierarchy {hierarchy} "
        )
    if data_dir is not None:
        text = text.replace(f"ReadWritePaths={TEMPLATE_DATA}\n", f"ReadWritePaths={data_dir}\n")
    return text


def _hidden(path: Path) -> Path | None:
    """The folder hiding `path` from a service with ProtectHome=yes, if any."""
    return next((top for top in HIDDEN_FROM_SERVICES if path.is_relative_to(top)), None)


@service_app.command("unit")
def unit(
    hierarchy: Annotated[
        Path | None,
        typer.Option(
            help="The hierarchy file the services run (default "
            f"{TEMPLATE_HIERARCHY}); its data_dir becomes the folder they may write."
        ),
    ] = None,
) -> None:
    """Print the systemd unit template `updatesync@.service`, running this installation's
    updatesync; save it as /etc/systemd/system/updatesync@.service, then `systemctl enable
    --now updatesync@CS1` (a site), `updatesync@ps1site.contoso.com.service` (a SUP)."""
    from updatesync.config import HierarchyError, load_hierarchy

    command = installed_command()
    data_dir = None
    if hierarchy is not None:
        hierarchy = hierarchy.absolute()
        try:
            data_dir = load_hierarchy(hierarchy).data_dir.absolute()
        except HierarchyError as exc:
            error(user_error_text(exc))
            raise typer.Exit(1) from exc
    for what, path in (
        ("this updatesync", Path(command.split(" ")[0])),
        ("the hierarchy file", hierarchy),
        ("the data folder", data_dir),
    ):
        top = _hidden(path) if path is not None else None
        if top is not None:
            print(
                f"warning: {what} ({path}) is under {top}, which the service cannot see "
                "(ProtectHome=yes): install updatesync in a venv at /opt/updatesync, keep the "
                f"hierarchy file in /etc/updatesync and data_dir at {TEMPLATE_DATA}",
                file=sys.stderr,
            )
    sys.stdout.write(unit_text(command, hierarchy, data_dir))
