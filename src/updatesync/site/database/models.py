"""The records of a site database: what the repositories read and write.

Plain frozen dataclasses (no SQL here): the site's row of `Update_SyncStatus` (`SyncStatus`),
the update sources with their content version, the configuration items (one per update) and
categories, what a content update changed, the pages and links of database replication, the
software update points of the site control file with their `SMS_SUPSyncStatus`, and the
site-wide client policy. Ids of updates and categories are kept in lower case, update source
ids in upper case, every time in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import IntEnum
from typing import Any, TypedDict

from updatesync.vocabulary import IN_PROGRESS_STATES

MICROSOFT_UPDATE = "{C2D17964-BBDD-4339-B9F3-12D7205B39CC}"
"""The update source id of Microsoft Update in ConfigMgr (SPEC section 1); every site
database starts with it, at content version 0."""

SYNC_SELF = "SELF"
"""`SyncNow` value: a delta sync requested at this site (console, API, `SELF.SYN`)."""
SYNC_FULL = "FULL"
"""`SyncNow` value: a full sync requested at this site (`SyncNow(true)`, `FULL.SYN`)."""


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """One site's row of `Update_SyncStatus`. `sync_now` is the pending request, if any."""

    site_code: str
    sync_now: str | None = None
    sync_now_requested_at: datetime | None = None
    last_sync_state: int | None = None
    last_sync_state_time: datetime | None = None
    last_error_code: int | None = None
    last_error_text: str | None = None
    last_successful_sync_time: datetime | None = None
    sync_catalog_version: int | None = None

    @property
    def in_progress(self) -> bool:
        """The last state is one of 6701, 6704, 6705, 6706 (SPEC section 5)."""
        return self.last_sync_state in IN_PROGRESS_STATES


@dataclass(frozen=True, slots=True)
class UpdateSource:
    unique_id: str
    name: str
    content_version: int


@dataclass(frozen=True, slots=True)
class LocalizedProperty:
    """A configuration item's title and description in one language (ConfigMgr's localized
    properties of a CI): the language's short name and LocaleID (LCID)."""

    language: str
    locale_id: int
    display_name: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ConfigurationItem:
    """One update as a configuration item. Ids are kept in lower case. `ci_id` and
    `date_revised` are given by the database when left None (on write)."""

    update_id: str
    revision: int
    title: str
    xml_sha256: str
    kb_article: str | None = None
    bulletin: str | None = None
    severity: str | None = None
    creation_date: str | None = None
    products: tuple[str, ...] = ()
    classifications: tuple[str, ...] = ()
    is_superseded: bool = False
    is_expired: bool = False
    ci_id: int | None = None
    date_revised: datetime | None = None
    localized: tuple[LocalizedProperty, ...] | None = None
    """Its localized properties in the subscribed languages; None: not given (a write
    leaves those stored as they are)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "update_id", self.update_id.lower())
        object.__setattr__(self, "products", tuple(p.lower() for p in self.products))
        object.__setattr__(self, "classifications", tuple(c.lower() for c in self.classifications))

    def content(self) -> dict[str, Any]:
        """The columns that say whether the CI changed (all but ci_id and date_revised)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in fields(self)
            if f.name not in ("ci_id", "date_revised")
        }


@dataclass(frozen=True, slots=True)
class Category:
    """A product, product family, company or classification; ids in lower case."""

    category_id: str
    category_type: str
    title: str
    parent_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "category_id", self.category_id.lower())
        if self.parent_id is not None:
            object.__setattr__(self, "parent_id", self.parent_id.lower())


@dataclass(frozen=True, slots=True)
class SoftwareUpdatePoint:
    """A SUP of the site as the site control file lists it. `is_default` is set on read: the
    first SUP installed is the default one, every other a replica of it."""

    fqdn: str
    port: int = 8530
    https: bool = False
    internet_facing: bool = False
    active: bool = True
    is_default: bool = False


@dataclass(frozen=True, slots=True)
class SUPSyncStatus:
    """The sync status of one SUP, with the fields of ConfigMgr's `SMS_SUPSyncStatus`
    (SPEC section 5). `replication_link_status`: 0 healthy, 1 degraded, 2 error."""

    site_code: str
    wsus_server_name: str
    wsus_source_server: str
    last_sync_state: int | None = None
    last_sync_state_time: datetime | None = None
    last_sync_error_code: int | None = None
    last_successful_sync_time: datetime | None = None
    sync_catalog_version: int | None = None
    replication_link_status: int = 0
    last_replication_link_check_time: datetime | None = None


AUDIT_EQUAL = "equal"
AUDIT_DIFFERS = "differs"
AUDIT_NOT_AVAILABLE = "not available"


@dataclass(frozen=True, slots=True)
class SUPAudit:
    """The last consistency audit of one SUP's update server against its upstream
    (`upstream_server`): `result` is `AUDIT_EQUAL` (proven equal), `AUDIT_DIFFERS` (6707) or
    `AUDIT_NOT_AVAILABLE` (`reason` says why), with both revision-set digests and counts."""

    site_code: str
    wsus_server_name: str
    upstream_server: str
    result: str
    checked_at: datetime
    own_digest: str | None = None
    own_count: int | None = None
    upstream_digest: str | None = None
    upstream_count: int | None = None
    reason: str | None = None


