"""The hierarchy file as a typed model: one pydantic model per TOML table, every key with its
type, default and meaning (the source of `docs/configuration.md`), unknown keys refused.

Layout::

    [hierarchy]            name, data_dir, retry_interval, replication_timeout, secret_file,
                           schedule, schedule_start
    [hierarchy.logs]       max_size, tz_bias
    [hierarchy.alerts]     overdue_after
    [[hierarchy.alerts.webhooks]]  url, secret_file, unsigned
    [hierarchy.upstream]   kind, url
    [hierarchy.criteria]   products, classifications, languages
    [hierarchy.tls]        ca, dir   (present: every site, SUP and console serves HTTPS only)
    [[sites]]              code, fqdn, type, parent, address, listen, port, cert, key
    [[sites.sups]]         fqdn, address, listen, port, https, internet_facing, cert, key,
                           http_port   (in install order)

`schedule`, `schedule_start`, `upstream` and `criteria` belong to the top-level site. They are
written under `[hierarchy]` or in the top-level site's own `[[sites]]` table (not both); every
other site inherits them and may not set them. `HierarchyFile` checks each key with
`updatesync.config.values` and the rules spanning tables with `updatesync.config.rules`, and
reports every problem together; `HierarchyFile.hierarchy_of` turns a valid file into the
`Hierarchy` the rest of updatesync uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    ModelWrapValidatorHandler,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)

from updatesync.config import rules, values
from updatesync.config.defaults import (
    DEFAULT_DATA_DIR,
    DEFAULT_HTTP_PORT,
    DEFAULT_HTTPS_PORT,
    DEFAULT_REPLICATION_TIMEOUT,
    DEFAULT_RETRY_INTERVAL,
    DEFAULT_SECRET_FILE,
    DEFAULT_SITE_PORT,
    DEFAULT_UPDATES_CLEANUP_AGE,
    MAX_TZ_BIAS,
    MICROSOFT_UPDATE_URL,
    MIN_TZ_BIAS,
)
from updatesync.config.hierarchy import (
    AlertSettings,
    Criteria,
    Hierarchy,
    LogSettings,
    SecuritySettings,
    Site,
    SiteType,
    Sup,
    TlsSettings,
    Upstream,
    UpstreamKind,
    WebhookSettings,
)
from updatesync.config.schedule import (
    DEFAULT_SCHEDULE,
    IntervalSchedule,
    default_overdue_after,
)
from updatesync.config.table import (
    DatabaseUrl,
    Days,
    Flag,
    Guids,
    Host,
    Interval,
    Languages,
    Minutes,
    ScheduleText,
    SiteCode,
    StartTime,
    Table,
    Text,
    WebhookUrl,
    again,
    array_of_tables,
    fail_at,
    key,
    table_in,
)
from updatesync.logs.rollover import DEFAULT_MAX_BYTES

__all__ = [
    "AlertsTable",
    "CriteriaTable",
    "HeadTable",
    "HierarchyFile",
    "LogsTable",
    "SecurityTable",
    "SiteTable",
    "SupTable",
    "Table",
    "TlsTable",
    "UpstreamTable",
    "WebhookTable",
    "table_in",
]

# --------------------------------------------------------------------------- tables


class LogsTable(Table):
    """`[hierarchy.logs]`: how the components of every site write their logs."""

    max_size: Annotated[int, PlainValidator(values.size)] = key(
        "Size at which a log is rolled over to its `.lo_` file: bytes, or a number with KB, "
        'MB or GB ("5MB"); the units are binary (1 MB = 1,048,576 bytes), as Windows counts.',
        toml="integer or string",
        default=DEFAULT_MAX_BYTES,
        shown='`"5MB"`',
    )
    tz_bias: Annotated[int | Literal["local"], PlainValidator(values.tz_bias)] = key(
        "Time-zone bias written in CMTrace lines: minutes with UTC = local time + bias "
        f'(Windows\' convention), from {MIN_TZ_BIAS} to {MAX_TZ_BIAS}, or `"local"` for the '
        "machine's own zone.",
        toml="integer or string",
        default="local",
    )


class WebhookTable(Table):
    """`[[hierarchy.alerts.webhooks]]`: a receiver of alert events, and the secret they are
    signed with (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`)."""

    url: WebhookUrl = key(
        "The receiver: an http or https URL each raise and cancel of an alert is POSTed to, "
        "as JSON.",
        toml="string",
    )
    secret_file: Text | None = key(
        "The file holding the secret every event is signed with, as the Standard Webhooks "
        "specification writes it (`whsec_` and base64); `updatesync secret webhook FILE` writes "
        "one (mode 0600; a file group or others may read is refused). Give the receiver the "
        "same text. Relative to the hierarchy file's folder.",
        toml="string",
        default=None,
        shown="none: required unless `unsigned = true`",
    )
    unsigned: Flag = key(
        "`true` sends this webhook's events without a signature, for a receiver that cannot "
        "check one (whoever knows its URL can then send it alerts). Refused with `secret_file`.",
        toml="boolean",
        default=False,
    )

    def check_rules(self) -> None:
        """A secret, or an explicit `unsigned = true`; not both."""
        if self.secret_file is not None and self.unsigned:
            raise fail_at(
                "webhook",
                ("unsigned",),
                f"webhook {self.url} has a secret_file and unsigned = true; remove one "
                "(with a secret_file, its events are signed)",
                self.unsigned,
            )
        if self.secret_file is None and not self.unsigned:
            raise fail_at("webhook", (), _unsigned_problem(self.url), self.url)


def _unsigned_problem(url: str) -> str:
    return (
        f"webhook {url} has no secret to sign its events with; write it as a table, "
        f'[[hierarchy.alerts.webhooks]] with url = "{url}" and secret_file = "FILE" '
        "(`updatesync secret webhook FILE` writes a secret; give the receiver the same), or "
        "with unsigned = true to send its events without a signature"
    )


class AlertsTable(Table):
    """`[hierarchy.alerts]`: when a site's sync is overdue, and where alerts are sent."""

    overdue_after: Interval | None = key(
        "A site whose last successful sync is older than this (or that never synced and was "
        "set up longer ago) gets the `sync_overdue` alert. Must be longer than the longest "
        "gap between two scheduled syncs, or every site would be overdue before its next one.",
        toml="string (interval)",
        default=None,
        shown='the schedule\'s longest gap plus one day, at least `"2d"` (`"8d"` for the '
        'weekly default schedule, `"2d"` for a daily one)',
    )
    webhooks: tuple[WebhookTable, ...] = key(
        "Where each raise and cancel of an alert is POSTed to, as JSON, signed "
        "(`[[hierarchy.alerts.webhooks]]`). A plain URL, as earlier files list them, is read "
        "but refused: it has no secret.",
        toml="array of tables",
        default=(),
    )

    @field_validator("webhooks", mode="before")
    @classmethod
    def _webhooks_are_tables(cls, value: object) -> object:
        """Tables; a URL string (the earlier form) is read as a table with only its url, so
        that the problem said is the missing secret, with the way to write it."""
        if not isinstance(value, list):
            raise values.problem(
                "must be an array of tables: write each webhook as [[hierarchy.alerts.webhooks]] "
                "with its url and secret_file"
            )
        return [{"url": item} if isinstance(item, str) else item for item in value]

    def check_rules(self) -> None:
        """A URL is listed once."""
        seen: dict[str, int] = {}
        for index, hook in enumerate(self.webhooks):
            if hook.url in seen:
                raise ValidationError.from_exception_data(
                    "alerts",
                    [
                        values.at(
                            ("webhooks", index),
                            f"{hook.url} is listed twice (also {values.ALSO})",
                            hook.url,
                            also_item=seen[hook.url],
                        )
                    ],
                )
            seen[hook.url] = index


class SecurityTable(Table):
    """`[hierarchy.security]`: which surfaces of a site server need an API token. The SMS
    Provider (`/api/...`) always does (`Authorization: Bearer <token>`, see
    docs/security.md); these keys protect the surfaces that are open by default."""

    metrics_need_token: Flag = key(
        "`/metrics` of every site server and SUP answers only a request with `Authorization: "
        "Bearer <token>` (a token of any security role; a SUP asks its site server whether "
        "it knows the token); by default a Prometheus scraper reads it without one, as it "
        "holds no secret (sync states, counts, times).",
        toml="boolean",
        default=False,
    )
    policy_need_token: Flag = key(
        "The client policy (`/policy/v1/...`) answers only a request with a token; by "
        "default clients read it without one, as ConfigMgr clients read their policy.",
        toml="boolean",
        default=False,
    )


