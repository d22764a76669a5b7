"""The site database of one ConfigMgr site: opened once per site server, one repository per
domain.

`SiteDatabase.open()` opens the engine (`engine.py`: SQLite by default, migrated to the
newest schema), checks that the database belongs to the site asked for, and exposes one
repository per domain as an attribute, each a small class over the same `SiteStore` (the
engine, the site code, and the one place transactions are opened):

- `db.sync` (`sync_state.SyncState`): the `SyncNow` request flag and `Update_SyncStatus`;
- `db.content` (`content.Content`): update sources and their content version, configuration
  items and categories, and the sync's one-transaction content update;
- `db.replication` (`replication.Replication`): the replication sequence, pages of changes
  (parent) and applying them, with the links' health (child);
- `db.messages` (`status_messages.StatusMessages`): storing and finding status messages;
- `db.alerts` (`alerts.Alerts`): raising, canceling and listing alert occurrences;
- `db.site_data` (`site_data.SiteData`): the site data of the sites below, replicated up
  from the child sites (their pictures, and the pull's health per child);
- `db.sups` (`sups.SoftwareUpdatePoints`): the site control file's SUPs, their
  `SMS_SUPSyncStatus` and the site-wide client policy;
- `db.users` (`users.Users`): administrative users, their security roles, API tokens and
  login sessions (hashes only; users and API tokens replicate to the child sites);
- `db.webhooks` (`webhook_deliveries.WebhookDeliveries`): what each alert webhook has had
  (the alert watcher's delivery record: pending events, retries, give-ups);
- `db.wsus` (`wsus_config.WsusConfiguration`): the subscription the site's SUPs sync and
  each SUP's WSUS configuration state;
- `db.expiry` (`expiry.ExpiredItems`): expired CIs deleted once past the cleanup age (and
  the deletions, replicated like the CIs).

Callers use the repositories directly (`db.sync.request(SYNC_FULL)`,
`db.content.version()`); this class adds no method of theirs. Anything that must not
half-happen is one method of one repository and runs in one transaction. The records the
repositories read and write are in `models.py`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from updatesync.security.private_files import private_dir
from updatesync.site.database import schema as t
from updatesync.site.database.alerts import Alerts
from updatesync.site.database.content import Content
from updatesync.site.database.engine import create_site_engine, migrate, sqlite_url
from updatesync.site.database.expiry import ExpiredItems
from updatesync.site.database.replication import Replication
from updatesync.site.database.site_data import SiteData
from updatesync.site.database.status_messages import StatusMessages
from updatesync.site.database.store import (
    SiteDatabaseError,
    SiteStore,
    normal_site_code,
    now,
    read_time,
    upsert,
)
from updatesync.site.database.sups import SoftwareUpdatePoints
from updatesync.site.database.sync_state import SyncState
from updatesync.site.database.users import Users
from updatesync.site.database.webhook_deliveries import WebhookDeliveries
from updatesync.site.database.wsus_config import WsusConfiguration
from updatesync.updateserver.database import OPEN_ERRORS, database_name, describe_database_error

SITE_REBUILD = (
    "start the site again to create a new one (a child site gets its data again from its parent)"
)


class SiteDatabase:
    """The database of one site; `site_code` is the site it belongs to."""

    def __init__(self, engine: Engine, site_code: str) -> None:
        self.engine = engine
        self.site_code = site_code
        self.store = SiteStore(engine, site_code)
        self.sync = SyncState(self.store)
        self.content = Content(self.store)
        self.replication = Replication(self.store)
        self.messages = StatusMessages(self.store)
        self.alerts = Alerts(self.store)
        self.site_data = SiteData(self.store)
        self.sups = SoftwareUpdatePoints(self.store, self.content)
        self.users = Users(self.store)
        self.webhooks = WebhookDeliveries(self.store)
        self.wsus = WsusConfiguration(self.store)
        self.expiry = ExpiredItems(self.store)

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
            if folder.exists() and not folder.is_dir():
                raise SiteDatabaseError(f"{folder}: is a file, not the site's data folder")
            url = sqlite_url(private_dir(folder))
        try:
            engine = create_site_engine(url)
        except OPEN_ERRORS as exc:
            raise SiteDatabaseError(
                describe_database_error(exc, database_name(url), "site database", SITE_REBUILD)
            ) from exc
        try:
            migrate(engine)
            code = cls._identity(engine, url, site_code)
            with engine.begin() as conn:
                upsert(conn, t.update_sync_status, {"site_code": code}, {})
        except OPEN_ERRORS as exc:
            engine.dispose()
            raise SiteDatabaseError(
                describe_database_error(exc, database_name(url), "site database", SITE_REBUILD)
            ) from exc
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, code)

    @staticmethod
    def _identity(engine: Engine, where: str, site_code: str | None) -> str:
        wanted = normal_site_code(site_code) if site_code is not None else None
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
                        insert(t.site_identity).values(id=1, site_code=wanted, created_at=now())
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

    def set_up_time(self) -> datetime:
        """When this site database was created: the alert watcher does not call a site that
        never synced overdue before it has had `overdue_after` to do so."""
        with self.store.read() as conn:
            value = conn.execute(select(t.site_identity.c.created_at)).scalar_one()
        return read_time(value)  # type: ignore[return-value]  # NOT NULL column

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> SiteDatabase:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
