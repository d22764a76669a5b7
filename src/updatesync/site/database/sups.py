"""The software update points of a site: the site control file's list, each SUP's
`SMS_SUPSyncStatus` and its last consistency audit, and the site-wide client policy that
tells clients where the SUPs are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from updatesync.site.database import schema as t
from updatesync.site.database.content import Content, unknown_source
from updatesync.site.database.models import (
    MICROSOFT_UPDATE,
    ClientPolicy,
    SoftwareUpdatePoint,
    SUPAudit,
    SUPLocation,
    SUPSyncStatus,
    sup_location,
)
from updatesync.site.database.store import (
    SiteDatabaseError,
    SiteStore,
    normal_site_code,
    now,
    read_time,
    upsert,
    utc,
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


class SoftwareUpdatePoints:
    """The SUPs of a site database, their sync status and the client policy
    (`SiteDatabase.sups`). `content` gives the update sources a policy may name."""

    def __init__(self, store: SiteStore, content: Content) -> None:
        self._store = store
        self._content = content

    # -- site control: software update points -----------------------------------------

    def replace(
        self, sups: Sequence[SoftwareUpdatePoint], *, site_code: str | None = None
    ) -> list[SoftwareUpdatePoint]:
        """Replace the site's SUPs by `sups`, in install order: the first is the default SUP."""
        site = self._store.site(site_code)
        seen: set[str] = set()
        for sup in sups:
            if sup.fqdn.lower() in seen:
                raise SiteDatabaseError(f"site {site}: SUP {sup.fqdn} is listed twice")
            seen.add(sup.fqdn.lower())
        sc = t.site_control
        with self._store.begin() as conn:
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
        return self.find(site_code=site)

    def find(self, *, site_code: str | None = None) -> list[SoftwareUpdatePoint]:
        """The site's SUPs in install order (the default SUP first)."""
        site = self._store.site(site_code)
        sc = t.site_control
        query = select(sc).where(sc.c.site_code == site).order_by(sc.c.install_order)
        with self._store.read() as conn:
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

    def set_sync_status(self, status: SUPSyncStatus) -> None:
        """Write the sync status of one SUP (its row is made if missing)."""
        site = normal_site_code(status.site_code)
        values = {
            f.name: getattr(status, f.name)
            for f in fields(status)
            if f.name not in ("site_code", "wsus_server_name")
        }
        for name, value in values.items():
            if isinstance(value, datetime):
                values[name] = utc(value, f"SUP sync status of {status.wsus_server_name}: {name}")
        with self._store.begin() as conn:
            upsert(
                conn,
                t.supsync_status,
                {"site_code": site, "wsus_server_name": status.wsus_server_name},
                values,
            )

    def sync_statuses(self, *, site_code: str | None = None) -> list[SUPSyncStatus]:
        """SUP sync status rows, by site and server; every site when `site_code` is None."""
        ss = t.supsync_status
        query = select(ss).order_by(ss.c.site_code, ss.c.wsus_server_name)
        if site_code is not None:
            query = query.where(ss.c.site_code == site_code.upper())
        with self._store.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            SUPSyncStatus(
                **{k: read_time(v) if isinstance(v, datetime) else v for k, v in row.items()}
            )
            for row in rows
        ]

    # -- the consistency audit ---------------------------------------------------------

    def set_audit(self, audit: SUPAudit) -> None:
        """Keep `audit` as the last one of its SUP."""
        site = normal_site_code(audit.site_code)
        values = {
            f.name: getattr(audit, f.name)
            for f in fields(audit)
            if f.name not in ("site_code", "wsus_server_name")
        }
        values["checked_at"] = utc(audit.checked_at, f"audit of {audit.wsus_server_name}")
        with self._store.begin() as conn:
            upsert(
                conn,
                t.sup_audit,
                {"site_code": site, "wsus_server_name": audit.wsus_server_name},
                values,
            )

    def audits(self, *, site_code: str | None = None) -> list[SUPAudit]:
        """The last audit of each SUP (of `site_code`, else of every site)."""
        a = t.sup_audit
        query = select(a).order_by(a.c.site_code, a.c.wsus_server_name)
        if site_code is not None:
            query = query.where(a.c.site_code == site_code.upper())
        with self._store.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            SUPAudit(**{k: read_time(v) if isinstance(v, datetime) else v for k, v in row.items()})
            for row in rows
        ]

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
        site = self._store.site(site_code)
        where = f"client policy of site {site}"
        source = update_source_id.upper()
        if isinstance(content_version, bool) or not isinstance(content_version, int):
            raise SiteDatabaseError(f"{where}: content version {content_version!r} is not a number")
        if not any(s.unique_id == source for s in self._content.update_sources()):
            raise unknown_source(self._store.site_code, update_source_id)
        if locations is None:
            held = tuple(sup_location(s) for s in self.find(site_code=site) if s.active)
        else:
            held = tuple(_sup_location(x, where) for x in locations)
        when = utc(published_at or now(), where)
        values = {
            "update_source_id": source,
            "content_version": content_version,
            "sup_locations": [dict(x) for x in held],
            "published_at": when,
        }
        with self._store.begin() as conn:
            upsert(conn, t.client_policy, {"site_code": site}, values)
        return ClientPolicy(site, source, content_version, held, when)

    def client_policy(self, *, site_code: str | None = None) -> ClientPolicy | None:
        """The site's published client policy, or None before the first publication."""
        cp = t.client_policy
        site = self._store.site(site_code)
        with self._store.read() as conn:
            row = conn.execute(select(cp).where(cp.c.site_code == site)).first()
        if row is None:
            return None
        return ClientPolicy(
            site_code=row.site_code,
            update_source_id=row.update_source_id,
            content_version=row.content_version,
            locations=tuple(_sup_location(x, f"stored {site}") for x in row.sup_locations),
            published_at=read_time(row.published_at),  # type: ignore[arg-type]  # NOT NULL
        )
