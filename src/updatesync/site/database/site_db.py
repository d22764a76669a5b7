"""The site database of one ConfigMgr site: what the site holds and the questions asked of it.

One `SiteDatabase` per site server. It holds the sync request flag and sync status
(`Update_SyncStatus`), the update sources and their content version, the configuration items
(one per update) and categories, status messages, alerts, the site's software update points
(from the site control file) and their `SMS_SUPSyncStatus`.

Writes that must not half-happen run in one transaction each. Above all the sync manager's
phase 2: `update_content()` writes CIs and categories in batches inside ONE transaction and,
only if something changed, raises the update source's content version by one in that same
transaction (SPEC sections 1, 2.5 and 4), so a failed sync leaves the CIs and the content
version as they were.

Read-then-write operations start with a write (or a compare-and-set), so that on SQLite the
write lock is taken before the read and two callers never act on the same snapshot.

Database replication (parent → child, SPEC sections 1 and 3): every write of a CI or a
category stamps the row with the database's next replication sequence number, in the write's
transaction. A parent answers `replication_changes(after, limit)` from one read snapshot; a
child applies such a page with `apply_replicated()` in one transaction that also records how
far it got (`replication_link`), and refuses a page that does not start where it stands. The
HTTP side and the puller are in `db_replication.py`. The site-wide client policy is stored
by `publish_client_policy()`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any, TypedDict

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from updatesync.logs.status_messages import StatusMessage
from updatesync.site.database import schema as t
from updatesync.site.database.engine import create_site_engine, migrate, sqlite_url
from updatesync.site.watch.alerts import Alert, AlertState, AlertType, alert_text
from updatesync.vocabulary import IN_PROGRESS_STATES, SYNC_DONE, MessageSeverity

MICROSOFT_UPDATE = "{C2D17964-BBDD-4339-B9F3-12D7205B39CC}"
"""The update source id of Microsoft Update in ConfigMgr (SPEC section 1); every site
database starts with it, at content version 0."""

SYNC_SELF = "SELF"
"""`SyncNow` value: a delta sync requested at this site (console, API, `SELF.SYN`)."""
SYNC_FULL = "FULL"
"""`SyncNow` value: a full sync requested at this site (`SyncNow(true)`, `FULL.SYN`)."""

_SITE_CODE = re.compile(r"[A-Z0-9]{3}")
_CHUNK = 500


class SiteDatabaseError(Exception):
    """A site database operation was refused or failed; the message says what and where."""


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise SiteDatabaseError(f"{what}: time {value} has no time zone; give it in UTC")
    return value.astimezone(UTC)


def _read_time(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _site_code(code: str) -> str:
    normal = code.strip().upper()
    if not _SITE_CODE.fullmatch(normal):
        raise SiteDatabaseError(f"site code {code!r} is not three letters or digits (e.g. CS1)")
    return normal


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


_CI_CONTENT = tuple(
    f.name for f in fields(ConfigurationItem) if f.name not in ("ci_id", "date_revised")
)


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
class ReplicationPage:
    """One page of a parent site's replication changes, read from one snapshot of its
    database: the categories and CIs whose sequence is in (`after`, `last_seq`], each list in
    sequence order, at most the asked limit in all. `last_seq` is `after` when the page is
    empty; `head_seq` is the highest sequence the parent held; `update_sources` carry the
    parent's content versions in that same snapshot. The CIs carry no `ci_id`: a child gives
    its own."""

    site_code: str
    after: int
    last_seq: int
    head_seq: int
    categories: tuple[Category, ...] = ()
    items: tuple[ConfigurationItem, ...] = ()
    update_sources: tuple[UpdateSource, ...] = ()

    @property
    def reaches_head(self) -> bool:
        """The page holds the last change the parent had: after it, the child is current."""
        return self.last_seq == self.head_seq

    @property
    def size(self) -> int:
        return len(self.categories) + len(self.items)


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


class ContentUpdate:
    """CIs and categories written inside one open transaction (see
    `SiteDatabase.update_content`). Feed it in batches; nothing is visible to others, and
    nothing is kept, until the `with` block ends without an error."""

    def __init__(self, conn: Connection, change: ContentChange, at: datetime) -> None:
        self._conn = conn
        self.change = change
        self._at = at

    def upsert_categories(self, categories: Iterable[Category]) -> int:
        """Insert new categories and rewrite changed ones; returns how many changed."""
        changed = _upsert_categories(self._conn, categories)
        self.change.categories_changed += changed
        return changed

    def upsert_cis(self, items: Iterable[ConfigurationItem]) -> list[str]:
        """Insert new CIs and rewrite changed ones (by update id); returns the update ids of
        those that were new or changed, in the order given.

        A CI that arrives with a `ci_id` (replicated from the parent site) keeps it; one
        whose stored `ci_id` differs is refused.
        """
        batch = list(items)
        seen: set[str] = set()
        for item in batch:
            if item.update_id in seen:
                raise SiteDatabaseError(
                    f"configuration item batch: update {item.update_id} appears twice"
                )
            seen.add(item.update_id)
        ci = t.configuration_item
        stored: dict[str, Any] = {}
        for start in range(0, len(batch), _CHUNK):
            ids = [i.update_id for i in batch[start : start + _CHUNK]]
            query = select(ci).where(ci.c.update_id.in_(ids))
            stored.update({row.update_id: row for row in self._conn.execute(query)})
        new_with_id: list[dict[str, Any]] = []
        new: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        written: list[str] = []
        in_order: list[dict[str, Any]] = []
        for item in batch:
            values = item.content()
            values["date_revised"] = _utc(item.date_revised or self._at, "date_revised")
            row = stored.get(item.update_id)
            if row is None:
                if item.ci_id is not None:
                    values["ci_id"] = item.ci_id
                (new if item.ci_id is None else new_with_id).append(values)
                in_order.append(values)
                written.append(item.update_id)
                continue
            if item.ci_id is not None and item.ci_id != row.ci_id:
                raise SiteDatabaseError(
                    f"configuration item of update {item.update_id}: arrives as CI "
                    f"{item.ci_id} but this site holds it as CI {row.ci_id}"
                )
            if all(_same(getattr(row, name), values[name]) for name in _CI_CONTENT):
                self.change.unchanged += 1
            else:
                values["key"] = item.update_id
                changed.append(values)
                in_order.append(values)
                written.append(item.update_id)
        _stamp(self._conn, in_order)
        for rows in (new, new_with_id):
            if rows:
                self._conn.execute(insert(ci), rows)
        if changed:
            self._conn.execute(
                update(ci).where(ci.c.update_id == bindparam("key")),
                [{k: v for k, v in row.items() if k != "update_id"} for row in changed],
            )
        self.change.inserted += len(new) + len(new_with_id)
        self.change.updated += len(changed)
        return written


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(wanted, list):
        return list(stored or []) == wanted
    return bool(stored == wanted)


def _upsert_categories(conn: Connection, categories: Iterable[Category]) -> int:
    cat = t.category
    batch = {c.category_id: c for c in categories}
    stored: dict[str, Category] = {}
    keys = list(batch)
    for start in range(0, len(keys), _CHUNK):
        query = select(cat).where(cat.c.category_id.in_(keys[start : start + _CHUNK]))
        stored.update({r.category_id: _category(r) for r in conn.execute(query)})
    new = [_category_values(c) for k, c in batch.items() if k not in stored]
    changed = [
        _category_values(c) | {"key": k} for k, c in batch.items() if k in stored and stored[k] != c
    ]
    _stamp(conn, [*new, *changed])
    if new:
        conn.execute(insert(cat), new)
    if changed:
        conn.execute(
            update(cat).where(cat.c.category_id == bindparam("key")),
            [{k: v for k, v in row.items() if k != "category_id"} for row in changed],
        )
    return len(new) + len(changed)


def _stamp(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Give each row about to be written (a CI or a category) the next replication sequence
    number, in order. The counter row is written first, so the numbers are this
    transaction's alone until it ends (see `schema.replication_sequence`)."""
    if not rows:
        return
    seq = t.replication_sequence
    conn.execute(update(seq).where(seq.c.id == 1).values(last_seq=seq.c.last_seq + len(rows)))
    last = int(conn.execute(select(seq.c.last_seq).where(seq.c.id == 1)).scalar_one())
    for n, row in enumerate(rows, start=last - len(rows) + 1):
        row["replication_seq"] = n