@dataclass(slots=True)
class ContentChange:
    """What a content update wrote, and the content version after it."""

    source_id: str
    content_version_before: int
    content_version: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    categories_changed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.categories_changed)


class LinkStatus(IntEnum):
    """ReplicationLinkStatus of `SMS_SUPSyncStatus` (SPEC section 5)."""

    HEALTHY = 0
    DEGRADED = 1
    ERROR = 2


@dataclass(frozen=True, slots=True)
class UserRecord:
    """An administrative user: its name (lower case), security role (its ConfigMgr name),
    argon2 password hash (None: it signs in with tokens only); `removed_at` once removed."""

    name: str
    role: str
    password_hash: str | None
    created_at: datetime
    removed_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.removed_at is None


TOKEN_API = "api"
TOKEN_SESSION = "session"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token (`kind` 'api', global) or a login session ('session', this site's):
    its id, its user, the argon2 hash of its secret, when it was made, expires and was
    revoked."""

    token_id: str
    user_name: str
    kind: str
    secret_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def valid_at(self, moment: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or moment < self.expires_at)


@dataclass(frozen=True, slots=True)
class WsusSubscription:
    """What the site's SUPs sync; `version` 0 when nothing was ever stored."""

    products: tuple[str, ...] = ()
    classifications: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    version: int = 0
    changed_at: datetime | None = None

    def same_as(self, other: WsusSubscription) -> bool:
        """The same categories and languages, whatever their order, case or version."""
        return normal_subscription(self) == normal_subscription(other)


def normal_subscription(s: WsusSubscription) -> tuple[frozenset[str], ...]:
    return (
        frozenset(x.lower() for x in s.products),
        frozenset(x.lower() for x in s.classifications),
        frozenset(x.lower() for x in s.languages),
    )


@dataclass(frozen=True, slots=True)
class ReplicationPage:
    """One page of a parent site's replication changes, read from one snapshot of its
    database: the categories and CIs whose sequence is in (`after`, `last_seq`], each list in
    sequence order, at most the asked limit in all. `last_seq` is `after` when the page is
    empty; `head_seq` is the highest sequence the parent held; `update_sources` carry the
    parent's content versions in that same snapshot. The CIs carry no `ci_id`: a child gives
    its own. `users` and `tokens` are the users and API tokens written in the same range
    (global data, replicated like the CIs)."""

    site_code: str
    after: int
    last_seq: int
    head_seq: int
    categories: tuple[Category, ...] = ()
    items: tuple[ConfigurationItem, ...] = ()
    update_sources: tuple[UpdateSource, ...] = ()
    users: tuple[UserRecord, ...] = ()
    tokens: tuple[TokenRecord, ...] = ()
    deleted: tuple[str, ...] = ()
    """The update ids whose CI the parent deleted in the same range (`expiry.py`)."""
    subscription: WsusSubscription | None = None
    """The parent's subscription (products, classifications, languages) in the same
    snapshot: the child's own becomes the same (criteria are set at the top-level site and
    inherited below). None from a parent that does not send it."""

    @property
    def reaches_head(self) -> bool:
        """The page holds the last change the parent had: after it, the child is current."""
        return self.last_seq == self.head_seq

    @property
    def size(self) -> int:
        return (
            len(self.categories)
            + len(self.items)
            + len(self.users)
            + len(self.tokens)
            + len(self.deleted)
        )


@dataclass(frozen=True, slots=True)
class ReplicationLink:
    """A child site's link to the parent it replicates from. `applied_seq`: the parent's
    sequence this site holds every change up to. `replicated_versions`: the parent's content
    version per update source when this site last reached the parent's head (empty until
    then). `consecutive_failures` and `failing_since` count the failed checks since the last
    success."""

    parent_site: str
    applied_seq: int = 0
    replicated_versions: dict[str, int] = field(default_factory=dict)
    status: LinkStatus = LinkStatus.HEALTHY
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    last_check_time: datetime | None = None
    last_success_time: datetime | None = None
    last_error_text: str | None = None

    def replicated_version(self, source_id: str = MICROSOFT_UPDATE) -> int | None:
        """The parent's content version of `source_id` this site holds, if it reached it."""
        return self.replicated_versions.get(source_id.upper())


class SUPLocation(TypedDict):
    """Where clients find one software update point (JSON-ready): its intranet URL, and its
    Internet URL when it is Internet-facing (None otherwise)."""

    fqdn: str
    intranet_url: str
    internet_url: str | None


def sup_location(sup: SoftwareUpdatePoint) -> SUPLocation:
    """The location of a SUP of the site control file: `http(s)://fqdn:port`."""
    url = f"{'https' if sup.https else 'http'}://{sup.fqdn}:{sup.port}"
    return {
        "fqdn": sup.fqdn,
        "intranet_url": url,
        "internet_url": url if sup.internet_facing else None,
    }


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    """The site-wide policy for client computers, as last published by the site."""

    site_code: str
    update_source_id: str
    content_version: int
    locations: tuple[SUPLocation, ...]
    published_at: datetime
