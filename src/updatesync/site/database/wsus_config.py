"""What the site's WSUS configuration manager reads and records (`SiteDatabase.wsus`): the
subscription its software update points are to sync, and each SUP's configuration state.

The subscription is ConfigMgr's CI_UpdateCategorySubscription in one row per site: the
products and classifications (WSUS category ids) and the languages, with a `version` that
rises with every change. The database monitor drops `<version>.CSB` into `WSUSMgr.box` for a
version it has not notified yet (as SMSDBMON does for SubNotify_iu_WCM), which wakes the
configuration manager.

A SUP's state is WCM.log's `WSUS_CONFIG_...` value (`ConfigState`); the sync manager syncs
only a SUP whose state is WSUS_CONFIG_SUCCESS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from sqlalchemy import select, update

from updatesync.site.database import schema as t
from updatesync.site.database.store import (
    SiteDatabaseError,
    SiteStore,
    now,
    read_time,
    upsert,
    utc,
)


class ConfigState(IntEnum):
    """The WSUS configuration manager's states, as WCM.log names them."""

    WSUS_CONFIG_NONE = 0
    WSUS_CONFIG_PENDING = 1
    WSUS_CONFIG_SUCCESS = 2
    WSUS_CONFIG_FAILED = 3
    WSUS_CONFIG_SUBSCRIPTION_PENDING = 4


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
        return _normal(self) == _normal(other)


def _normal(s: WsusSubscription) -> tuple[frozenset[str], ...]:
    return (
        frozenset(x.lower() for x in s.products),
        frozenset(x.lower() for x in s.classifications),
        frozenset(x.lower() for x in s.languages),
    )


@dataclass(frozen=True, slots=True)
class SupConfiguration:
    """One SUP's configuration state (`wsus_configuration`)."""

    wsus_server_name: str
    state: ConfigState
    state_time: datetime
    last_error: str | None
    last_error_code: int | None
    """The HRESULT of a failed configuration (None: none known)."""
    subscription_version: int | None


class WsusConfiguration:
    """The subscription and the SUPs' configuration states of a site database."""

    def __init__(self, store: SiteStore) -> None:
        self._store = store

    # -- the subscription ------------------------------------------------------------------

    def subscription(self, *, site_code: str | None = None) -> WsusSubscription:
        site = self._store.site(site_code)
        ws = t.wsus_subscription
        with self._store.read() as conn:
            row = conn.execute(select(ws).where(ws.c.site_code == site)).first()
        if row is None:
            return WsusSubscription()
        return WsusSubscription(
            tuple(row.products),
            tuple(row.classifications),
            tuple(row.languages),
            row.version,
            read_time(row.changed_at),
        )

    def set_subscription(
        self,
        products: tuple[str, ...],
        classifications: tuple[str, ...],
        languages: tuple[str, ...],
        *,
        at: datetime | None = None,
        site_code: str | None = None,
    ) -> WsusSubscription:
        """Store the subscription; its version rises only when it differs from the stored
        one (the same lists again change nothing and wake nobody)."""
        site = self._store.site(site_code)
        for name, values in (
            ("products", products),
            ("classifications", classifications),
            ("languages", languages),
        ):
            if not all(isinstance(v, str) and v and len(v) <= 64 for v in values):
                raise SiteDatabaseError(
                    f"subscription of site {site}: {name} must be ids or codes of at most 64 "
                    f"characters, not {list(values)!r}"
                )
        wanted = WsusSubscription(tuple(products), tuple(classifications), tuple(languages))
        when = utc(at or now(), f"subscription of site {site}")
        ws = t.wsus_subscription
        with self._store.begin() as conn:
            # The UPDATE first: the row (or the table, on SQLite) is locked before it is read.
            conn.execute(update(ws).where(ws.c.site_code == site).values(site_code=site))
            row = conn.execute(select(ws).where(ws.c.site_code == site)).first()
            held = (
                WsusSubscription(
                    tuple(row.products), tuple(row.classifications), tuple(row.languages)
                )
                if row is not None
                else None
            )
            if held is not None and held.same_as(wanted):
                return self._with_version(held, row.version, read_time(row.changed_at))
            version = (row.version if row is not None else 0) + 1
            upsert(
                conn,
                ws,
                {"site_code": site},
                {
                    "products": list(products),
                    "classifications": list(classifications),
                    "languages": list(languages),
                    "version": version,
                    "changed_at": when,
                },
            )
        return self._with_version(wanted, version, when)

    @staticmethod
    def _with_version(s: WsusSubscription, version: int, at: datetime | None) -> WsusSubscription:
        return WsusSubscription(s.products, s.classifications, s.languages, version, at)

    # -- each SUP's configuration state -----------------------------------------------------

    def record_state(
        self,
        fqdn: str,
        state: ConfigState,
        *,
        error: str | None = None,
        error_code: int | None = None,
        subscription_version: int | None = None,
        at: datetime | None = None,
        site_code: str | None = None,
    ) -> None:
        """Set a SUP's configuration state (and, on success, the version it applied; on a
        failure, its error and HRESULT)."""
        site = self._store.site(site_code)
        values: dict[str, object] = {
            "state": int(state),
            "state_time": utc(at or now(), f"configuration state of {fqdn}"),
            "last_error": error,
            "last_error_code": error_code,
        }
        if subscription_version is not None:
            values["subscription_version"] = subscription_version
        with self._store.begin() as conn:
            upsert(
                conn,
                t.wsus_configuration,
                {"site_code": site, "wsus_server_name": fqdn.lower()},
                values,
            )

    def state(self, fqdn: str, *, site_code: str | None = None) -> SupConfiguration | None:
        """A SUP's configuration state; None when the manager never configured it."""
        site = self._store.site(site_code)
        wc = t.wsus_configuration
        query = select(wc).where(wc.c.site_code == site, wc.c.wsus_server_name == fqdn.lower())
        with self._store.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return SupConfiguration(
            row.wsus_server_name,
            ConfigState(row.state),
            read_time(row.state_time),  # type: ignore[arg-type]  # NOT NULL
            row.last_error,
            row.last_error_code,
            row.subscription_version,
        )