def _category_values(c: Category) -> dict[str, Any]:
    return {
        "category_id": c.category_id,
        "category_type": c.category_type,
        "title": c.title,
        "parent_id": c.parent_id,
    }


def _category(row: Any) -> Category:
    return Category(row.category_id, row.category_type, row.title, row.parent_id)


def _ci(row: Any) -> ConfigurationItem:
    return ConfigurationItem(
        update_id=row.update_id,
        revision=row.revision,
        title=row.title,
        xml_sha256=row.xml_sha256,
        kb_article=row.kb_article,
        bulletin=row.bulletin,
        severity=row.severity,
        creation_date=row.creation_date,
        products=tuple(row.products),
        classifications=tuple(row.classifications),
        is_superseded=bool(row.is_superseded),
        is_expired=bool(row.is_expired),
        ci_id=row.ci_id,
        date_revised=_read_time(row.date_revised),
    )


def _sup_location(value: Mapping[str, Any], where: str) -> SUPLocation:
    fqdn, intranet, internet = (
        value.get("fqdn"),
        value.get("intranet_url"),
        value.get("internet_url"),
    )
    if not isinstance(fqdn, str) or not fqdn or not isinstance(intranet, str) or not intranet:
        raise SiteDatabaseError(
            f"{where}: SUP location {dict(value)!r} needs an fqdn and an intranet_url"
        )
    if internet is not None and not isinstance(internet, str):
        raise SiteDatabaseError(
            f"{where}: internet_url of SUP {fqdn} is {internet!r}; give a URL or None"
        )
    return {"fqdn": fqdn, "intranet_url": intranet, "internet_url": internet}


def _link(row: Any) -> ReplicationLink:
    return ReplicationLink(
        parent_site=row.parent_site_code,
        applied_seq=int(row.applied_seq),
        replicated_versions={str(k): int(v) for k, v in (row.replicated_versions or {}).items()},
        status=LinkStatus(row.link_status),
        consecutive_failures=int(row.consecutive_failures),
        failing_since=_read_time(row.failing_since),
        last_check_time=_read_time(row.last_check_time),
        last_success_time=_read_time(row.last_success_time),
        last_error_text=row.last_error_text,
    )


def _status_message(row: Any) -> StatusMessage:
    return StatusMessage(
        message_id=row.message_id,
        severity=MessageSeverity(row.severity),
        level=row.level,
        source=row.source,
        component=row.component,
        site_code=row.site_code,
        system=row.system,
        process_id=row.process_id,
        thread_id=row.thread_id,
        time=_read_time(row.time),  # type: ignore[arg-type]  # NOT NULL column
        strings=tuple(getattr(row, f"istr{i}") for i in range(10)),
        attributes=tuple((int(k), str(v)) for k, v in row.attributes),
        last_error=row.last_error,
    )


def _alert(row: Any) -> Alert:
    return Alert(
        alert_id=row.alert_id,
        alert_type=AlertType(row.alert_type),
        site_code=row.site_code,
        instance=row.instance,
        state=AlertState(row.state),
        raised_at=_read_time(row.raised_at),  # type: ignore[arg-type]  # NOT NULL column
        canceled_at=_read_time(row.canceled_at),
        text=row.text,
    )