class UpstreamTable(Table):
    """`[hierarchy.upstream]`: what the top-level site's default SUP syncs from."""

    kind: Annotated[UpstreamKind, PlainValidator(values.upstream_kind)] = key(
        '`"microsoft-update"`: Microsoft Update; `"wsus"`: another WSUS server, at `url`; '
        '`"none"`: disconnected, metadata arrives by importing WSUS exports.',
        toml="string",
    )
    url: Text | None = key(
        "The upstream server as `http(s)://host[:port]` (no query or fragment). Required for "
        '`"wsus"`, refused for `"none"`.',
        toml="string",
        default=None,
        shown=f'`"{MICROSOFT_UPDATE_URL}"` for `"microsoft-update"`',
    )

    def check_rules(self) -> None:
        """The url fits the kind."""
        if self.kind == "none":
            if self.url is not None:
                raise fail_at(
                    "upstream",
                    ("url",),
                    'kind = "none" (disconnected) has no upstream server; remove url',
                    self.url,
                )
        elif self.url is None:
            if self.kind == "wsus":
                raise fail_at(
                    "upstream",
                    ("url",),
                    'missing; kind = "wsus" needs the upstream server, such as '
                    'url = "http://wsus.contoso.com:8530"',
                    None,
                )
        else:
            parts = urlsplit(self.url)
            message = None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                message = (
                    f"{self.url!r} is not an http(s) URL; write it as http://host:port or "
                    "https://host"
                )
            elif parts.query or parts.fragment:
                message = f"{self.url!r} has a query or fragment; remove it"
            if message is not None:
                raise fail_at("upstream", ("url",), message, self.url)

    def upstream(self) -> Upstream:
        if self.kind == "none":
            return Upstream("none", None)
        return Upstream(self.kind, self.url.rstrip("/") if self.url else MICROSOFT_UPDATE_URL)


