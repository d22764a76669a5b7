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

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

from sqlalchemy import Connection, Row, select, update

from updatesync.site.database import schema as t
from updatesync.site.database.models import WsusSubscription, normal_subscription
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
        return _from_row(row)

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
        wanted = _checked(site, products, classifications, languages)
        when = utc(at or now(), f"subscription of site {site}")
        with self._store.begin() as conn:
            return write_subscription(conn, site, wanted, when)

    def apply_file_criteria(
        self,
        products: tuple[str, ...],
        classifications: tuple[str, ...],
        languages: tuple[str, ...],
        *,
        at: datetime | None = None,
        site_code: str | None = None,
    ) -> WsusSubscription:
        """The hierarchy file's criteria, read at the site server's start: stored when they
        differ from those the file gave last time (`file_digest`), else left alone, so a
        subscription changed since (at the top-level site's SMS Provider, or replicated
        from the parent) is not taken back by a restart with the same file."""
        site = self._store.site(site_code)
        wanted = _checked(site, products, classifications, languages)
        digest = criteria_digest(wanted)
        when = utc(at or now(), f"subscription of site {site}")
        ws = t.wsus_subscription
        with self._store.begin() as conn:
            conn.execute(update(ws).where(ws.c.site_code == site).values(site_code=site))
            row = conn.execute(select(ws).where(ws.c.site_code == site)).first()
            if row is not None and row.file_digest == digest:
                return _from_row(row)
            held = write_subscription(conn, site, wanted, when)
            conn.execute(update(ws).where(ws.c.site_code == site).values(file_digest=digest))
            return held

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


def _checked(
    site: str,
    products: tuple[str, ...],
    classifications: tuple[str, ...],
    languages: tuple[str, ...],
) -> WsusSubscription:
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
    return WsusSubscription(tuple(products), tuple(classifications), tuple(languages))


def criteria_digest(subscription: WsusSubscription) -> str:
    """A digest of the categories and languages of `subscription`, whatever their order or
    case (what `file_digest` holds)."""
    normal = [sorted(part) for part in normal_subscription(subscription)]
    return hashlib.sha256(json.dumps(normal).encode("ascii")).hexdigest()


def _from_row(row: Row[Any]) -> WsusSubscription:
    return WsusSubscription(
        tuple(row.products),
        tuple(row.classifications),
        tuple(row.languages),
        row.version,
        read_time(row.changed_at),
    )


def write_subscription(
    conn: Connection, site: str, wanted: WsusSubscription, when: datetime
) -> WsusSubscription:
    """Store `wanted` as `site`'s subscription in the open transaction; the version rises
    only when it differs from the stored one. Returns what is stored."""
    ws = t.wsus_subscription
    # The UPDATE first: the row (or the table, on SQLite) is locked before it is read.
    conn.execute(update(ws).where(ws.c.site_code == site).values(site_code=site))
    row = conn.execute(select(ws).where(ws.c.site_code == site)).first()
    if row is not None and _from_row(row).same_as(wanted):
        return _from_row(row)
    version = (row.version if row is not None else 0) + 1
    upsert(
        conn,
        ws,
        {"site_code": site},
        {
            "products": list(wanted.products),
            "classifications": list(wanted.classifications),
            "languages": list(wanted.languages),
            "version": version,
            "changed_at": when,
        },
    )
    return WsusSubscription(
        wanted.products, wanted.classifications, wanted.languages, version, when
    )


def read_subscription(conn: Connection, site: str) -> WsusSubscription | None:
    """`site`'s subscription as the open transaction sees it; None when none is stored."""
    ws = t.wsus_subscription
    row = conn.execute(select(ws).where(ws.c.site_code == site)).first()
    return None if row is None else _from_row(row)