def _upsert(conn: Connection, table: Table, key: dict[str, Any], values: dict[str, Any]) -> None:
    """Update the row of `table` named by `key`, or insert it. The UPDATE comes first, so
    on SQLite the write lock is held before anything is read."""
    condition = [table.c[k] == v for k, v in key.items()]
    result = conn.execute(update(table).where(*condition).values(**(values or key)))
    if result.rowcount == 0:
        conn.execute(insert(table).values(**key, **values))


class SiteDatabase:
    """The database of one site; `site_code` is the site it belongs to."""

    def __init__(self, engine: Engine, site_code: str) -> None:
        self.engine = engine
        self.site_code = site_code

    @classmethod
    def open(
        cls,
        data_dir: Path | str | None = None,
        *,
        site_code: str | None = None,
        url: str | None = None,
    ) -> SiteDatabase:
        """Open (creating and migrating as needed) the site database in `data_dir`, or at the
        SQLAlchemy `url`. A new database needs `site_code`; an existing one remembers it and
        refuses another."""
        if url is None:
            if data_dir is None:
                raise SiteDatabaseError("open the site database: give a data folder or a URL")
            folder = Path(data_dir)
            folder.mkdir(parents=True, exist_ok=True)
            url = sqlite_url(folder)
        engine = create_site_engine(url)
        try:
            migrate(engine)
            code = cls._identity(engine, url, site_code)
            with engine.begin() as conn:
                _upsert(conn, t.update_sync_status, {"site_code": code}, {})
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, code)

    @staticmethod
    def _identity(engine: Engine, where: str, site_code: str | None) -> str:
        wanted = _site_code(site_code) if site_code is not None else None
        with engine.connect() as conn:
            stored = conn.execute(select(t.site_identity.c.site_code)).scalar()
        if stored is None:
            if wanted is None:
                raise SiteDatabaseError(
                    f"site database {where} is new: give the site code of its site"
                )
            try:
                with engine.begin() as conn:
                    conn.execute(
                        insert(t.site_identity).values(id=1, site_code=wanted, created_at=_now())
                    )
                return wanted
            except IntegrityError:
                with engine.connect() as conn:
                    stored = conn.execute(select(t.site_identity.c.site_code)).scalar_one()
        if wanted is not None and wanted != stored:
            raise SiteDatabaseError(
                f"site database {where} belongs to site {stored}, not {wanted}: "
                "open the database of the right site"
            )
        return str(stored)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> SiteDatabase:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _site(self, site_code: str | None) -> str:
        return self.site_code if site_code is None else _site_code(site_code)

    # -- sync requests and sync status --------------------------------------------

    def request_sync(
        self, kind: str = SYNC_SELF, *, site_code: str | None = None, at: datetime | None = None
    ) -> str:
        """Set the `SyncNow` flag: SELF (delta), FULL, or the code of the parent site that
        asks. A pending FULL is not lowered to a delta request. Returns the flag now set."""
        site = self._site(site_code)
        wanted = kind.strip().upper()
        is_parent = bool(_SITE_CODE.fullmatch(wanted)) and wanted != site
        if wanted not in (SYNC_SELF, SYNC_FULL) and not is_parent:
            raise SiteDatabaseError(
                f"sync request {kind!r} for site {site}: use SELF, FULL or the parent site's code"
            )
        when = _utc(at or _now(), "sync request")
        s = t.update_sync_status
        with self.engine.begin() as conn:
            _upsert(conn, s, {"site_code": site}, {})
            pending = conn.execute(select(s.c.sync_now).where(s.c.site_code == site)).scalar()
            if pending == SYNC_FULL and wanted != SYNC_FULL:
                return SYNC_FULL
            conn.execute(
                update(s)
                .where(s.c.site_code == site)
                .values(sync_now=wanted, sync_now_requested_at=when)
            )
        return wanted

    def pending_sync_request(self, *, site_code: str | None = None) -> tuple[str | None, Any]:
        """The SyncNow flag and its request time, exactly as stored (a token for
        `clear_sync_request`: compare it, never convert it)."""
        s = t.update_sync_status
        query = select(s.c.sync_now, s.c.sync_now_requested_at).where(
            s.c.site_code == self._site(site_code)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return (None, None) if row is None else (row.sync_now, row.sync_now_requested_at)

    def clear_sync_request(
        self, flag: str, requested_at: Any, *, site_code: str | None = None
    ) -> bool:
        """Clear the SyncNow flag if it still holds `flag` requested at `requested_at` (as
        `pending_sync_request` gave them); False when a newer request replaced it meanwhile,
        which then stays set."""
        s = t.update_sync_status
        same_time = (
            s.c.sync_now_requested_at.is_(None)
            if requested_at is None
            else s.c.sync_now_requested_at == requested_at
        )
        with self.engine.begin() as conn:
            done = conn.execute(
                update(s)
                .where(s.c.site_code == self._site(site_code), s.c.sync_now == flag, same_time)
                .values(sync_now=None, sync_now_requested_at=None)
            ).rowcount
        return bool(done)

    def take_sync_request(self, *, site_code: str | None = None) -> str | None:
        """The pending `SyncNow` flag, cleared in the same transaction: of callers racing for
        one request, exactly one gets it."""
        site = self._site(site_code)
        s = t.update_sync_status
        with self.engine.begin() as conn:
            # Writing first takes the write lock (SQLite) or the row lock (PostgreSQL).
            locked = conn.execute(
                update(s).where(s.c.site_code == site).values(sync_now=s.c.sync_now)
            )
            if locked.rowcount == 0:
                return None
            pending = conn.execute(select(s.c.sync_now).where(s.c.site_code == site)).scalar()
            if pending is not None:
                conn.execute(
                    update(s)
                    .where(s.c.site_code == site)
                    .values(sync_now=None, sync_now_requested_at=None)
                )
        return pending

    def sync_status(self, *, site_code: str | None = None) -> SyncStatus:
        site = self._site(site_code)
        s = t.update_sync_status
        with self.engine.connect() as conn:
            row = conn.execute(select(s).where(s.c.site_code == site)).first()
        if row is None:
            return SyncStatus(site)
        return SyncStatus(
            site_code=row.site_code,
            sync_now=row.sync_now,
            sync_now_requested_at=_read_time(row.sync_now_requested_at),
            last_sync_state=row.last_sync_state,
            last_sync_state_time=_read_time(row.last_sync_state_time),
            last_error_code=row.last_error_code,
            last_error_text=row.last_error_text,
            last_successful_sync_time=_read_time(row.last_successful_sync_time),
            sync_catalog_version=row.sync_catalog_version,
        )

    def set_sync_status(self, status: SyncStatus) -> None:
        """Write every field of `status` but the request flag (see `request_sync`)."""
        site = _site_code(status.site_code)
        values = {
            "last_sync_state": status.last_sync_state,
            "last_error_code": status.last_error_code,
            "last_error_text": status.last_error_text,
            "sync_catalog_version": status.sync_catalog_version,
        }
        for name in ("last_sync_state_time", "last_successful_sync_time"):
            value = getattr(status, name)
            values[name] = _utc(value, name) if value is not None else None
        with self.engine.begin() as conn:
            _upsert(conn, t.update_sync_status, {"site_code": site}, values)

    def record_sync_state(
        self,
        message_id: int,
        *,
        at: datetime | None = None,
        error_code: int | None = None,
        error_text: str | None = None,
        catalog_version: int | None = None,
        site_code: str | None = None,
    ) -> SyncStatus:
        """Note the sync's new state (the status message just sent). 6702 also records the
        success time and clears the error; the catalog version is kept unless given."""
        site = self._site(site_code)
        when = _utc(at or _now(), f"sync state {message_id}")
        values: dict[str, Any] = {"last_sync_state": message_id, "last_sync_state_time": when}
        if message_id == SYNC_DONE:
            values |= {
                "last_successful_sync_time": when,
                "last_error_code": None,
                "last_error_text": None,
            }
        if error_code is not None or error_text is not None:
            values |= {"last_error_code": error_code, "last_error_text": error_text}
        if catalog_version is not None:
            values["sync_catalog_version"] = catalog_version
        with self.engine.begin() as conn:
            _upsert(conn, t.update_sync_status, {"site_code": site}, values)
        return self.sync_status(site_code=site)

    # -- update sources and content version -----------------------------------------

    def update_sources(self) -> list[UpdateSource]:
        src = t.update_source
        with self.engine.connect() as conn:
            rows = conn.execute(select(src).order_by(src.c.unique_id))
            return [UpdateSource(r.unique_id, r.name, r.content_version) for r in rows]

    def add_update_source(self, unique_id: str, name: str) -> UpdateSource:
        """Register an update source (content version 0); an existing one is kept as is."""
        src = t.update_source
        key = unique_id.upper()
        with self.engine.begin() as conn:
            exists = conn.execute(
                update(src).where(src.c.unique_id == key).values(unique_id=key)
            ).rowcount
            if not exists:
                conn.execute(insert(src).values(unique_id=key, name=name, content_version=0))
        return next(s for s in self.update_sources() if s.unique_id == key)

    def content_version(self, source_id: str = MICROSOFT_UPDATE) -> int:
        src = t.update_source
        with self.engine.connect() as conn:
            value = conn.execute(
                select(src.c.content_version).where(src.c.unique_id == source_id.upper())
            ).scalar()
        if value is None:
            raise self._unknown_source(source_id)
        return int(value)

    def set_content_version(self, version: int, *, source_id: str = MICROSOFT_UPDATE) -> None:
        """Set the content version (WSyncMgr.log: `Set content version of update source {..}
        for site CS1 to 33`)."""
        src = t.update_source
        with self.engine.begin() as conn:
            done = conn.execute(
                update(src)
                .where(src.c.unique_id == source_id.upper())
                .values(content_version=version)
            ).rowcount
        if not done:
            raise self._unknown_source(source_id)

    def _unknown_source(self, source_id: str) -> SiteDatabaseError:
        return SiteDatabaseError(
            f"site {self.site_code}: update source {source_id} is not registered "
            "(add it with add_update_source)"
        )

    @contextmanager
    def update_content(
        self, source_id: str = MICROSOFT_UPDATE, *, at: datetime | None = None
    ) -> Iterator[ContentUpdate]:
        """One transaction for a sync's site-database phase: write CIs and categories through
        the `ContentUpdate` in as many batches as needed; when the block ends, the content
        version of `source_id` rises by one if anything changed, in the same transaction.
        An error in the block keeps nothing: CIs, categories and content version stay as
        they were. The result is in `.change` of the yielded object.

        The block holds the database's write lock (SQLite): write nothing else through this
        `SiteDatabase` inside it (send status messages before or after), or that write waits
        for the block to end."""
        when = _utc(at or _now(), "content update")
        src = t.update_source
        key = source_id.upper()
        with self.engine.begin() as conn:
            # Writing first takes the write lock before anything is read (SQLite).
            if not conn.execute(
                update(src).where(src.c.unique_id == key).values(unique_id=key)
            ).rowcount:
                raise self._unknown_source(source_id)
            before = conn.execute(
                select(src.c.content_version).where(src.c.unique_id == key)
            ).scalar_one()
            change = ContentChange(key, before, before)
            yield ContentUpdate(conn, change, when)
            if change.changed:
                conn.execute(
                    update(src)
                    .where(src.c.unique_id == key)
                    .values(content_version=src.c.content_version + 1)
                )
                change.content_version = before + 1

    def apply_ci_batch(
        self,
        items: Iterable[ConfigurationItem],
        *,
        categories: Iterable[Category] = (),
        source_id: str = MICROSOFT_UPDATE,
        at: datetime | None = None,
    ) -> ContentChange:
        """Categories and CIs upserted and, if anything changed, the content version raised by
        one, all in one transaction (see `update_content`)."""
        with self.update_content(source_id, at=at) as content:
            content.upsert_categories(categories)
            content.upsert_cis(items)
        return content.change

    # -- configuration items and categories -----------------------------------------

    def configuration_items(
        self, *, offset: int = 0, limit: int | None = None
    ) -> list[ConfigurationItem]:
        """The CIs in CI id order; `offset` and `limit` page through them."""
        ci = t.configuration_item
        query = select(ci).order_by(ci.c.ci_id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_ci(r) for r in conn.execute(query)]

    def configuration_item(self, update_id: str) -> ConfigurationItem | None:
        ci = t.configuration_item
        with self.engine.connect() as conn:
            row = conn.execute(select(ci).where(ci.c.update_id == update_id.lower())).first()
        return _ci(row) if row is not None else None

    def ci_count(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(t.configuration_item)).scalar_one()
            )

    def upsert_categories(self, categories: Iterable[Category]) -> int:
        """Insert or rewrite categories on their own (the content version is left alone; a
        sync writes them through `update_content`). Returns how many changed."""
        with self.engine.begin() as conn:
            return _upsert_categories(conn, categories)

    def categories(self, category_type: str | None = None) -> list[Category]:
        cat = t.category
        query = select(cat).order_by(cat.c.category_type, cat.c.title, cat.c.category_id)
        if category_type is not None:
            query = query.where(cat.c.category_type == category_type)
        with self.engine.connect() as conn:
            return [_category(r) for r in conn.execute(query)]

    # -- database replication: the parent's side -----------------------------------------

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """One read transaction: every query in it sees the same committed state (SQLite in
        WAL mode: the snapshot of the first read; PostgreSQL: REPEATABLE READ)."""
        with self.engine.connect() as conn:
            if conn.dialect.name != "sqlite":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def replication_head(self) -> int:
        """The highest replication sequence number given in this database (0: none yet)."""
        seq = t.replication_sequence
        with self.engine.connect() as conn:
            return int(conn.execute(select(seq.c.last_seq).where(seq.c.id == 1)).scalar_one())

    def replication_changes(self, after: int, limit: int) -> ReplicationPage:
        """The categories and CIs written after sequence `after`, in sequence order, at most
        `limit` rows in all, with the head sequence and the update sources' content versions,
        all read from ONE snapshot (see `ReplicationPage`). At most 2 x `limit` rows are
        held while the page is cut."""
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise SiteDatabaseError(
                f"site {self.site_code}: replication changes after {after!r}: give a "
                "sequence number of 0 or more"
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise SiteDatabaseError(
                f"site {self.site_code}: replication changes limited to {limit!r}: give 1 "
                "row or more"
            )
        cat, ci, seq, src = (
            t.category,
            t.configuration_item,
            t.replication_sequence,
            t.update_source,
        )
        with self._snapshot() as conn:
            head = int(conn.execute(select(seq.c.last_seq).where(seq.c.id == 1)).scalar_one())
            cat_rows = conn.execute(
                select(cat)
                .where(cat.c.replication_seq > after)
                .order_by(cat.c.replication_seq)
                .limit(limit)
            ).all()
            ci_rows = conn.execute(
                select(ci)
                .where(ci.c.replication_seq > after)
                .order_by(ci.c.replication_seq)
                .limit(limit)
            ).all()
            sources = tuple(
                UpdateSource(r.unique_id, r.name, r.content_version)
                for r in conn.execute(select(src).order_by(src.c.unique_id))
            )
        numbers = sorted(r.replication_seq for r in (*cat_rows, *ci_rows))[:limit]
        last = int(numbers[-1]) if numbers else after
        return ReplicationPage(
            site_code=self.site_code,
            after=after,
            last_seq=last,
            head_seq=head,
            categories=tuple(_category(r) for r in cat_rows if r.replication_seq <= last),
            items=tuple(replace(_ci(r), ci_id=None) for r in ci_rows if r.replication_seq <= last),
            update_sources=sources,
        )

    # -- database replication: the child's side ------------------------------------------

    def apply_replicated(
        self, parent_site: str, page: ReplicationPage, *, at: datetime | None = None
    ) -> int:
        """Apply a page of `parent_site`'s changes, in ONE transaction: its categories and CIs
        are upserted (by category id and update id; this site gives them its own CI ids and
        its own sequence numbers, so it can be the parent of another site in turn) and the
        link's `applied_seq` becomes `page.last_seq`; when the page reaches the parent's head,
        the parent's content versions are recorded as the replicated versions. A page that
        does not start at the link's `applied_seq` (stale, or a duplicate) is refused with
        `SiteDatabaseError` and nothing is written. Returns how many rows changed here."""
        parent = self._parent(parent_site)
        where = f"site {self.site_code}: replication page from {parent}"
        if _site_code(page.site_code) != parent:
            raise SiteDatabaseError(
                f"{where} was answered by site {page.site_code}: the parent's URL points at "
                "another site; fix the replication link's parent URL"
            )
        if not 0 <= page.after <= page.last_seq <= page.head_seq:
            raise SiteDatabaseError(
                f"{where} is inconsistent (after {page.after}, last {page.last_seq}, head "
                f"{page.head_seq}; a page needs after <= last <= head); it was not applied"
            )
        if (page.size == 0) != (page.last_seq == page.after):
            raise SiteDatabaseError(
                f"{where}: {page.size} rows between sequence {page.after} and {page.last_seq}; "
                "a page is empty exactly when it ends where it starts; it was not applied"
            )
        when = _utc(at or _now(), "replication")
        link = t.replication_link
        with self.engine.begin() as conn:
            self._lock_link(conn, parent)
            applied = conn.execute(
                select(link.c.applied_seq).where(link.c.parent_site_code == parent)
            ).scalar_one()
            if page.after != applied:
                raise SiteDatabaseError(
                    f"{where} starts after sequence {page.after}, but this site holds "
                    f"{parent}'s changes up to sequence {applied}: the page is stale or a "
                    f"duplicate and was not applied; ask {parent} for the changes after "
                    f"{applied}"
                )
            content = ContentUpdate(conn, ContentChange(f"replication from {parent}", 0), when)
            content.upsert_categories(page.categories)
            content.upsert_cis(replace(item, ci_id=None) for item in page.items)
            values: dict[str, Any] = {"applied_seq": page.last_seq}
            if page.reaches_head:
                values["replicated_versions"] = {
                    s.unique_id.upper(): s.content_version for s in page.update_sources
                }
            conn.execute(update(link).where(link.c.parent_site_code == parent).values(**values))
        change = content.change
        return change.inserted + change.updated + change.categories_changed

    def replication_link(self, parent_site: str) -> ReplicationLink | None:
        """The link to `parent_site`, or None when this site never replicated from it."""
        parent = _site_code(parent_site)
        link = t.replication_link
        with self.engine.connect() as conn:
            row = conn.execute(select(link).where(link.c.parent_site_code == parent)).first()
        return _link(row) if row is not None else None

    def replication_links(self) -> list[ReplicationLink]:
        """Every link of this site, by parent site code."""
        link = t.replication_link
        with self.engine.connect() as conn:
            rows = conn.execute(select(link).order_by(link.c.parent_site_code))
            return [_link(r) for r in rows]

    def record_replication_check(
        self,
        parent_site: str,
        status: LinkStatus | int,
        error: str | None = None,
        *,
        at: datetime | None = None,
    ) -> ReplicationLink:
        """Record a check of the link to `parent_site`: a success (no `error`, status 0)
        clears the failure count and the error and sets the last success time; a failure
        (`error` given, status 1 degraded or 2 error) counts one more failure. The status and
        check time are also written to this site's `SMS_SUPSyncStatus` rows
        (ReplicationLinkStatus, LastReplicationLinkCheckTime)."""
        parent = self._parent(parent_site)
        try:
            state = LinkStatus(status)
        except ValueError:
            raise SiteDatabaseError(
                f"replication link to {parent}: status {status!r} is not 0 (healthy), "
                "1 (degraded) or 2 (error)"
            ) from None
        if (error is None) != (state is LinkStatus.HEALTHY):
            raise SiteDatabaseError(
                f"replication link to {parent}: status {int(state)} with "
                f"{'no error' if error is None else 'an error'}; a success is healthy (0) "
                "and has no error, a failure is degraded (1) or error (2) and says what failed"
            )
        when = _utc(at or _now(), f"replication check of {parent}")
        link = t.replication_link
        with self.engine.begin() as conn:
            self._lock_link(conn, parent)
            values: dict[str, Any] = {"link_status": int(state), "last_check_time": when}
            if error is None:
                values |= {
                    "consecutive_failures": 0,
                    "failing_since": None,
                    "last_success_time": when,
                    "last_error_text": None,
                }
            else:
                values |= {
                    "consecutive_failures": link.c.consecutive_failures + 1,
                    "failing_since": func.coalesce(link.c.failing_since, when),
                    "last_error_text": error,
                }
            conn.execute(update(link).where(link.c.parent_site_code == parent).values(**values))
            ss = t.supsync_status
            conn.execute(
                update(ss)
                .where(ss.c.site_code == self.site_code)
                .values(replication_link_status=int(state), last_replication_link_check_time=when)
            )
            row = conn.execute(select(link).where(link.c.parent_site_code == parent)).one()
        return _link(row)

    def reset_replication_link(self, parent_site: str) -> ReplicationLink:
        """Start the link to `parent_site` over from sequence 0 (after the parent's database
        was replaced or restored: its sequence numbers restarted). Every row comes again and
        is upserted; nothing is lost, unchanged rows are not rewritten."""
        parent = self._parent(parent_site)
        link = t.replication_link
        with self.engine.begin() as conn:
            self._lock_link(conn, parent)
            conn.execute(
                update(link)
                .where(link.c.parent_site_code == parent)
                .values(applied_seq=0, replicated_versions={})
            )
            row = conn.execute(select(link).where(link.c.parent_site_code == parent)).one()
        return _link(row)

    def _parent(self, parent_site: str) -> str:
        parent = _site_code(parent_site)
        if parent == self.site_code:
            raise SiteDatabaseError(
                f"site {self.site_code} cannot replicate from itself: name its parent site"
            )
        return parent

    @staticmethod
    def _lock_link(conn: Connection, parent: str) -> None:
        """Create the link row if missing; writing first takes the write lock (SQLite) or the
        row lock (PostgreSQL) before anything is read."""
        link = t.replication_link
        touched = conn.execute(
            update(link).where(link.c.parent_site_code == parent).values(parent_site_code=parent)
        ).rowcount
        if not touched:
            conn.execute(
                insert(link).values(
                    parent_site_code=parent,
                    applied_seq=0,
                    replicated_versions={},
                    link_status=int(LinkStatus.HEALTHY),
                    consecutive_failures=0,
                )
            )

    # -- client policy -----------------------------------------------------------------

    def publish_client_policy(
        self,
        *,
        content_version: int,
        locations: Iterable[Mapping[str, Any]] | None = None,
        update_source_id: str = MICROSOFT_UPDATE,
        published_at: datetime | None = None,
        site_code: str | None = None,
    ) -> ClientPolicy:
        """Publish the site-wide policy (SPEC section 3, step 7): the update source, its
        content version and where the site's SUPs are (`SUPLocation` mappings: fqdn,
        intranet_url, internet_url or None); None takes the active SUPs of the site control
        file. Replaces the site's previous policy."""
        site = self._site(site_code)
        where = f"client policy of site {site}"
        source = update_source_id.upper()
        if isinstance(content_version, bool) or not isinstance(content_version, int):
            raise SiteDatabaseError(f"{where}: content version {content_version!r} is not a number")
        if not any(s.unique_id == source for s in self.update_sources()):
            raise self._unknown_source(update_source_id)
        if locations is None:
            held = tuple(sup_location(s) for s in self.sups(site_code=site) if s.active)
        else:
            held = tuple(_sup_location(x, where) for x in locations)
        when = _utc(published_at or _now(), where)
        values = {
            "update_source_id": source,
            "content_version": content_version,
            "sup_locations": [dict(x) for x in held],
            "published_at": when,
        }
        with self.engine.begin() as conn:
            _upsert(conn, t.client_policy, {"site_code": site}, values)
        return ClientPolicy(site, source, content_version, held, when)

    def client_policy(self, *, site_code: str | None = None) -> ClientPolicy | None:
        """The site's published client policy, or None before the first publication."""
        cp = t.client_policy
        site = self._site(site_code)
        with self.engine.connect() as conn:
            row = conn.execute(select(cp).where(cp.c.site_code == site)).first()
        if row is None:
            return None
        return ClientPolicy(
            site_code=row.site_code,
            update_source_id=row.update_source_id,
            content_version=row.content_version,
            locations=tuple(_sup_location(x, f"stored {site}") for x in row.sup_locations),
            published_at=_read_time(row.published_at),  # type: ignore[arg-type]  # NOT NULL
        )

    # -- status messages ---------------------------------------------------------------

    def add_status_message(self, msg: StatusMessage) -> int:
        """Store a status message; returns its record id."""
        values: dict[str, Any] = {
            "message_id": msg.message_id,
            "severity": msg.severity.value,
            "level": msg.level,
            "source": msg.source,
            "component": msg.component,
            "site_code": msg.site_code,
            "system": msg.system,
            "process_id": msg.process_id,
            "thread_id": msg.thread_id,
            "time": _utc(msg.time, f"status message {msg.message_id}"),
            "attributes": [list(a) for a in msg.attributes],
            "last_error": msg.last_error,
        }
        values |= {f"istr{i}": s for i, s in enumerate(msg.strings)}
        with self.engine.begin() as conn:
            key = conn.execute(insert(t.status_message).values(**values)).inserted_primary_key
        return int(key[0])  # type: ignore[index]

    def status_messages(
        self,
        *,
        site_code: str | None = None,
        message_id: int | Collection[int] | None = None,
        severity: str | None = None,
        component: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[StatusMessage]:
        """Status messages, newest first. `since` is inclusive, `until` exclusive; no filter
        means every site (a parent's database may hold its children's messages)."""
        sm = t.status_message
        query = select(sm).order_by(sm.c.time.desc(), sm.c.record_id.desc())
        if site_code is not None:
            query = query.where(sm.c.site_code == site_code.upper())
        if isinstance(message_id, int):
            query = query.where(sm.c.message_id == message_id)
        elif message_id is not None:
            query = query.where(sm.c.message_id.in_(list(message_id)))
        if severity is not None:
            query = query.where(sm.c.severity == MessageSeverity(severity).value)
        if component is not None:
            query = query.where(sm.c.component == component)
        if since is not None:
            query = query.where(sm.c.time >= _utc(since, "since"))
        if until is not None:
            query = query.where(sm.c.time < _utc(until, "until"))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_status_message(r) for r in conn.execute(query)]

    # -- alerts --------------------------------------------------------------------------

    def _raised(self, alert_type: AlertType, site: str, instance: str) -> Alert | None:
        a = t.alert
        query = select(a).where(
            a.c.alert_type == alert_type.value,
            a.c.site_code == site,
            a.c.instance == instance,
            a.c.state == AlertState.RAISED.value,
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _alert(row) if row is not None else None

    def raise_alert(
        self,
        alert_type: AlertType | str,
        instance: str,
        *,
        site_code: str | None = None,
        at: datetime | None = None,
        text: str | None = None,
    ) -> Alert:
        """Raise an alert about `instance` (for a sync failure: the SUP's FQDN). While it is
        raised, raising it again returns it unchanged. `text`: what the alert says, when it
        says more than its kind's name (`alert_text`), e.g. the time of the last sync."""
        kind = AlertType(alert_type)
        site = self._site(site_code)
        if text is not None and not text.strip():
            raise SiteDatabaseError(f"alert {kind} for {instance}: the text is empty")
        for _ in range(3):
            existing = self._raised(kind, site, instance)
            if existing is not None:
                return existing
            when = _utc(at or _now(), f"alert {kind}")
            text = text if text is not None else alert_text(kind, instance)
            try:
                with self.engine.begin() as conn:
                    inserted = conn.execute(
                        insert(t.alert).values(
                            alert_type=kind.value,
                            site_code=site,
                            instance=instance,
                            state=AlertState.RAISED.value,
                            raised_at=when,
                            text=text,
                        )
                    )
                    alert_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
            except IntegrityError:
                continue  # raised meanwhile by someone else: return theirs
            return Alert(alert_id, kind, site, instance, AlertState.RAISED, when, None, text)
        raise SiteDatabaseError(
            f"alert {kind} for {instance} at site {site}: raised and canceled by others "
            "while raising it; try again"
        )

    def cancel_alert(
        self,
        alert_type: AlertType | str,
        instance: str | None = None,
        *,
        site_code: str | None = None,
        at: datetime | None = None,
    ) -> list[Alert]:
        """Set raised alerts of the type to canceled: the one about `instance`, or every one
        of the site when `instance` is None ("Setting sync alert to canceled state on site
        CS1"). Returns those it canceled."""
        kind = AlertType(alert_type)
        site = self._site(site_code)
        when = _utc(at or _now(), f"alert {kind}")
        a = t.alert
        query = select(a.c.alert_id).where(
            a.c.alert_type == kind.value,
            a.c.site_code == site,
            a.c.state == AlertState.RAISED.value,
        )
        if instance is not None:
            query = query.where(a.c.instance == instance)
        with self.engine.connect() as conn:
            ids = list(conn.execute(query).scalars())
        canceled: list[int] = []
        with self.engine.begin() as conn:
            for alert_id in ids:
                done = conn.execute(
                    update(a)
                    .where(a.c.alert_id == alert_id, a.c.state == AlertState.RAISED.value)
                    .values(state=AlertState.CANCELED.value, canceled_at=when)
                ).rowcount
                if done:
                    canceled.append(alert_id)
        with self.engine.connect() as conn:
            rows = conn.execute(select(a).where(a.c.alert_id.in_(canceled)).order_by(a.c.alert_id))
            return [_alert(r) for r in rows]

    def set_up_time(self) -> datetime:
        """When this site database was created: the alert watcher does not call a site that
        never synced overdue before it has had `overdue_after` to do so."""
        with self.engine.connect() as conn:
            value = conn.execute(select(t.site_identity.c.created_at)).scalar_one()
        return _read_time(value)  # type: ignore[return-value]  # NOT NULL column

    def alerts(
        self,
        *,
        site_code: str | None = None,
        alert_type: AlertType | str | None = None,
        state: AlertState | str | None = None,
    ) -> list[Alert]:
        """Alert occurrences, newest raised first."""
        a = t.alert
        query = select(a).order_by(a.c.raised_at.desc(), a.c.alert_id.desc())
        if site_code is not None:
            query = query.where(a.c.site_code == site_code.upper())
        if alert_type is not None:
            query = query.where(a.c.alert_type == AlertType(alert_type).value)
        if state is not None:
            query = query.where(a.c.state == AlertState(state).value)
        with self.engine.connect() as conn:
            return [_alert(r) for r in conn.execute(query)]

    # -- site control: software update points -----------------------------------------

    def replace_sups(
        self, sups: Sequence[SoftwareUpdatePoint], *, site_code: str | None = None
    ) -> list[SoftwareUpdatePoint]:
        """Replace the site's SUPs by `sups`, in install order: the first is the default SUP."""
        site = self._site(site_code)
        seen: set[str] = set()
        for sup in sups:
            if sup.fqdn.lower() in seen:
                raise SiteDatabaseError(f"site {site}: SUP {sup.fqdn} is listed twice")
            seen.add(sup.fqdn.lower())
        sc = t.site_control
        with self.engine.begin() as conn:
            conn.execute(delete(sc).where(sc.c.site_code == site))
            if sups:
                conn.execute(
                    insert(sc),
                    [
                        {
                            "site_code": site,
                            "install_order": order,
                            "fqdn": sup.fqdn,
                            "port": sup.port,
                            "https": sup.https,
                            "internet_facing": sup.internet_facing,
                            "is_default": order == 0,
                            "active": sup.active,
                        }
                        for order, sup in enumerate(sups)
                    ],
                )
        return self.sups(site_code=site)

    def sups(self, *, site_code: str | None = None) -> list[SoftwareUpdatePoint]:
        """The site's SUPs in install order (the default SUP first)."""
        site = self._site(site_code)
        sc = t.site_control
        query = select(sc).where(sc.c.site_code == site).order_by(sc.c.install_order)
        with self.engine.connect() as conn:
            return [
                SoftwareUpdatePoint(
                    fqdn=r.fqdn,
                    port=r.port,
                    https=bool(r.https),
                    internet_facing=bool(r.internet_facing),
                    active=bool(r.active),
                    is_default=bool(r.is_default),
                )
                for r in conn.execute(query)
            ]

    # -- SMS_SUPSyncStatus -------------------------------------------------------------

    def upsert_supsync_status(self, status: SUPSyncStatus) -> None:
        site = _site_code(status.site_code)
        values = {
            f.name: getattr(status, f.name)
            for f in fields(status)
            if f.name not in ("site_code", "wsus_server_name")
        }
        for name, value in values.items():
            if isinstance(value, datetime):
                values[name] = _utc(value, f"SUP sync status of {status.wsus_server_name}: {name}")
        with self.engine.begin() as conn:
            _upsert(
                conn,
                t.supsync_status,
                {"site_code": site, "wsus_server_name": status.wsus_server_name},
                values,
            )

    def supsync_statuses(self, *, site_code: str | None = None) -> list[SUPSyncStatus]:
        """SUP sync status rows, by site and server; every site when `site_code` is None."""
        ss = t.supsync_status
        query = select(ss).order_by(ss.c.site_code, ss.c.wsus_server_name)
        if site_code is not None:
            query = query.where(ss.c.site_code == site_code.upper())
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            SUPSyncStatus(
                **{k: _read_time(v) if isinstance(v, datetime) else v for k, v in row.items()}
            )
            for row in rows
        ]
