"""Every role of a hierarchy (site server, update server, console), built one way for all.

`updatesync serve HIERARCHY.toml --role site:PS1` runs one site server; `--role
sup:ps1sys.contoso.com` one SUP's update server; `--role all` every role of the file in one
process, or each in its own (`--processes`, the supervisor). Whatever runs where, a role owns
its own database, data folder and logs, and talks to the others only over HTTP at the
addresses the hierarchy file gives, signing each call with the hierarchy's shared secret.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from updatesync.roles.console import ConsoleRole
    from updatesync.roles.context import Role, RoleContext, RoleError
    from updatesync.roles.hierarchy import (
        at_file_addresses,
        elsewhere,
        free_port,
        listen_address,
        local_address,
        loopback_file,
        on_loopback,
        parse_role,
        start_roles,
    )
    from updatesync.roles.site import SiteRole
    from updatesync.roles.sup import SupRole

# Each name is imported from its module when first asked for (PEP 562): a process that runs
# one SUP loads neither the site server's stack nor the console's (an update server's
# process was 40 MiB larger for them), and `updateserver serve` none of the roles.
_WHERE = {
    "ConsoleRole": "console",
    "Role": "context",
    "RoleContext": "context",
    "RoleError": "context",
    "SiteRole": "site",
    "SupRole": "sup",
    **{
        name: "hierarchy"
        for name in (
            "at_file_addresses",
            "elsewhere",
            "free_port",
            "listen_address",
            "local_address",
            "loopback_file",
            "on_loopback",
            "parse_role",
            "start_roles",
        )
    },
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = [
    "ConsoleRole",
    "Role",
    "RoleContext",
    "RoleError",
    "SiteRole",
    "SupRole",
    "at_file_addresses",
    "elsewhere",
    "free_port",
    "listen_address",
    "local_address",
    "loopback_file",
    "on_loopback",
    "parse_role",
    "start_roles",
]
