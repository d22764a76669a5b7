"""Every role of a hierarchy (site server, update server, console), built one way for all.

`updatesync serve HIERARCHY.toml --role site:PS1` runs one site server; `--role
sup:ps1sys.contoso.com` one SUP's update server; `--role all` every role of the file in one
process, or each in its own (`--processes`, the supervisor). Whatever runs where, a role owns
its own database, data folder and logs, and talks to the others only over HTTP at the
addresses the hierarchy file gives, signing each call with the hierarchy's shared secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from updatesync.config.lazy import lazy_names

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

# Each name is imported from its module when first asked for (config.lazy): a process that
# runs one SUP loads neither the site server's stack nor the console's (a started SUP's
# process was at 102 MiB with them, 91 without: tests/roles/test_role_imports.py), and
# `updateserver serve` none of the roles.
_HOMES = {
    "ConsoleRole": "updatesync.roles.console",
    "Role": "updatesync.roles.context",
    "RoleContext": "updatesync.roles.context",
    "RoleError": "updatesync.roles.context",
    "SiteRole": "updatesync.roles.site",
    "SupRole": "updatesync.roles.sup",
    **dict.fromkeys(
        (
            "at_file_addresses",
            "elsewhere",
            "free_port",
            "listen_address",
            "local_address",
            "loopback_file",
            "on_loopback",
            "parse_role",
            "start_roles",
        ),
        "updatesync.roles.hierarchy",
    ),
}

__getattr__ = lazy_names(globals(), _HOMES)

__all__ = [  # written out, not derived from _HOMES: linters and type checkers read it as is
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
