"""Naming the roles of a hierarchy, where each listens, starting several in one process, and
putting every role of a hierarchy on loopback (one machine runs them all: the demo, `serve
--role all`, the tests and the benchmarks).

Where a role listens (`listen_address`): the `listen` its table of the hierarchy file gives;
else its `address`, or else its FQDN, when that is an IP address; else the address of this
host that name resolves to. A name that does not resolve to an address of this host is an
error saying what to write; every interface (`0.0.0.0`) only when the file says so.

`serve FILE --role all` runs every role on this host. Where: `elsewhere` names the sites and
SUPs whose address (else FQDN) is neither a loopback address nor an address of this host.
None: every role listens where the file puts it (`at_file_addresses`: its listen address
and port), so the other commands reach it through the same file. All of them (a file
written for many hosts, tried on one machine): every role goes to a free loopback port
(`on_loopback`, `loopback_file`). Some only: an error, since half a hierarchy here and
half on its hosts is not a hierarchy (`serve` says which roles belong elsewhere).
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

from updatesync.config import Hierarchy
from updatesync.roles.context import Role, RoleContext, RoleError
from updatesync.roles.serving import bind
from updatesync.security.private_files import private_dir

if TYPE_CHECKING:
    from updatesync.roles.site import SiteRole
    from updatesync.site.sync.outcome import SiteSyncResult

LOOPBACK = "127.0.0.1"
EVERY_INTERFACE = ("0.0.0.0", "::")
QUIET_PORTS = 20000
"""Where the ports of `loopback_file` are looked for: from here up to the first port the
system hands out by itself (to outgoing connections and to servers asking for any port),
so that no other program on the machine is given one of them before its role listens."""


def parse_role(hierarchy: Hierarchy, role: str) -> list[str]:
    """`site:PS1`, `sup:ps1sys.contoso.com` or `all` → the role names it covers. A site code
    or a SUP's FQDN alone (`PS1`, `ps1sys.contoso.com`) names that site or SUP too: the
    instance name of the systemd unit `updatesync@.service`."""
    text = role.strip()
    if text.lower() == "all":
        names = [f"sup:{sup.fqdn}" for site in hierarchy.walk() for sup in site.sups]
        return names + [f"site:{site.code}" for site in hierarchy.walk()]
    kind, colon, value = text.partition(":")
    if not colon and text:
        codes = {site.code.lower(): site.code for site in hierarchy.sites}
        if text.lower() in codes:
            return [f"site:{codes[text.lower()]}"]
        fqdns = {sup.fqdn.lower(): sup.fqdn for site in hierarchy.sites for sup in site.sups}
        if text.lower() in fqdns:
            return [f"sup:{fqdns[text.lower()]}"]
    try:
        if kind.lower() == "site":
            return [f"site:{hierarchy.site(value).code}"]
        if kind.lower() == "sup":
            return [f"sup:{hierarchy.find_sup(value)[1].fqdn}"]
    except KeyError as exc:
        raise RoleError(f"role {role!r}: {exc.args[0]}") from None
    raise RoleError(
        f"role {role!r} is not one of: all, site:<CODE> (e.g. site:PS1), sup:<FQDN> "
        "(e.g. sup:ps1sys.contoso.com), or the code of a site or the FQDN of a SUP of "
        f"{hierarchy.source} alone"
    )


def listen_address(hierarchy: Hierarchy, name: str) -> str:
    """The address the role `name` (`site:CODE`, `sup:FQDN`) listens on (see the module)."""
    kind, _, value = name.partition(":")
    if kind == "site":
        site = hierarchy.site(value)
        listen, host, table = site.listen, site.address or site.fqdn, f"site {site.code}"
    else:
        _, sup = hierarchy.find_sup(value)
        listen, host, table = sup.listen, sup.address or sup.fqdn, f"SUP {sup.fqdn}"
    hint = (
        f"write `address` (or `listen`) of {table} in {hierarchy.source} as an address of "
        'this host, or listen = "0.0.0.0" to listen on every interface'
    )
    return local_address(listen or host, f"{name}: cannot tell where to listen", hint)


def local_address(host: str, what: str, hint: str) -> str:
    """`host` when it is an IP address; else the first address of this host it resolves
    to; else a RoleError: `what`, why, then `hint`."""
    try:
        ipaddress.ip_address(host.partition("%")[0])
        return host
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise RoleError(f"{what}: {host} does not resolve ({reason}); {hint}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    for address in addresses:
        if _of_this_host(address):
            return address
    raise RoleError(
        f"{what}: {host} resolves to {', '.join(addresses)}, not an address of this host; {hint}"
    )


def _of_this_host(address: str) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


def elsewhere(hierarchy: Hierarchy) -> dict[str, str]:
    """The sites and SUPs that another host answers for, by role name (`site:PS1`,
    `sup:FQDN`): those whose `address` (else FQDN) is neither a loopback address nor an
    address of this host, each with what that address is (`ps1site.contoso.com does not
    resolve`, `10.0.0.5 is not an address of this host`)."""
    seen: dict[str, str | None] = {}
    away: dict[str, str] = {}
    for site in hierarchy.sites:
        hosts = [(f"sup:{sup.fqdn}", sup.address or sup.fqdn) for sup in site.sups]
        for name, host in [*hosts, (f"site:{site.code}", site.address or site.fqdn)]:
            if host not in seen:
                seen[host] = _not_here(host)
            if seen[host] is not None:
                away[name] = str(seen[host])
    return away


def _not_here(host: str) -> str | None:
    """None when `host` is a loopback address or an address of this host, or a name that
    resolves to one; else what it is, for a message."""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        try:
            found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return f"{host} does not resolve here"
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if any(_here(ipaddress.ip_address(a.partition("%")[0])) for a in addresses):
            return None
        return f"{host} is {', '.join(addresses)}, not an address of this host"
    return None if _here(address) else f"{host} is not an address of this host"


def _here(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_loopback or _of_this_host(str(address))


def at_file_addresses(hierarchy: Hierarchy) -> dict[str, socket.socket]:
    """A socket bound and listening for every site and SUP where the hierarchy file puts it
    (`listen_address`, its `port`; a SUP's `http_port` too, with TLS), by role name as
    `on_loopback` gives them; or, with none left open, a RoleError naming the role that
    cannot listen, and the other role of the file at the same port when there is one."""
    socks: dict[str, socket.socket] = {}
    taken: dict[tuple[str, int], str] = {}
    try:
        for site in hierarchy.sites:
            ports = [(f"sup:{s.fqdn}", s.port, f"SUP {s.fqdn}", "port") for s in site.sups]
            ports += [
                (f"http:sup:{s.fqdn}", s.http_port, f"SUP {s.fqdn}", "http_port")
                for s in site.sups
                if s.http_port is not None and hierarchy.tls is not None
            ]
            ports.append((f"site:{site.code}", site.port, f"site {site.code}", "port"))
            for key, port, table, what in ports:
                name = key.removeprefix("http:")
                host = listen_address(hierarchy, name)
                for (other_host, other_port), other in taken.items():
                    wild = host in EVERY_INTERFACE or other_host in EVERY_INTERFACE
                    if port == other_port and (host == other_host or wild):
                        raise RoleError(
                            f"{name}: {host}:{port} is also where {other} listens in "
                            f"{hierarchy.source}; give every site and SUP of this host a "
                            f"`{what}` of its own ({table})"
                        )
                try:
                    socks[key] = bind(host, port)
                except OSError as exc:
                    reason = getattr(exc.__cause__, "strerror", None) or str(exc)
                    raise RoleError(
                        f"{name}: cannot listen on {host}:{port} ({reason}); stop what uses "
                        f"it, or give {table} another `{what}` in {hierarchy.source}"
                    ) from None
                taken[(host, port)] = name
    except BaseException:
        for sock in socks.values():
            sock.close()
        raise
    return socks


def start_roles(
    context: RoleContext,
    names: list[str],
    *,
    socks: dict[str, socket.socket] | None = None,
    on_sync_done: Callable[[SiteRole, SiteSyncResult], None] | None = None,
) -> list[Role]:
    """Start the named roles in this process, SUPs first (a site's sync needs its SUPs);
    stop those started if one fails."""
    started: list[Role] = []
    given = socks or {}
    try:
        for name in names:
            kind, _, value = name.partition(":")
            role: Role
            # Each role's module imported when one is built: a SUP's process loads no site
            # server (tests/roles/test_role_imports.py).
            if kind == "sup":
                from updatesync.roles.sup import SupRole

                role = SupRole(
                    context, value, sock=given.get(name), http_sock=given.get(f"http:{name}")
                ).start()
            else:
                from updatesync.roles.site import SiteRole

                role = SiteRole(
                    context, value, sock=given.get(name), on_sync_done=on_sync_done
                ).start()
            started.append(role)
    except BaseException:
        for role in reversed(started):
            role.stop()
        raise
    return started


def on_loopback(
    hierarchy: Hierarchy, host: str = LOOPBACK
) -> tuple[Hierarchy, dict[str, socket.socket]]:
    """The hierarchy with every site and SUP at `host` on a free port, and those ports'
    sockets, bound and listening, by role name: for running every role in one process. TLS
    stays as the file sets it (each certificate must then be valid for `host`, such as one
    issued with `--ip 127.0.0.1`); a SUP's plain-HTTP MS-WSUSSS port gets a free port too,
    its socket under `http:sup:<fqdn>`."""
    socks: dict[str, socket.socket] = {}

    def reserve(name: str) -> int:
        socks[name] = bind(host, 0)
        return int(socks[name].getsockname()[1])

    sites = []
    for site in hierarchy.sites:
        sups = tuple(
            replace(
                sup,
                address=host,
                listen=None,
                port=reserve(f"sup:{sup.fqdn}"),
                http_port=None if sup.http_port is None else reserve(f"http:sup:{sup.fqdn}"),
            )
            for sup in site.sups
        )
        port = reserve(f"site:{site.code}")
        sites.append(replace(site, sups=sups, address=host, listen=None, port=port))
    return replace(hierarchy, sites=tuple(sites)), socks


def loopback_file(
    source: Path,
    dest: Path,
    *,
    settings: Mapping[str, object] | None = None,
    ports: Mapping[str, int] | None = None,
    host: str = LOOPBACK,
) -> dict[str, int]:
    """Write to `dest` a copy of the hierarchy file `source` with every site and SUP at
    `host`: for running each role as its own process on one machine (`serve FILE --role all
    --processes`). TLS stays as the file sets it, its paths made absolute (each certificate
    must then be valid for `host`, such as one issued with `--ip 127.0.0.1`).

    `ports`: the port of a role, by role name (`site:CS1`, `sup:cs1site.contoso.com`, and
    `http:sup:<fqdn>` for a SUP's plain-HTTP port); every other role gets a free port.
    `settings`: keys of `[hierarchy]` to set, a value replacing the file's (a table such as
    `logs` as a whole), None removing the key. Returns the port of every role, by role
    name."""
    with source.open("rb") as stream:
        document = tomllib.load(stream)
    head = document.setdefault("hierarchy", {})
    _absolute_tls_paths(document, source.absolute().parent)
    for key, value in (settings or {}).items():
        if value is None:
            head.pop(key, None)
        else:
            head[key] = value.as_posix() if isinstance(value, Path) else value
    given = dict(ports or {})
    reserved: list[socket.socket] = []
    chosen: dict[str, int] = {}

    def port_of(name: str) -> int:
        if name not in given:
            sock = reserve_port(host)
            reserved.append(sock)  # held until every port is chosen: no port twice
            given[name] = int(sock.getsockname()[1])
        chosen[name] = given[name]
        return given[name]

    try:
        for site in document.get("sites", []):
            site.pop("listen", None)
            for sup in site.get("sups", []):
                if "tls" not in head:
                    sup.pop("https", None)
                sup.pop("listen", None)
                sup.update(address=host, port=port_of(f"sup:{str(sup['fqdn']).lower()}"))
                if "http_port" in sup:
                    sup["http_port"] = port_of(f"http:sup:{str(sup['fqdn']).lower()}")
            site.update(address=host, port=port_of(f"site:{str(site['code']).upper()}"))
    finally:
        for sock in reserved:
            sock.close()
    private_dir(dest.parent)
    dest.write_text(_toml(document), encoding="utf-8")
    return chosen


def _absolute_tls_paths(document: dict[str, object], base: Path) -> None:
    """The TLS paths of a hierarchy document (`[hierarchy.tls]`, each site's and SUP's `cert`
    and `key`) made absolute against `base`, the source file's folder, so that a copy of the
    file written elsewhere names the same files."""

    def fix(table: object, keys: tuple[str, ...]) -> None:
        if isinstance(table, dict):
            for key in keys:
                if isinstance(table.get(key), str):
                    table[key] = (base / Path(table[key]).expanduser()).as_posix()

    head = document.get("hierarchy")
    fix(head.get("tls") if isinstance(head, dict) else None, ("ca", "dir"))
    sites = document.get("sites")
    for site in sites if isinstance(sites, list) else []:
        fix(site, ("cert", "key"))
        for sup in site.get("sups", []) if isinstance(site, dict) else []:
            fix(sup, ("cert", "key"))


def reserve_port(host: str = LOOPBACK) -> socket.socket:
    """A socket bound and listening at a free port of `host` below the system's ephemeral
    range when it can (see `QUIET_PORTS`), else at any free port; close it to free the
    port for the role that will listen there."""
    first_ephemeral = _first_ephemeral_port()
    if first_ephemeral > QUIET_PORTS + 100:
        for _ in range(50):
            try:
                return bind(host, random.randrange(QUIET_PORTS, first_ephemeral))
            except OSError:
                continue  # in use: another one
    return bind(host, 0)


def free_port(host: str = LOOPBACK) -> int:
    """A free port of `host` (see `reserve_port`), for a server started soon after."""
    with reserve_port(host) as sock:
        return int(sock.getsockname()[1])


def _first_ephemeral_port() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 0  # unknown: let the system choose


# -- writing TOML (the subset a hierarchy file uses) ----------------------------------------


def _toml(document: Mapping[str, object]) -> str:
    lines: list[str] = []
    _table(lines, [], document, array=False)
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_tables(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(lines: list[str], path: list[str], table: Mapping[str, object], array: bool) -> None:
    if path:
        name = ".".join(_key(part) for part in path)
        lines += ["", f"[[{name}]]" if array else f"[{name}]"]
    for key, value in table.items():
        if not isinstance(value, dict) and not _is_tables(value):
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            _table(lines, [*path, key], value, array=False)
        elif _is_tables(value):
            for item in value:  # type: ignore[attr-defined]
                _table(lines, [*path, key], item, array=True)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) to a hierarchy file")