class CriteriaTable(Table):
    """`[hierarchy.criteria]`: what to sync. Products and classifications both empty means no
    filter (every update the upstream has); exactly one of them empty is refused, because the
    server-to-server filter then selects nothing (SPEC section 7)."""

    products: Guids = key(
        "Product category GUIDs (such as a3c2375d-0c8a-42f9-bce0-28333e198407 for Windows 10).",
        toml="array of strings",
        default=(),
    )
    classifications: Guids = key(
        "Classification category GUIDs (such as 0fa1201d-4330-4fa8-8ae9-b877473b6441 for "
        "Security Updates).",
        toml="array of strings",
        default=(),
    )
    languages: Languages = key(
        "Language codes such as en, de, zh-cn; none means all languages.",
        toml="array of strings",
        default=(),
    )
    updates_cleanup_age: Days = key(
        "Days an expired update's configuration item stays in the site databases before the "
        "top-level site deletes it at the end of a sync (ConfigMgr's Updates Cleanup Age); 0 "
        "deletes it at the next sync.",
        toml="integer",
        default=DEFAULT_UPDATES_CLEANUP_AGE,
        shown="`7` (days)",
    )

    def check_rules(self) -> None:
        """Products and classifications are both given, or neither."""
        if bool(self.products) != bool(self.classifications):
            given, empty = (
                ("products", "classifications")
                if self.products
                else ("classifications", "products")
            )
            raise fail_at(
                "criteria",
                (empty,),
                f"{given} are set but {empty} are not, so no update would be selected (an "
                f"update must match one of each); list {empty} too, or neither to sync all",
                [],
            )

    def criteria(self) -> Criteria:
        return Criteria(
            self.products, self.classifications, self.languages, self.updates_cleanup_age
        )


