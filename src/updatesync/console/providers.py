"""The console's only source of data: each site's SMS Provider, read over HTTP.

The console holds no database. For every page it asks the providers of the hierarchy's sites
(`hierarchy.site(code).url` + `/api/...`), all at once, with a short time-out; a provider
that does not answer, or answers something that is not its API, becomes a `ProviderDown`
that names the site, the address and what happened, and the page shows that site grey.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from updatesync.config import Hierarchy, Site

DEFAULT_TIMEOUT = 5.0
"""Seconds the console waits for a provider before it shows the site as unreachable."""

MAX_MESSAGES = 1000
"""The most status messages one provider gives in one answer."""

T = TypeVar("T")


class ProviderDown(Exception):
    """A site's SMS Provider did not answer, or not with its API."""

    def __init__(self, code: str, url: str, what: str) -> None:
        self.code = code
        self.url = url
        self.what = what
        super().__init__(f"The SMS Provider of site {code} at {url} {what}")


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time from the provider's JSON, in UTC; None for null."""
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_text(moment: datetime) -> str:
    """A time as the providers take it in a query: ISO 8601 with Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class SupSnapshot:
    """One SUP of a site, as configured and as its site's provider reports it."""

    fqdn: str
    default: bool
    internet_facing: bool
    status: Mapping[str, Any] | None
    """The SUP's SMS_SUPSyncStatus (SPEC section 5 names), None before its first sync."""


