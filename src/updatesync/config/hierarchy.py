"""A loaded hierarchy: which sites exist, how they nest, which software update points (SUPs)
each one has, and what the top-level site syncs from, when and with which criteria.

These frozen dataclasses are what the rest of updatesync uses; `load_hierarchy` builds them
from the hierarchy file (its keys are described in `updatesync.config.model` and in
`docs/configuration.md`). Site codes are upper-cased, FQDNs, GUIDs and language codes
lower-cased, and all look-ups ignore case.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Literal, TypeAlias

from updatesync.config.defaults import (
    DEFAULT_HTTP_PORT,
    DEFAULT_OVERDUE_AFTER,
    DEFAULT_REPLICATION_TIMEOUT,
    DEFAULT_RETRY_INTERVAL,
    DEFAULT_SECRET_FILE,
    DEFAULT_SITE_PORT,
    DEFAULT_UPDATES_CLEANUP_AGE,
)
from updatesync.config.schedule import DEFAULT_SCHEDULE, Schedule
from updatesync.logs.rollover import DEFAULT_MAX_BYTES

__all__ = [
    "AlertSettings",
    "Criteria",
    "Hierarchy",
    "LogSettings",
    "Site",
    "SiteType",
    "Sup",
    "TlsFiles",
    "TlsSettings",
    "Upstream",
    "UpstreamKind",
    "WebhookSettings",
]

SiteType: TypeAlias = Literal["cas", "primary", "secondary"]
UpstreamKind: TypeAlias = Literal["microsoft-update", "wsus", "none"]


@dataclass(frozen=True, slots=True)
class LogSettings:
    """How the components of every site write their logs."""

    max_bytes: int = DEFAULT_MAX_BYTES
    tz_bias: int | Literal["local"] = "local"
    """Minutes, UTC = local + bias; `"local"`: the machine's own time zone."""


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """`[[hierarchy.alerts.webhooks]]`: a receiver of alert events and the file of the secret
    its events are signed with (None only when the file says `unsigned = true`)."""

    url: str
    secret_file: Path | None = None
    unsigned: bool = False


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """`[hierarchy.alerts]`: when a site's sync is overdue, and where alerts are sent."""

    overdue_after: timedelta = DEFAULT_OVERDUE_AFTER
    """A site whose last successful sync is older than this gets the `sync_overdue` alert."""
    webhooks: tuple[WebhookSettings, ...] = ()
    """Where each raise and cancel of an alert is POSTed to (JSON, signed)."""


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """`[hierarchy.security]`: which surfaces of a site server need an API token beyond the
    SMS Provider (which always does)."""

    metrics_need_token: bool = False
    """`/metrics` of a site server or SUP answers only a request with a token of any
    security role."""
    policy_need_token: bool = False
    """The client policy (`/policy/v1/...`) answers only a request with a token."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """What the top-level site's default SUP syncs from; `url` is None for `none`
    (disconnected: metadata arrives by importing a WSUS export)."""

    kind: UpstreamKind
    url: str | None


@dataclass(frozen=True, slots=True)
class Criteria:
    """What to sync, set at the top-level site and inherited below."""

    products: tuple[str, ...] = ()
    classifications: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    updates_cleanup_age: timedelta = DEFAULT_UPDATES_CLEANUP_AGE
    """How long an expired update's CI is kept before the top-level site deletes it."""


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """`[hierarchy.tls]`: the hierarchy's CA bundle, and the folder holding each host's
    certificate and key (`<dir>/<fqdn>.pem`, `<dir>/<fqdn>.key`) unless a site or SUP names
    its own."""

    ca: Path
    dir: Path


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The certificate and key one role serves HTTPS with, and the keys of the hierarchy
    file that named them (for an error saying what to change)."""

    cert: Path
    key: Path
    where: str
    folder: Path | None = None
    """The `[hierarchy.tls] dir` they are expected in, when no site or SUP key names them."""


@dataclass(frozen=True, slots=True)
class Sup:
    """A software update point: one update server attached to a site."""

    fqdn: str
    port: int = DEFAULT_HTTP_PORT
    https: bool = False
    internet_facing: bool = False
    address: str | None = None
    """The host to connect to when it is not the FQDN (an IP address, 127.0.0.1)."""
    cert: Path | None = None
    """Its own certificate, instead of `<tls dir>/<fqdn>.pem` (TLS on only)."""
    key: Path | None = None
    http_port: int | None = None
    """A second, plain-HTTP port serving only MS-WSUSSS (TLS on only); None: none."""
    listen: str | None = None
    """The address the update server listens on, when the file says (`0.0.0.0`: every
    interface)."""
    database: str | None = None
    """Its store's SQLAlchemy URL, without password; None: SQLite in its data folder."""

    @property
    def url(self) -> str:
        """`http(s)://host:port`, where other update servers and the site reach this one."""
        return f"{'https' if self.https else 'http'}://{self.address or self.fqdn}:{self.port}"