class TlsTable(Table):
    """`[hierarchy.tls]`: TLS on every link. With this table every site and SUP serves HTTPS
    only (a SUP on 8531 unless its `port` says otherwise), the web console too (with
    `console.pem` and `console.key` in `dir`), and every call between them verifies the
    peer's certificate against `ca`. Make the CA and the certificates with `updatesync pki
    init DIR` and `updatesync pki issue DIR --host FQDN` (`--name console` for the
    console's)."""

    ca: Text = key(
        "The CA bundle (PEM) the hierarchy's certificates are verified against: the `ca.pem` "
        "of `updatesync pki init`; each host holds a copy. A relative path is relative to the "
        "hierarchy file's folder.",
        toml="string",
        missing='missing; name the hierarchy\'s CA bundle, such as ca = "pki/ca.pem" (make '
        "one with `updatesync pki init pki`)",
    )
    dir: Text | None = key(
        "The folder holding each host's certificate and key as `<fqdn>.pem` and `<fqdn>.key` "
        "(what `updatesync pki issue DIR --host FQDN` writes), for every site and SUP that "
        "names no `cert` and `key` of its own. A relative path is relative to the hierarchy "
        "file's folder.",
        toml="string",
        default=None,
        shown="the folder of `ca`",
    )


_CERT = (
    "The certificate (PEM) this server serves HTTPS with, with `[hierarchy.tls]` only. A "
    "relative path is relative to the hierarchy file's folder."
)
_KEY = "The private key (PEM) of `cert`, readable by its owner only."


class SupTable(Table):
    """`[[sites.sups]]`: a software update point of the site above, in install order; the
    first is the site's default SUP, the others replicas of it."""

    fqdn: Host = key("The SUP server's FQDN; each server holds one update server.", toml="string")
    address: Host | None = key(
        "The host to connect to when it is not the FQDN (an IP address, or 127.0.0.1 when "
        "every role runs on one machine).",
        toml="string",
        default=None,
        shown="the FQDN",
    )
    listen: Host | None = key(
        "The address the update server listens on, an address of its host. `0.0.0.0` listens "
        "on every interface, and only when written here.",
        toml="string",
        default=None,
        shown="`address`, or the address of this host the FQDN resolves to",
    )
    port: Annotated[int, PlainValidator(values.sup_port)] | None = key(
        "The update server's port.",
        toml="integer",
        default=None,
        shown=f"`{DEFAULT_HTTP_PORT}`, or `{DEFAULT_HTTPS_PORT}` with `https = true`",
    )
    https: Flag = key("The update server is reached over TLS.", toml="boolean", default=False)
    internet_facing: Flag = key(
        "The SUP accepts connections from clients on the internet.",
        toml="boolean",
        default=False,
    )
    http_port: Annotated[int, PlainValidator(values.sup_port)] | None = key(
        "With `[hierarchy.tls]`: a second port where the update server also serves MS-WSUSSS "
        "over plain HTTP, for downstream servers that cannot use HTTPS (WSUS uses 8530). Only "
        "the protocol's paths are served there; its admin API only on HTTPS.",
        toml="integer",
        default=None,
        shown="none: HTTPS only",
    )

    database: DatabaseUrl | None = key(
        "The update server's database: an SQLAlchemy URL, "
        "`postgresql+psycopg://USER@HOST:PORT/NAME` for PostgreSQL (the `postgresql` extra) or "
        "`sqlite:///PATH`. No password here: the role reads it from "
        "`UPDATESYNC_DATABASE_PASSWORD_<FQDN>` (or libpq's `~/.pgpass`).",
        toml="string",
        default=None,
        shown="SQLite: `updateserver.sqlite` in the SUP's data folder",
    )

    cert: Text | None = key(
        _CERT, toml="string", default=None, shown="`<dir>/<fqdn>.pem` of `[hierarchy.tls]`"
    )
    key: Text | None = key(
        _KEY, toml="string", default=None, shown="`<dir>/<fqdn>.key` of `[hierarchy.tls]`"
    )

    def check_rules(self) -> None:
        """The plain-HTTP port is not the HTTPS one."""
        if self.http_port is not None and self.http_port == self.port:
            raise fail_at(
                "sup",
                ("http_port",),
                f"{self.http_port} is also the SUP's port; give the plain-HTTP MS-WSUSSS port "
                "another one (WSUS: 8530 beside 8531)",
                self.http_port,
            )

    def sup(self, base_dir: Path = Path(), tls: bool = False) -> Sup:
        https = self.https or tls
        default_port = DEFAULT_HTTPS_PORT if https else DEFAULT_HTTP_PORT
        port = self.port if self.port is not None else default_port
        return Sup(
            self.fqdn,
            port,
            https,
            self.internet_facing,
            self.address,
            cert=_path_in(base_dir, self.cert) if self.cert else None,
            key=_path_in(base_dir, self.key) if self.key else None,
            http_port=self.http_port if tls else None,
            listen=self.listen,
            database=self.database,
        )


