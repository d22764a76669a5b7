"""The hierarchy-wide side of the SMS Provider: answers about the sites below its own.

As ConfigMgr's central administration site sees every site of the hierarchy through the site
data its children replicate up to it, a parent site's provider answers for each site below
it from what its site database holds of them (`db.site_data`, pulled from each child by
`replication/site_data.py`), never by calling that site's provider. Each such answer says
how fresh it is (`AsOf`: when it was current at its own site; `ReceivedAt`: when it arrived
here; `Stale`: older than the provider's limit, or the last pull from the child it comes
through failed, or the site in between already found it stale).

`pictures(db, at)` is also what a site sends up to its parent: its own picture (the views
its provider gives, without the freshness fields) and the pictures it holds of the sites
below it, so a central administration site sees its grandchildren through its primaries.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from updatesync.site.api.views import (
    FRESHNESS,
    AlertView,
    SiteView,
    SUPSyncStatusView,
    SyncStatusView,
    alert_view,
    audit_fields,
    sync_status_view,
)
from updatesync.site.database.site_data import ReplicatedSite, SitePicture
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.watch.alerts import AlertState

DEFAULT_STALE_AFTER = timedelta(minutes=10)
"""Site data older than this is answered with `Stale: true`."""


def _json(view: Any) -> dict[str, Any]:
    data: dict[str, Any] = view.model_dump(mode="json", exclude=set(FRESHNESS))
    return data


def own_picture(db: SiteDatabase, at: datetime, next_retry: datetime | None = None) -> SitePicture:
    """This site's picture now, as its provider answers it; `next_retry`: when its site
    server retries its last, failed sync."""
    code = db.site_code
    audits = {a.wsus_server_name: a for a in db.sups.audits(site_code=code)}
    return SitePicture(
        site_code=code,
        as_of=at,
        sync_status=_json(sync_status_view(db.sync.status(site_code=code), next_retry)),
        sup_sync_status=[
            _json(SUPSyncStatusView.of(r, **audit_fields(audits.get(r.wsus_server_name))))
            for r in db.sups.sync_statuses(site_code=code)
        ],
        alerts=[
            _json(alert_view(a, db))
            for a in db.alerts.find(site_code=code, state=AlertState.RAISED)
        ],
    )


def check_picture(picture: SitePicture) -> None:
    """`ValueError` saying what is wrong unless `picture` reads as this provider's views."""
    where = f"site {picture.site_code}"
    try:
        if picture.sync_status is not None:
            SyncStatusView.model_validate(picture.sync_status)
        for row in picture.sup_sync_status:
            SUPSyncStatusView.model_validate(row)
        for alert in picture.alerts:
            AlertView.model_validate(alert)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(
            f"{where}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        ) from None


class Freshness:
    """Judges the site data this site holds of the sites below it."""

    def __init__(self, db: SiteDatabase, now: datetime, stale_after: timedelta) -> None:
        self.db = db
        self.now = now
        self.stale_after = stale_after
        self._links = {link.child_site: link for link in db.site_data.links()}

    def stale(self, site: ReplicatedSite) -> bool:
        link = self._links.get(site.via_site)
        failing = link is not None and link.consecutive_failures > 0
        old = self.now - site.picture.as_of > self.stale_after
        return site.picture.stale_below or failing or old

    def fields(self, site: ReplicatedSite) -> dict[str, Any]:
        return {
            "AsOf": site.picture.as_of,
            "ReceivedAt": site.received_at,
            "Stale": self.stale(site),
        }

    def last_error(self, site: ReplicatedSite) -> str | None:
        link = self._links.get(site.via_site)
        return link.last_error_text if link is not None else None


def pictures(
    db: SiteDatabase, at: datetime, stale_after: timedelta, next_retry: datetime | None = None
) -> list[SitePicture]:
    """What this site sends up to its parent: its own picture (`next_retry`: when its site
    server retries its last, failed sync), then those it holds of the sites below it, each
    marked `stale_below` when this site finds it stale."""
    fresh = Freshness(db, at, stale_after)
    held = [
        SitePicture(
            site_code=s.site_code,
            as_of=s.picture.as_of,
            sync_status=s.picture.sync_status,
            sup_sync_status=s.picture.sup_sync_status,
            alerts=s.picture.alerts,
            stale_below=fresh.stale(s),
        )
        for s in db.site_data.sites()
    ]
    return [own_picture(db, at, next_retry), *held]


def sync_status(
    db: SiteDatabase, code: str, now: datetime, stale_after: timedelta
) -> SyncStatusView | None:
    """The sync status of site `code` below this one, as last replicated; None when this
    site holds none."""
    site = db.site_data.site(code)
    if site is None or site.picture.sync_status is None:
        return None
    fresh = Freshness(db, now, stale_after).fields(site)
    return SyncStatusView.model_validate(site.picture.sync_status | fresh)


def sup_sync_status(
    db: SiteDatabase, code: str, now: datetime, stale_after: timedelta
) -> list[SUPSyncStatusView] | None:
    """The SUP rows of site `code` below this one; None when this site holds no data of it."""
    site = db.site_data.site(code)
    if site is None:
        return None
    fresh = Freshness(db, now, stale_after).fields(site)
    return [SUPSyncStatusView.model_validate(row | fresh) for row in site.picture.sup_sync_status]


def alerts(
    db: SiteDatabase,
    *,
    site: str | None,
    state: AlertState | None,
    now: datetime,
    stale_after: timedelta,
) -> list[AlertView]:
    """The raised alerts of the sites below this one (with `site`, of that site only; none
    when `state` asks for canceled ones), as last replicated."""
    if state is not None and state is not AlertState.RAISED:
        return []
    fresh = Freshness(db, now, stale_after)
    wanted = site.strip().upper() if site else None
    return [
        AlertView.model_validate(alert | fresh.fields(s))
        for s in db.site_data.sites()
        if wanted is None or s.site_code == wanted
        for alert in s.picture.alerts
    ]


def site_list(db: SiteDatabase, now: datetime, stale_after: timedelta) -> list[SiteView]:
    """The provider's own site, then each site below it whose data it holds."""
    fresh = Freshness(db, now, stale_after)
    return [
        SiteView(SiteCode=db.site_code, Data="own"),
        *(
            SiteView(
                SiteCode=s.site_code,
                Data="replicated",
                Via=s.via_site,
                LastError=fresh.last_error(s),
                **fresh.fields(s),
            )
            for s in db.site_data.sites()
        ),
    ]