@dataclass(frozen=True)
class SiteSnapshot:
    """What one site's provider said when the console asked."""

    site: Site
    url: str
    status: Mapping[str, Any] | None = None
    """The site's Update_SyncStatus; None when the provider did not answer."""
    sups: tuple[SupSnapshot, ...] = ()
    content_version: int | None = None
    last_sync: Mapping[str, Any] | None = None
    """The last sync the site server finished since it started (succeeded, content_version,
    items_updated, cis_changed, seconds, error), from `/syncs`."""
    syncs_completed: int = 0
    error: str | None = None
    """Why the site is unreachable; None when its provider answered."""

    @property
    def code(self) -> str:
        return self.site.code

    @property
    def reachable(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Gathered:
    """Items merged from several providers, and the sites that did not answer."""

    items: list[dict[str, Any]] = field(default_factory=list)
    down: list[ProviderDown] = field(default_factory=list)


class Providers:
    """The SMS Providers of one hierarchy, asked over HTTP with the console's `auth`."""

    def __init__(
        self,
        hierarchy: Hierarchy,
        *,
        auth: httpx.Auth | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """`verify`: what each provider's certificate is verified with (the hierarchy's CA)."""
        self.hierarchy = hierarchy
        self._http = httpx.AsyncClient(
            auth=auth, timeout=timeout, transport=transport, verify=verify
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Providers:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # -- one call ------------------------------------------------------------------------

    def url(self, code: str) -> str:
        return self.hierarchy.site(code).url.rstrip("/")

    async def call(
        self,
        code: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        json: Any = None,
        missing_ok: bool = False,
    ) -> Any:
        """The JSON answer of site `code`'s provider; None for a 404 when `missing_ok`."""
        base = self.url(code)
        try:
            answer = await self._http.request(method, base + path, params=params, json=json)
        except httpx.TimeoutException:
            raise ProviderDown(code, base, f"did not answer {path} in time") from None
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise ProviderDown(code, base, f"cannot be reached ({reason})") from None
        if missing_ok and answer.status_code == 404:
            return None
        try:
            body = answer.json()
        except ValueError:
            raise ProviderDown(
                code, base, f"answered {path} with HTTP {answer.status_code}, not JSON"
            ) from None
        if answer.status_code >= 400:
            detail = body.get("detail") if isinstance(body, dict) else body
            raise ProviderDown(
                code, base, f"refused {method} {path} (HTTP {answer.status_code}: {detail})"
            )
        return body

    # -- what the pages need -----------------------------------------------------------------

    async def snapshot(self, code: str) -> SiteSnapshot:
        """Site `code` now: sync status, its SUPs' status, content version, last sync."""
        site = self.hierarchy.site(code)
        prefix = f"/api/sites/{site.code}"
        try:
            status, sup_rows, version, syncs = await asyncio.gather(
                self.call(site.code, "GET", prefix + "/sync-status"),
                self.call(site.code, "GET", prefix + "/sup-sync-status", missing_ok=True),
                self.call(site.code, "GET", prefix + "/content-version", missing_ok=True),
                self.call(site.code, "GET", prefix + "/syncs", missing_ok=True),
            )
        except ProviderDown as exc:
            return SiteSnapshot(
                site=site, url=self.url(site.code), sups=_sups(site, []), error=str(exc)
            )
        return SiteSnapshot(
            site=site,
            url=self.url(site.code),
            status=status,
            sups=_sups(site, sup_rows or []),
            content_version=int(version["ContentVersion"]) if version else None,
            last_sync=(syncs or {}).get("last"),
            syncs_completed=int((syncs or {}).get("completed", 0)),
        )

    async def snapshots(self) -> list[SiteSnapshot]:
        """Every site, top-down, asked at the same time."""
        return list(await asyncio.gather(*(self.snapshot(s.code) for s in self.hierarchy.walk())))

    async def gather(
        self,
        path: str,
        params: Sequence[tuple[str, Any]],
        *,
        codes: Iterable[str] | None = None,
        key: tuple[str, ...],
    ) -> Gathered:
        """The lists that `path` gives at every site's provider (or those of `codes`), merged:
        an item that several providers hold (same `key` fields; a parent's provider holds
        the status messages and raised alerts of the sites below it) is kept once, the
        site's own answer rather than a copy replicated up (`AsOf` set). A page
        (`{"count", "value", "next"}`, the status messages) gives its `value`: the first
        page, the newest, which is what the console shows."""
        names = list(codes) if codes is not None else [s.code for s in self.hierarchy.walk()]
        answers = await asyncio.gather(
            *(_caught(self.call(code, "GET", path, params=params)) for code in names)
        )
        merged: dict[tuple[Any, ...], dict[str, Any]] = {}
        down: list[ProviderDown] = []
        for answer in answers:
            if isinstance(answer, ProviderDown):
                down.append(answer)
                continue
            for item in answer["value"] if isinstance(answer, dict) else answer:
                known = merged.setdefault(tuple(_hashable(item.get(k)) for k in key), item)
                if known.get("AsOf") and not item.get("AsOf"):  # the site's own, live, wins
                    merged[tuple(_hashable(item.get(k)) for k in key)] = item
        return Gathered(list(merged.values()), down)

    async def status_messages(
        self, params: Sequence[tuple[str, Any]], *, codes: Iterable[str] | None = None
    ) -> Gathered:
        """Status messages of every site, newest first (each provider's first page)."""
        found = await self.gather(
            "/api/status-messages",
            params,
            codes=codes,
            key=("SiteCode", "MessageID", "Time", "MachineName", "InsertionStrings"),
        )
        for item in found.items:
            item["Time"] = parse_time(item["Time"])
        found.items.sort(key=lambda m: m["Time"], reverse=True)
        return found

    async def alerts(self, params: Sequence[tuple[str, Any]]) -> Gathered:
        """Alert occurrences of every site, newest raised first."""
        found = await self.gather(
            "/api/alerts", params, key=("SiteCode", "AlertID", "AlertType", "Instance")
        )
        for item in found.items:
            item["RaisedAt"] = parse_time(item["RaisedAt"])
            item["CanceledAt"] = parse_time(item.get("CanceledAt"))
        found.items.sort(key=lambda a: a["RaisedAt"], reverse=True)
        return found

    async def sync_now(self, *, full: bool) -> Mapping[str, Any]:
        """SyncNow at the top-level site: what the console's sync buttons do."""
        top = self.hierarchy.top.code
        return await self.call(top, "POST", f"/api/sites/{top}/sync", json={"full": full})


def _sups(site: Site, rows: Sequence[Mapping[str, Any]]) -> tuple[SupSnapshot, ...]:
    """The site's SUPs as the hierarchy file lists them, each with its status row if any."""
    held = {str(r["WSUSServerName"]).lower(): r for r in rows}
    return tuple(
        SupSnapshot(
            fqdn=sup.fqdn,
            default=index == 0,
            internet_facing=sup.internet_facing,
            status=held.get(sup.fqdn.lower()),
        )
        for index, sup in enumerate(site.sups)
    )


async def _caught(call: Awaitable[T]) -> T | ProviderDown:
    try:
        return await call
    except ProviderDown as exc:
        return exc


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value