_SCHEDULE = (
    "When the top-level site syncs: a cron expression of exactly five fields (minute hour "
    "day-of-month month day-of-week, Debian cron's rules) or an interval such as `1d`, "
    "`7h`, `30m` or `1h30m`."
)
_SCHEDULE_START = (
    "Where an interval schedule is counted from: runs are at schedule_start + k × interval "
    "(a TOML date-time; local time, or with a UTC offset). Refused with a cron schedule."
)
_TOP_ONLY = (
    " Set only at the top-level site: under `[hierarchy]` or in its `[[sites]]` table, not both."
)


class SiteTable(Table):
    """`[[sites]]`: a site, the top-level site first by custom. Its `schedule`,
    `schedule_start`, `upstream` and `criteria` may be written here only for the top-level
    site, instead of under `[hierarchy]`."""

    code: SiteCode = key("The site code: exactly 3 letters or digits (such as CS1).", toml="string")
    fqdn: Host = key("The site server's FQDN.", toml="string")
    type: Annotated[SiteType, PlainValidator(values.site_type)] = key(
        '`"cas"` (central administration site), `"primary"` or `"secondary"`.', toml="string"
    )
    parent: SiteCode | None = key(
        "The code of the parent site: a primary site's parent is a CAS, a secondary site's a "
        "primary site. The top-level site (the CAS, or a standalone primary) has none.",
        toml="string",
        default=None,
        shown="none: the top-level site",
    )
    sups: tuple[SupTable, ...] = key(
        "The site's software update points (`[[sites.sups]]`), in install order. A secondary "
        "site has at most one.",
        toml="array of tables",
        default=(),
    )
    address: Host | None = key(
        "The host to connect to when it is not the FQDN (an IP address, or 127.0.0.1 when "
        "every role runs on one machine).",
        toml="string",
        default=None,
        shown="the FQDN",
    )
    listen: Host | None = key(
        "The address the site server listens on, an address of its host. `0.0.0.0` listens "
        "on every interface, and only when written here.",
        toml="string",
        default=None,
        shown="`address`, or the address of this host the FQDN resolves to",
    )
    port: Annotated[int, PlainValidator(values.site_port)] = key(
        "Where the site server takes the calls of its parent and child sites (file and "
        "database replication), the SMS Provider's API and the client policy.",
        toml="integer",
        default=DEFAULT_SITE_PORT,
    )
    schedule: ScheduleText | None = key(
        _SCHEDULE + _TOP_ONLY, toml="string", default=None, shown="as `[hierarchy]`"
    )
    schedule_start: StartTime | None = key(
        _SCHEDULE_START + _TOP_ONLY, toml="date-time", default=None, shown="as `[hierarchy]`"
    )
    upstream: UpstreamTable | None = key(
        "As `[hierarchy.upstream]`." + _TOP_ONLY, toml="table", default=None
    )
    criteria: CriteriaTable | None = key(
        "As `[hierarchy.criteria]`." + _TOP_ONLY, toml="table", default=None
    )
    database: DatabaseUrl | None = key(
        "The site database: an SQLAlchemy URL, `postgresql+psycopg://USER@HOST:PORT/NAME` "
        "for PostgreSQL (the `postgresql` extra) or `sqlite:///PATH`. No password here: the role "
        "reads it from `UPDATESYNC_DATABASE_PASSWORD_<SITE CODE>` (or libpq's `~/.pgpass`).",
        toml="string",
        default=None,
        shown="SQLite: `site.sqlite` in the site's data folder",
    )

    cert: Text | None = key(
        _CERT, toml="string", default=None, shown="`<dir>/<fqdn>.pem` of `[hierarchy.tls]`"
    )
    key: Text | None = key(
        _KEY, toml="string", default=None, shown="`<dir>/<fqdn>.key` of `[hierarchy.tls]`"
    )

    @field_validator("sups", mode="before")
    @classmethod
    def _sups_are_tables(cls, value: object) -> object:
        return array_of_tables(
            value, "must be an array of tables: write each SUP as [[sites.sups]] under its site"
        )

    def site(self, base_dir: Path = Path(), tls: bool = False) -> Site:
        sups = tuple(sup.sup(base_dir, tls) for sup in self.sups)
        return Site(
            self.code,
            self.fqdn,
            self.type,
            self.parent,
            sups,
            self.port,
            self.address,
            https=tls,
            cert=_path_in(base_dir, self.cert) if self.cert else None,
            key=_path_in(base_dir, self.key) if self.key else None,
            listen=self.listen,
            database=self.database,
        )


