"""Alert occurrences kept in a site database: raise, cancel, list.

The alert model (kinds, states, texts) is `updatesync.site.watch.alerts`; at most one
occurrence of a kind is raised per site and instance at a time (a unique index), so raising
a raised alert returns it unchanged, even when callers race.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from updatesync.site.database import schema as t
from updatesync.site.database.store import SiteDatabaseError, SiteStore, now, read_time, utc
from updatesync.site.watch.alerts import Alert, AlertState, AlertType, alert_text


def _alert(row: Any) -> Alert:
    return Alert(
        alert_id=row.alert_id,
        alert_type=AlertType(row.alert_type),
        site_code=row.site_code,
        instance=row.instance,
        state=AlertState(row.state),
        raised_at=read_time(row.raised_at),  # type: ignore[arg-type]  # NOT NULL column
        canceled_at=read_time(row.canceled_at),
        text=row.text,
    )


class Alerts:
    """The alert occurrences of a site database (`SiteDatabase.alerts`)."""

    def __init__(self, store: SiteStore) -> None:
        self._store = store

    def _raised(self, alert_type: AlertType, site: str, instance: str) -> Alert | None:
        a = t.alert
        query = select(a).where(
            a.c.alert_type == alert_type.value,
            a.c.site_code == site,
            a.c.instance == instance,
            a.c.state == AlertState.RAISED.value,
        )
        with self._store.read() as conn:
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
        site = self._store.site(site_code)
        if text is not None and not text.strip():
            raise SiteDatabaseError(f"alert {kind} for {instance}: the text is empty")
        for _ in range(3):
            existing = self._raised(kind, site, instance)
            if existing is not None:
                return existing
            when = utc(at or now(), f"alert {kind}")
            text = text if text is not None else alert_text(kind, instance)
            try:
                with self._store.begin() as conn:
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
        site = self._store.site(site_code)
        when = utc(at or now(), f"alert {kind}")
        a = t.alert
        query = select(a.c.alert_id).where(
            a.c.alert_type == kind.value,
            a.c.site_code == site,
            a.c.state == AlertState.RAISED.value,
        )
        if instance is not None:
            query = query.where(a.c.instance == instance)
        with self._store.read() as conn:
            ids = list(conn.execute(query).scalars())
        canceled: list[int] = []
        with self._store.begin() as conn:
            for alert_id in ids:
                done = conn.execute(
                    update(a)
                    .where(a.c.alert_id == alert_id, a.c.state == AlertState.RAISED.value)
                    .values(state=AlertState.CANCELED.value, canceled_at=when)
                ).rowcount
                if done:
                    canceled.append(alert_id)
        with self._store.read() as conn:
            rows = conn.execute(select(a).where(a.c.alert_id.in_(canceled)).order_by(a.c.alert_id))
            return [_alert(r) for r in rows]

    def find(
        self,
        *,
        site_code: str | None = None,
        alert_type: AlertType | str | None = None,
        state: AlertState | str | None = None,
    ) -> list[Alert]:
        """Alert occurrences, newest raised first; no filter means every site."""
        a = t.alert
        query = select(a).order_by(a.c.raised_at.desc(), a.c.alert_id.desc())
        if site_code is not None:
            query = query.where(a.c.site_code == site_code.upper())
        if alert_type is not None:
            query = query.where(a.c.alert_type == AlertType(alert_type).value)
        if state is not None:
            query = query.where(a.c.state == AlertState(state).value)
        with self._store.read() as conn:
            return [_alert(r) for r in conn.execute(query)]
