"""Every role of a hierarchy (site server, update server, console), built one way for all."""

from updatesync.roles.assembly import (
    ConsoleRole,
    RoleContext,
    RoleError,
    SiteRole,
    SupRole,
    on_loopback,
    parse_role,
    start_roles,
)

__all__ = [
    "ConsoleRole",
    "RoleContext",
    "RoleError",
    "SiteRole",
    "SupRole",
    "on_loopback",
    "parse_role",
    "start_roles",
]