class HeadTable(Table):
    """`[hierarchy]`: the hierarchy as a whole and the settings of its top-level site."""

    name: Text = key("The hierarchy's name, shown by the console.", toml="string")
    data_dir: Text = key(
        "Where the sites and update servers keep their state: `<data_dir>/<SITE>/` for a "
        "site (its logs in `logs/`), `<data_dir>/<fqdn>/` for an update server. A relative "
        "path is relative to the hierarchy file's folder.",
        toml="string",
        default=DEFAULT_DATA_DIR,
    )
    retry_interval: Minutes = key(
        "How long after a failed sync the sync is tried again: minutes, or an interval such "
        'as "2h". Each retry adds 0 to a tenth more in whole minutes (60 to 66 by default), '
        "so the sites of a hierarchy that failed together retry apart; the log line says "
        "which.",
        toml="integer or string",
        default=DEFAULT_RETRY_INTERVAL,
        shown="`60` (minutes)",
    )
    replication_timeout: Minutes = key(
        "How long a child site's sync waits for database replication to bring the parent's "
        'content version before it fails: minutes, or an interval such as "1h".',
        toml="integer or string",
        default=DEFAULT_REPLICATION_TIMEOUT,
        shown="`30` (minutes)",
    )
    secret_file: Text | None = key(
        "The file holding the shared secret every call between sites and SUPs is signed with; "
        "each host holds a copy. A relative path is relative to the hierarchy file's folder.",
        toml="string",
        default=None,
        shown=f"`<data_dir>/{DEFAULT_SECRET_FILE}`",
    )
    logs: LogsTable = key("See `[hierarchy.logs]`.", toml="table", default=LogsTable())
    alerts: AlertsTable = key("See `[hierarchy.alerts]`.", toml="table", default=AlertsTable())
    security: SecurityTable = key(
        "See `[hierarchy.security]`.", toml="table", default=SecurityTable()
    )
    schedule: ScheduleText | None = key(
        _SCHEDULE + _TOP_ONLY,
        toml="string",
        default=None,
        shown=f'`"{DEFAULT_SCHEDULE}"` (every 7 days, as Configuration Manager)',
    )
    schedule_start: StartTime | None = key(
        _SCHEDULE_START + _TOP_ONLY,
        toml="date-time",
        default=None,
        shown='`2000-01-01T00:00:00` (so `"1d"` runs at midnight)',
    )
    upstream: UpstreamTable | None = key(
        "See `[hierarchy.upstream]`." + _TOP_ONLY,
        toml="table",
        default=None,
        shown="required, here or in the top-level site's `[[sites]]` table",
    )
    criteria: CriteriaTable | None = key(
        "See `[hierarchy.criteria]`." + _TOP_ONLY, toml="table", default=None, shown="no filter"
    )
    tls: TlsTable | None = key(
        "See `[hierarchy.tls]`.", toml="table", default=None, shown="none: plain HTTP"
    )