@dataclass(frozen=True, slots=True)
class Site:
    """A site; `sups` in install order, the first being the default SUP."""

    code: str
    fqdn: str
    type: SiteType
    parent: str | None = None
    sups: tuple[Sup, ...] = ()
    port: int = DEFAULT_SITE_PORT
    address: str | None = None
    """The host to connect to when it is not the FQDN."""
    https: bool = False
    """The site server serves HTTPS (TLS on)."""
    cert: Path | None = None
    """Its own certificate, instead of `<tls dir>/<fqdn>.pem` (TLS on only)."""
    key: Path | None = None
    listen: str | None = None
    """The address the site server listens on, when the file says (`0.0.0.0`: every
    interface)."""
    database: str | None = None
    """Its site database's SQLAlchemy URL, without password; None: SQLite in its data
    folder."""

    @property
    def url(self) -> str:
        """`http(s)://host:port` of the site server (replication, provider, client policy)."""
        scheme = "https" if self.https else "http"
        return f"{scheme}://{self.address or self.fqdn}:{self.port}"

    @property
    def default_sup(self) -> Sup | None:
        return self.sups[0] if self.sups else None

    @property
    def replicas(self) -> tuple[Sup, ...]:
        return self.sups[1:]


@dataclass(frozen=True)
class Hierarchy:
    """A validated hierarchy. Build one with `load_hierarchy` or `parse_hierarchy`; the
    constructor itself does not validate."""

    name: str
    data_dir: Path
    sites: tuple[Site, ...]
    upstream: Upstream
    criteria: Criteria = Criteria()
    schedule: Schedule = DEFAULT_SCHEDULE
    retry_interval: timedelta = DEFAULT_RETRY_INTERVAL
    logs: LogSettings = LogSettings()
    source: str = "<string>"
    replication_timeout: timedelta = DEFAULT_REPLICATION_TIMEOUT
    secret_file: Path | None = None
    """The shared secret of site-to-site calls; None: `<data_dir>/hierarchy.secret`."""
    alerts: AlertSettings = AlertSettings()
    """`[hierarchy.alerts]`: the overdue limit and the webhooks."""
    tls: TlsSettings | None = None
    """`[hierarchy.tls]`: every site, SUP and the console serve HTTPS only; None: plain HTTP."""
    security: SecuritySettings = SecuritySettings()
    """`[hierarchy.security]`: which open surfaces need a token."""
    _by_code: dict[str, Site] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_code", {site.code: site for site in self.sites})

    @property
    def top(self) -> Site:
        """The top-level site: the CAS, or a standalone primary."""
        for site in self.sites:
            if site.parent is None:
                return site
        raise LookupError(f"{self.source}: the hierarchy has no top-level site")

    def site(self, code: str) -> Site:
        """The site with this code (any case); KeyError naming the known codes otherwise."""
        found = self._by_code.get(code.strip().upper())
        if found is None:
            known = ", ".join(self._by_code) or "none"
            raise KeyError(f"no site {code!r} in hierarchy {self.name!r} (sites: {known})")
        return found

    def children(self, code: str) -> tuple[Site, ...]:
        """The sites whose parent is `code`, in file order."""
        parent = self.site(code).code
        return tuple(site for site in self.sites if site.parent == parent)

    def parent(self, code: str) -> Site | None:
        """The parent site, None for the top-level site."""
        site = self.site(code)
        return None if site.parent is None else self.site(site.parent)

    def default_sup(self, code: str) -> Sup | None:
        """The site's first-installed SUP, None when it has none."""
        return self.site(code).default_sup

    def replicas(self, code: str) -> tuple[Sup, ...]:
        """The site's other SUPs, replicas of its default SUP, in install order."""
        return self.site(code).replicas

    def walk(self) -> Iterator[Site]:
        """Every site top-down: the top-level site, then its children, then theirs (the order
        in which a sync travels through the hierarchy)."""
        queue = deque([self.top])
        while queue:
            site = queue.popleft()
            yield site
            queue.extend(self.children(site.code))

    def find_sup(self, fqdn: str) -> tuple[Site, Sup]:
        """The site holding the SUP with this FQDN (any case), and that SUP."""
        wanted = fqdn.strip().lower()
        for site in self.sites:
            for sup in site.sups:
                if sup.fqdn == wanted:
                    return site, sup
        known = ", ".join(sup.fqdn for site in self.sites for sup in site.sups) or "none"
        raise KeyError(
            f"no software update point {fqdn!r} in hierarchy {self.name!r} (SUPs: {known})"
        )

    def sup_upstream(self, site: str | Site, sup: str | Sup) -> str | None:
        """The URL of the update server that `sup` (a SUP of `site`) syncs from: the upstream
        for the top-level default SUP (None when disconnected), the site's default SUP for a
        replica, the parent site's default SUP for a child site's default SUP."""
        at = self.site(site.code if isinstance(site, Site) else site)
        fqdn = (sup.fqdn if isinstance(sup, Sup) else sup).strip().lower()
        position = next((i for i, s in enumerate(at.sups) if s.fqdn == fqdn), None)
        if position is None:
            have = ", ".join(s.fqdn for s in at.sups) or "none"
            raise KeyError(f"site {at.code} has no software update point {fqdn!r} (SUPs: {have})")
        if position > 0:
            return at.sups[0].url
        parent = self.parent(at.code)
        if parent is None:
            return self.upstream.url
        upstream_sup = parent.default_sup
        if upstream_sup is None:
            raise LookupError(
                f"site {at.code}'s default SUP syncs from its parent {parent.code}'s default "
                f"SUP, but {parent.code} has none"
            )
        return upstream_sup.url

    @property
    def secret_path(self) -> Path:
        """The file holding the hierarchy's shared secret."""
        return (
            self.secret_file
            if self.secret_file is not None
            else self.data_dir / DEFAULT_SECRET_FILE
        )

    def with_tls(self, tls: TlsSettings) -> Hierarchy:
        """This hierarchy with TLS on, as a file with `[hierarchy.tls]` gives it: every site
        and SUP serving HTTPS (a SUP keeps its port)."""
        sites = tuple(
            replace(site, https=True, sups=tuple(replace(sup, https=True) for sup in site.sups))
            for site in self.sites
        )
        return replace(self, sites=sites, tls=tls)

    def site_tls(self, code: str) -> TlsFiles | None:
        """The certificate and key the site server serves HTTPS with; None without TLS."""
        site = self.site(code)
        return self._tls_files(site.fqdn, site.cert, site.key, f"[[sites]] code = {site.code!r}")

    def sup_tls(self, fqdn: str) -> TlsFiles | None:
        """The certificate and key the SUP's update server serves HTTPS with; None without
        TLS."""
        _, sup = self.find_sup(fqdn)
        return self._tls_files(sup.fqdn, sup.cert, sup.key, f"[[sites.sups]] fqdn = {sup.fqdn!r}")

    def console_tls(self) -> TlsFiles | None:
        """The certificate and key the web console serves HTTPS with: `console.pem` and
        `console.key` in `[hierarchy.tls] dir`; None without TLS."""
        if self.tls is None:
            return None
        return TlsFiles(
            self.tls.dir / "console.pem",
            self.tls.dir / "console.key",
            f"console.pem and console.key in [hierarchy.tls] dir, {self.tls.dir}",
            folder=self.tls.dir,
        )

    def _tls_files(
        self, fqdn: str, cert: Path | None, key: Path | None, table: str
    ) -> TlsFiles | None:
        if self.tls is None:
            return None
        named = [k for k, v in (("cert", cert), ("key", key)) if v is not None]
        where = (
            f"{' and '.join(named)} of {table}"
            if named
            else f"<fqdn>.pem and <fqdn>.key in [hierarchy.tls] dir, {self.tls.dir}"
        )
        return TlsFiles(
            cert or self.tls.dir / f"{fqdn}.pem",
            key or self.tls.dir / f"{fqdn}.key",
            where,
            None if named else self.tls.dir,
        )

    def is_replica(self, site: str | Site, sup: str | Sup) -> bool:
        """True when `sup` syncs as a WSUS replica: a site's SUP after the first, and a
        secondary site's SUP (a replica of its parent primary's default SUP)."""
        at = self.site(site.code if isinstance(site, Site) else site)
        fqdn = (sup.fqdn if isinstance(sup, Sup) else sup).strip().lower()
        return at.type == "secondary" or any(s.fqdn == fqdn for s in at.sups[1:])

    def log_dir(self, site_code: str) -> Path:
        """`<data_dir>/<SITE>/logs`: the logs of the site's components (WSyncMgr.log, ...)."""
        return self.data_dir / self.site(site_code).code / "logs"

    def update_server_dir(self, fqdn: str) -> Path:
        """`<data_dir>/<fqdn>`: the update server of the SUP with this FQDN."""
        _, sup = self.find_sup(fqdn)
        return self.data_dir / sup.fqdn