class HierarchyFile(Table):
    """The whole file: `[hierarchy]` and one `[[sites]]` table per site."""

    hierarchy: HeadTable = key(
        "See `[hierarchy]`.",
        toml="table",
        missing='missing; add a [hierarchy] table with at least name = "..."',
    )
    sites: tuple[SiteTable, ...] = key(
        "See `[[sites]]`: one table per site.",
        toml="array of tables",
        missing="missing; add one [[sites]] table per site, the top-level first",
    )

    @field_validator("sites", mode="before")
    @classmethod
    def _sites_are_tables(cls, value: object) -> object:
        array_of_tables(value, "must be an array of tables: write each site as [[sites]]")
        if not value:
            raise values.problem("no sites; add at least the top-level site as [[sites]]")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _whole_file(cls, data: object, handler: ModelWrapValidatorHandler[HierarchyFile]) -> Any:
        """The keys' problems and those of the rules spanning tables, together; a top-only
        key of a site that is not the top-level site is reported as misplaced, not for what
        it holds."""
        findings = rules.check(data)
        found = [values.at(loc, message, None) for loc, message in findings.problems]
        try:
            file = handler(data)
        except ValidationError as exc:
            read = [e for e in exc.errors() if not _under(e["loc"], findings.unread)]
            raise ValidationError.from_exception_data(
                cls.__name__, [again(error) for error in read] + found
            ) from None
        if found:
            raise ValidationError.from_exception_data(cls.__name__, found)
        return file

    @classmethod
    def table_at(cls, loc: values.Loc) -> type[Table]:
        """The model of the table at `loc` (`("sites", 1, "sups", 0)` → `SupTable`)."""
        model: type[Table] = cls
        for segment in loc:
            if isinstance(segment, str):
                model = table_in(model.model_fields[segment].annotation)[0] or model
        return model

    def hierarchy_of(self, source: str, base_dir: Path) -> Hierarchy:
        """The `Hierarchy` this valid file describes; relative paths resolve against
        `base_dir`."""
        head = self.hierarchy
        top = next(site for site in self.sites if site.parent is None)
        schedule = head.schedule or top.schedule or DEFAULT_SCHEDULE
        start = head.schedule_start or top.schedule_start
        if start is not None and isinstance(schedule, IntervalSchedule):
            schedule = IntervalSchedule(schedule.interval, start, schedule.text)
        upstream = head.upstream or top.upstream
        criteria = head.criteria or top.criteria or CriteriaTable()
        assert upstream is not None  # the rules refuse a file without one
        alerts = head.alerts
        tls = None
        if head.tls is not None:
            ca = _path_in(base_dir, head.tls.ca)
            tls = TlsSettings(ca, _path_in(base_dir, head.tls.dir) if head.tls.dir else ca.parent)
        return Hierarchy(
            name=head.name,
            data_dir=_path_in(base_dir, head.data_dir),
            sites=tuple(site.site(base_dir, tls is not None) for site in self.sites),
            upstream=upstream.upstream(),
            criteria=criteria.criteria(),
            schedule=schedule,
            retry_interval=head.retry_interval,
            logs=LogSettings(head.logs.max_size, head.logs.tz_bias),
            source=source,
            replication_timeout=head.replication_timeout,
            secret_file=_path_in(base_dir, head.secret_file) if head.secret_file else None,
            alerts=AlertSettings(
                alerts.overdue_after or default_overdue_after(schedule),
                tuple(
                    WebhookSettings(
                        hook.url,
                        _path_in(base_dir, hook.secret_file) if hook.secret_file else None,
                        hook.unsigned,
                    )
                    for hook in alerts.webhooks
                ),
            ),
            tls=tls,
            security=SecuritySettings(
                head.security.metrics_need_token, head.security.policy_need_token
            ),
        )


def _path_in(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _under(loc: values.Loc, paths: set[values.Loc]) -> bool:
    return any(loc[: len(path)] == path for path in paths)
