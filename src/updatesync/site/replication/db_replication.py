"""Database replication of configuration items (and their deletions), categories, users and
API tokens from a parent site to a child, over HTTP, pulled by the child (SPEC sections 1 and
3: "the CIs reach the child sites by database replication"; users and tokens are global data
the same way, so one token works at every site's provider).

- The parent answers `GET /site/v1/replication/changes?after=N&limit=L` (`replication_routes`)
  with one page of `db.replication.changes`: the categories, CIs (and CIs deleted), users and
  tokens written after its sequence N, its head sequence and its update sources' content
  versions, all from one snapshot. The routes check no signature: whoever mounts them puts
  them behind `auth.require_signature`.
- The child runs a `DatabaseReplicator`: a background thread that pulls pages on its interval
  (at once on `poke()`) and applies each with `db.replication.apply` (one transaction per
  page, which also records how far the link got, so an interrupted replication resumes from
  what was committed). `catch_up(timeout)` pulls now until the child
  holds everything the parent held, retrying with a back-off while the parent is down, and
  returns the parent's content version.
- Each pull records the link's check: ReplicationLinkStatus 0 (healthy) after a success; after
  a failure 1 (degraded), or 2 (error) once `LinkThresholds` are passed (by default 10
  failed pulls in a row, or 30 minutes of failing). The thresholds are chosen so that a
  parent restarting shows as degraded and clears at the next success, while a parent gone
  for good shows as an error within minutes of retrying.
  Each change of status is told to `on_status_change` (the site's alert watcher, so the
  `replication_link_degraded` alert is raised and canceled at once, not at its next round).
- The child writes what it did to a CMTrace log (component
  `SMS_REPLICATION_CONFIGURATION_MONITOR`): `Replicated 500 changes from CS1 (sequence 1500 of
  4000)`, `Replication link to CS1 is healthy ...`, failures with the parent's URL.
"""

from __future__ import annotations

import contextlib
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from updatesync.config.fault_injection import fault_point
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.retry_policy import DB_REPLICATION
from updatesync.site.database.models import (
    MICROSOFT_UPDATE,
    Category,
    ConfigurationItem,
    LinkStatus,
    LocalizedProperty,
    ReplicationLink,
    ReplicationPage,
    TokenRecord,
    UpdateSource,
    UserRecord,
    WsusSubscription,
)
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError

CHANGES_PATH = "/site/v1/replication/changes"
DEFAULT_PAGE = 500
MAX_PAGE = 1000
"""Rows per page at most; a larger `limit` is served as this many."""


# -- the page on the wire ---------------------------------------------------------------------


def page_to_json(page: ReplicationPage) -> dict[str, Any]:
    """A page as the parent answers it."""
    return {
        "site": page.site_code,
        "after": page.after,
        "last_seq": page.last_seq,
        "head_seq": page.head_seq,
        "update_sources": [
            {"unique_id": s.unique_id, "name": s.name, "content_version": s.content_version}
            for s in page.update_sources
        ],
        "categories": [
            {
                "category_id": c.category_id,
                "category_type": c.category_type,
                "title": c.title,
                "parent_id": c.parent_id,
            }
            for c in page.categories
        ],
        "configuration_items": [
            {
                **item.content(),
                "date_revised": item.date_revised.isoformat() if item.date_revised else None,
                "localized": None
                if item.localized is None
                else [
                    {
                        "language": p.language,
                        "locale_id": p.locale_id,
                        "display_name": p.display_name,
                        "description": p.description,
                    }
                    for p in item.localized
                ],
            }
            for item in page.items
        ],
        "users": [
            {
                "name": u.name,
                "role": u.role,
                "password_hash": u.password_hash,
                "created_at": u.created_at.isoformat(),
                "removed_at": _iso(u.removed_at),
            }
            for u in page.users
        ],
        "tokens": [
            {
                "token_id": k.token_id,
                "user_name": k.user_name,
                "kind": k.kind,
                "secret_hash": k.secret_hash,
                "created_at": k.created_at.isoformat(),
                "expires_at": _iso(k.expires_at),
                "revoked_at": _iso(k.revoked_at),
            }
            for k in page.tokens
        ],
        "deleted_items": list(page.deleted),
        "subscription": None
        if page.subscription is None
        else {
            "products": list(page.subscription.products),
            "classifications": list(page.subscription.classifications),
            "languages": list(page.subscription.languages),
            "version": page.subscription.version,
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def _user_from_json(data: Mapping[str, Any]) -> UserRecord:
    hashed = data.get("password_hash")
    return UserRecord(
        name=str(data["name"]),
        role=str(data["role"]),
        password_hash=str(hashed) if hashed else None,
        created_at=datetime.fromisoformat(str(data["created_at"])),
        removed_at=_time(data.get("removed_at")),
    )


def _token_from_json(data: Mapping[str, Any]) -> TokenRecord:
    return TokenRecord(
        token_id=str(data["token_id"]),
        user_name=str(data["user_name"]),
        kind=str(data["kind"]),
        secret_hash=str(data["secret_hash"]),
        created_at=datetime.fromisoformat(str(data["created_at"])),
        expires_at=_time(data.get("expires_at")),
        revoked_at=_time(data.get("revoked_at")),
    )


def _number(data: Mapping[str, Any], name: str) -> int:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} is {value!r}, not a whole number >= 0")
    return value


def _ci_from_json(data: Mapping[str, Any]) -> ConfigurationItem:
    revised = data.get("date_revised")
    return ConfigurationItem(
        update_id=str(data["update_id"]),
        revision=int(data["revision"]),
        title=str(data["title"]),
        xml_sha256=str(data["xml_sha256"]),
        kb_article=data.get("kb_article"),
        bulletin=data.get("bulletin"),
        severity=data.get("severity"),
        creation_date=data.get("creation_date"),
        products=tuple(str(p) for p in data.get("products") or ()),
        classifications=tuple(str(c) for c in data.get("classifications") or ()),
        is_superseded=bool(data.get("is_superseded")),
        is_expired=bool(data.get("is_expired")),
        date_revised=datetime.fromisoformat(revised) if revised else None,
        localized=_localized_from_json(data.get("localized")),
    )


def _localized_from_json(data: Any) -> tuple[LocalizedProperty, ...] | None:
    """A CI's localized properties on the wire; None from a parent that sends none."""
    if data is None:
        return None
    return tuple(
        LocalizedProperty(
            str(p["language"]).lower(),
            int(p["locale_id"]),
            str(p["display_name"]),
            None if p.get("description") is None else str(p["description"]),
        )
        for p in data
    )


def _update_id(value: Any) -> str:
    text = str(value).lower()
    if len(text) != 36 or text.count("-") != 4:
        raise ValueError(f"deleted item {value!r} is not an update id")
    return text


def _subscription_from_json(data: Any) -> WsusSubscription | None:
    if data is None:
        return None  # a parent that does not send its subscription
    if not isinstance(data, Mapping):
        raise ValueError(f"subscription is {data!r}, not an object")

    def codes(name: str) -> tuple[str, ...]:
        values = data[name]
        if not isinstance(values, list) or not all(
            isinstance(v, str) and 0 < len(v) <= 64 for v in values
        ):
            raise ValueError(f"subscription {name} is {values!r}, not a list of ids or codes")
        return tuple(values)

    return WsusSubscription(
        codes("products"), codes("classifications"), codes("languages"), _number(data, "version")
    )


def page_from_json(data: Any) -> ReplicationPage:
    """A page read back from the parent's answer; `ValueError` saying what is wrong."""
    if not isinstance(data, Mapping):
        raise ValueError(f"the answer is a JSON {type(data).__name__}, not an object")
    try:
        site = data["site"]
        if not isinstance(site, str):
            raise ValueError(f"site is {site!r}, not a site code")
        return ReplicationPage(
            site_code=site,
            after=_number(data, "after"),
            last_seq=_number(data, "last_seq"),
            head_seq=_number(data, "head_seq"),
            update_sources=tuple(
                UpdateSource(str(s["unique_id"]), str(s["name"]), int(s["content_version"]))
                for s in data["update_sources"]
            ),
            categories=tuple(
                Category(
                    str(c["category_id"]),
                    str(c["category_type"]),
                    str(c["title"]),
                    c.get("parent_id"),
                )
                for c in data["categories"]
            ),
            items=tuple(_ci_from_json(item) for item in data["configuration_items"]),
            users=tuple(_user_from_json(u) for u in data.get("users") or ()),
            tokens=tuple(_token_from_json(k) for k in data.get("tokens") or ()),
            deleted=tuple(_update_id(d) for d in data.get("deleted_items") or ()),
            subscription=_subscription_from_json(data.get("subscription")),
        )
    except KeyError as exc:
        raise ValueError(f"the page lacks the field {exc}") from None
    except (TypeError, AttributeError) as exc:
        raise ValueError(f"a field of the page has the wrong shape: {exc}") from None


# -- the parent's side: routes ----------------------------------------------------------------


class _BadParameter(Exception):
    pass


def _query_int(request: Request, name: str, default: int, minimum: int, meaning: str) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:
        raise _BadParameter(
            f"parameter {name}={raw!r} is not allowed: give a whole number from {minimum} "
            f"({meaning})"
        )
    return int(raw)


def replication_routes(db: SiteDatabase) -> list[Route]:
    """`GET /site/v1/replication/changes?after=N&limit=L`: one page of the site's changes
    after sequence N (default 0), at most L rows (default 500; more than 1000 is served as
    1000). Bad parameters get 400 with a JSON `error` naming the parameter."""

    async def changes(request: Request) -> JSONResponse:
        try:
            after = _query_int(
                request, "after", 0, 0, "the sequence the caller holds changes up to"
            )
            limit = _query_int(
                request,
                "limit",
                DEFAULT_PAGE,
                1,
                f"rows per page; more than {MAX_PAGE} is served as {MAX_PAGE}",
            )
        except _BadParameter as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            page = await run_in_threadpool(db.replication.changes, after, min(limit, MAX_PAGE))
        except (SiteDatabaseError, SQLAlchemyError) as exc:
            return JSONResponse(
                {
                    "error": f"site {db.site_code} could not read its replication changes "
                    f"after sequence {after}: {exc}; try again, and if it persists check the "
                    "site database"
                },
                status_code=503,
            )
        return JSONResponse(page_to_json(page))

    return [Route(CHANGES_PATH, changes, methods=["GET"])]


# -- the child's side: link health ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkThresholds:
    """When a failing link goes from degraded (1) to error (2): after `error_after_failures`
    failed pulls in a row, or when it has been failing for `error_after`."""

    error_after_failures: int = 10
    error_after: timedelta = timedelta(minutes=30)


def status_after_failure(
    link: ReplicationLink | None, at: datetime, thresholds: LinkThresholds
) -> LinkStatus:
    """The ReplicationLinkStatus a link gets when a pull at `at` fails."""
    failures = (link.consecutive_failures if link is not None else 0) + 1
    since = link.failing_since if link is not None and link.failing_since is not None else at
    if failures >= thresholds.error_after_failures or at - since >= thresholds.error_after:
        return LinkStatus.ERROR
    return LinkStatus.DEGRADED


@dataclass(frozen=True, slots=True)
class ReplicationState:
    """Where a link stands after a catch-up: the parent's sequence this site holds, the
    parent's head when last seen, and the parent's content versions this site holds
    (`content_version`: the one of the replicator's update source)."""

    parent_site: str
    applied_seq: int
    head_seq: int
    content_version: int
    content_versions: dict[str, int] = field(default_factory=dict)


class DatabaseReplicationError(Exception):
    """Database replication from a parent failed; the message says which parent, what this
    site holds, what failed and what to do. The same facts are attributes."""

    def __init__(
        self,
        message: str,
        *,
        parent_site: str,
        parent_url: str,
        applied_seq: int,
        content_version: int | None,
    ) -> None:
        super().__init__(message)
        self.parent_site = parent_site
        self.parent_url = parent_url
        self.applied_seq = applied_seq
        self.content_version = content_version


class ReplicationTimeout(DatabaseReplicationError):
    """The parent's changes did not all arrive within the time given."""


class _Retry(Exception):
    """A failure that may pass (parent down, busy, a garbled answer): try again later."""


class _Fatal(Exception):
    """A failure that retrying does not mend (refused signature, wrong site, reset parent)."""


class _DeadlinePassed(Exception):
    pass


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(data, Mapping) and isinstance(data.get("error"), str):
        return str(data["error"])
    return response.text[:200]


# -- the child's side: the puller -------------------------------------------------------------


class DatabaseReplicator:
    """Pulls `parent_site`'s changes from `parent_url` into `db`, one page at a time.

    `start()` runs the background thread (a pull every `poll_interval` seconds, and at once
    after `poke()`; after a failure sooner, backing off from `retry_delay` up to
    `max_retry_delay` with jitter, `retry_policy.DB_REPLICATION`); `stop()` ends it.
    `catch_up(timeout)` pulls now. One pull runs at a time: the thread and `catch_up` share a
    lock. `clock` gives the times recorded for the link's checks, judged by `thresholds`.
    """

    def __init__(
        self,
        db: SiteDatabase,
        parent_site: str,
        parent_url: str,
        *,
        auth: httpx.Auth,
        log: CMTraceLog | None = None,
        page_size: int = DEFAULT_PAGE,
        poll_interval: float = 60.0,
        clock: Callable[[], datetime] = _utc_now,
        update_source: str = MICROSOFT_UPDATE,
        thresholds: LinkThresholds | None = None,
        retry_delay: float = 0.25,
        max_retry_delay: float = 30.0,
        request_timeout: float = 30.0,
        verify: ssl.SSLContext | bool = True,
        on_status_change: Callable[[LinkStatus], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`verify`: what the parent's certificate is verified with (the hierarchy's CA);
        `on_status_change`: called with the link's new status each time a check records
        another status than the last one this replicator recorded (the first check too);
        `rng`: the retries' jitter source."""
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size {page_size}: give 1 to {MAX_PAGE} rows per page")
        if poll_interval <= 0 or retry_delay <= 0 or request_timeout <= 0:
            raise ValueError("poll_interval, retry_delay and request_timeout must be positive")
        self.db = db
        self.parent_site = parent_site.strip().upper()
        self.parent_url = parent_url.rstrip("/")
        self.log = log
        self.page_size = page_size
        self.poll_interval = poll_interval
        self.update_source = update_source.upper()
        self.thresholds = thresholds or LinkThresholds()
        self.retry_policy = DB_REPLICATION.scaled(retry_delay, max(max_retry_delay, retry_delay))
        self._rng = rng
        self.request_timeout = request_timeout
        self._clock = clock
        self._client = httpx.Client(
            base_url=self.parent_url, auth=auth, timeout=request_timeout, verify=verify
        )
        self._pull_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._retry_now = threading.Event()
        self._thread: threading.Thread | None = None
        self._head_seen: int | None = None
        self._healthy_logged = False
        self._on_status_change = on_status_change
        self._last_status: LinkStatus | None = None

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> DatabaseReplicator:
        """Start pulling in the background (the first pull at once)."""
        if self._thread is not None:
            return self
        if self._stopping.is_set():
            raise RuntimeError(
                f"the replicator of {self.db.site_code} from {self.parent_site} was stopped; "
                "create a new DatabaseReplicator to pull again"
            )
        self._thread = threading.Thread(
            target=self._run,
            name=f"database replication {self.parent_site} -> {self.db.site_code}",
            daemon=True,
        )
        self._thread.start()
        return self

    def poke(self) -> None:
        """Pull now (the parent said it changed, or came back up), without waiting for the
        interval or for the back-off of a `catch_up` that waits to retry."""
        self._wake.set()
        self._retry_now.set()

    def stop(self, timeout: float = 30.0) -> None:
        """End the background thread (after the page it is applying) and close the client.
        A `catch_up` waiting to retry gives up at once."""
        self._stopping.set()
        self._wake.set()
        self._retry_now.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._client.close()

    def __enter__(self) -> DatabaseReplicator:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- pulling -------------------------------------------------------------------------

    def catch_up(self, timeout: float) -> ReplicationState:
        """Pull now until this site holds everything the parent holds (a page reaches the
        parent's head), within `timeout` seconds; returns where the link stands. While the
        parent cannot be reached, retries with a back-off until the deadline, then raises
        `ReplicationTimeout`; a failure that retrying cannot mend raises `DatabaseReplicationError`
        at once. Both say which parent, what this site holds and what failed."""
        started = time.monotonic()
        deadline = started + max(0.0, timeout)
        if not self._pull_lock.acquire(timeout=max(0.0, timeout)):
            raise self._error(
                ReplicationTimeout,
                f"did not complete within {timeout:g} s",
                "another pull of this link was still running",
            )
        try:
            failures = 0
            while True:
                if self._stopping.is_set():
                    raise self._error(
                        DatabaseReplicationError, "was stopped", "the replicator stopped"
                    )
                try:
                    state = self._pull(deadline)
                except _DeadlinePassed:
                    raise self._error(
                        ReplicationTimeout,
                        f"did not complete within {timeout:g} s",
                        "pages were still arriving; the rest comes with the next pull",
                    ) from None
                except _Fatal as exc:
                    self._failed(str(exc), retry_in=None)
                    raise self._error(DatabaseReplicationError, "failed", str(exc)) from exc
                except _Retry as exc:
                    failures += 1
                    remaining = deadline - time.monotonic()
                    wait = min(self.retry_policy.next_delay(failures, self._rng), remaining)
                    self._failed(str(exc), retry_in=wait if remaining > 0 else None)
                    if remaining <= 0:
                        raise self._error(
                            ReplicationTimeout,
                            f"did not complete within {timeout:g} s",
                            str(exc),
                            hint=True,
                        ) from exc
                    self._retry_now.wait(wait)
                    self._retry_now.clear()
                    if self._stopping.is_set():
                        raise self._error(
                            DatabaseReplicationError,
                            "was stopped",
                            f"the replicator stopped; {exc}",
                        ) from exc
                    continue
                if state is None:  # only without a deadline
                    raise self._error(
                        DatabaseReplicationError, "was stopped", "the replicator stopped"
                    )
                return state
        finally:
            self._pull_lock.release()

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            wait = min(self.retry_policy.next_delay(failures + 1, self._rng), self.poll_interval)
            ok = self._background_pull(retry_in=wait)
            if self._stopping.is_set():
                return
            failures = 0 if ok else failures + 1
            self._wake.wait(self.poll_interval if ok else wait)

    def _background_pull(self, retry_in: float) -> bool:
        with self._pull_lock:
            try:
                self._pull(None)
            except (_Retry, _Fatal) as exc:
                self._failed(str(exc), retry_in=retry_in)
                return False
            except Exception as exc:  # the thread must outlive any one failure
                self._failed(f"{type(exc).__name__}: {exc}", retry_in=retry_in)
                return False
        return True

    def _pull(self, deadline: float | None) -> ReplicationState | None:
        """Pages until one reaches the parent's head; the caller holds the pull lock. None
        when stopping (background only)."""
        parent = self.parent_site
        first = True
        while True:
            if deadline is None and self._stopping.is_set():
                return None
            if deadline is not None and not first and time.monotonic() >= deadline:
                raise _DeadlinePassed
            first = False
            link = self._link()
            after = link.applied_seq if link is not None else 0
            page = self._fetch(after, deadline)
            if page.site_code.upper() != parent:
                raise _Fatal(
                    f"{self.parent_url} is site {page.site_code}, not {parent}: fix the URL "
                    f"of parent site {parent} in the hierarchy"
                )
            if page.head_seq < after:
                raise _Fatal(
                    f"parent site {parent} holds changes up to sequence {page.head_seq} only, "
                    f"but this site holds them up to {after}: the parent's database was "
                    f"replaced or restored; reset the link (SiteDatabase.replication."
                    f"reset_link('{parent}')) to replicate everything again"
                )
            if page.after != after:
                raise _Retry(
                    f"{self.parent_url} answered the changes after sequence {page.after} when "
                    f"asked for those after {after}"
                )
            try:
                self.db.replication.apply(parent, page, at=self._clock())
            except (SiteDatabaseError, SQLAlchemyError) as exc:
                raise _Retry(f"applying a page from {parent} to this site failed: {exc}") from exc
            self._head_seen = page.head_seq
            if page.size and self.log is not None:
                self.log.info(
                    f"Replicated {page.size} changes from {parent} (sequence {page.last_seq} of "
                    f"{page.head_seq})"
                )
            if page.reaches_head:
                return self._succeeded(page)
            fault_point("replication-between-pages")  # a test hook, off unless set

    def _fetch(self, after: int, deadline: float | None) -> ReplicationPage:
        where = f"parent site {self.parent_site} at {self.parent_url}"
        timeout = self.request_timeout
        if deadline is not None:
            timeout = max(0.05, min(timeout, deadline - time.monotonic()))
        try:
            response = self._client.get(
                CHANGES_PATH, params={"after": after, "limit": self.page_size}, timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise _Retry(f"cannot reach {where}: {type(exc).__name__}: {exc}") from exc
        code = response.status_code
        if code in (401, 403):
            raise _Fatal(
                f"{where} refused this site's signed call (HTTP {code}: {_error_text(response)});"
                " both sites must hold the same hierarchy secret file"
            )
        if code == 429 or code >= 500:
            raise _Retry(f"{where} answered HTTP {code}: {_error_text(response)}")
        if code != 200:
            raise _Fatal(
                f"{where} answered HTTP {code} to {CHANGES_PATH}: {_error_text(response)}; "
                "check that the URL is the parent's site server and that it runs this "
                "version of updatesync"
            )
        try:
            return page_from_json(response.json())
        except ValueError as exc:
            raise _Retry(f"{where} answered a page this site cannot read: {exc}") from exc

    # -- recording and logging -------------------------------------------------------------

    def _link(self) -> ReplicationLink | None:
        try:
            return self.db.replication.link(self.parent_site)
        except SQLAlchemyError as exc:
            raise _Retry(f"reading the link to {self.parent_site} failed: {exc}") from exc

    def _succeeded(self, page: ReplicationPage) -> ReplicationState:
        try:
            link = self.db.replication.record_check(
                self.parent_site, LinkStatus.HEALTHY, at=self._clock()
            )
        except (SiteDatabaseError, SQLAlchemyError) as exc:
            raise _Retry(f"recording the successful check failed: {exc}") from exc
        self._status_recorded(LinkStatus.HEALTHY)
        versions = dict(link.replicated_versions)
        version = versions.get(self.update_source)
        if version is None:
            raise _Fatal(
                f"parent site {self.parent_site} holds no update source {self.update_source}; "
                "both sites must sync the same update source"
            )
        if not self._healthy_logged and self.log is not None:
            self.log.info(
                f"Replication link to {self.parent_site} is healthy: this site holds its "
                f"changes up to sequence {link.applied_seq}, content version {version} of "
                f"update source {self.update_source}"
            )
        self._healthy_logged = True
        return ReplicationState(
            parent_site=self.parent_site,
            applied_seq=link.applied_seq,
            head_seq=page.head_seq,
            content_version=version,
            content_versions=versions,
        )

    def _failed(self, error: str, *, retry_in: float | None) -> None:
        """Record a failed pull on the link and log it; never raises."""
        self._healthy_logged = False
        at = self._clock()
        text = f"replication from {self.parent_site} at {self.parent_url} failed: {error}"
        try:
            link = self.db.replication.link(self.parent_site)
            status = status_after_failure(link, at, self.thresholds)
            link = self.db.replication.record_check(self.parent_site, status, text, at=at)
        except (SiteDatabaseError, SQLAlchemyError) as exc:
            if self.log is not None:
                self.log.error(f"Recording the failed replication check failed: {exc}")
            return
        self._status_recorded(status)
        if self.log is None:
            return
        state = "degraded" if status is LinkStatus.DEGRADED else "in error"
        when = "" if retry_in is None else f"; will retry in {retry_in:.2f} s"
        write = self.log.warning if status is LinkStatus.DEGRADED else self.log.error
        write(
            f"Replication from {self.parent_site} at {self.parent_url} failed: {error}. "
            f"Replication link to {self.parent_site} is {state} ({link.consecutive_failures} "
            f"failed pull(s) in a row; this site holds sequence {link.applied_seq}){when}"
        )

    def _status_recorded(self, status: LinkStatus) -> None:
        if status is self._last_status:
            return
        self._last_status = status
        if self._on_status_change is not None:
            try:
                self._on_status_change(status)
            except Exception as exc:  # a listener's failure is not the link's
                if self.log is not None:
                    self.log.error(f"Telling of the replication link's status failed: {exc}")

    def _error(
        self,
        kind: type[DatabaseReplicationError],
        what: str,
        failure: str,
        *,
        hint: bool = False,
    ) -> DatabaseReplicationError:
        link = None
        with contextlib.suppress(SQLAlchemyError):
            link = self.db.replication.link(self.parent_site)
        applied = link.applied_seq if link is not None else 0
        version = link.replicated_version(self.update_source) if link is not None else None
        held = f"up to sequence {applied}"
        if self._head_seen is not None:
            held += f" of {self._head_seen}"
        message = (
            f"Database replication from parent site {self.parent_site} ({self.parent_url}) "
            f"{what}: site {self.db.site_code} holds its changes {held}, replicated content "
            f"version {'none yet' if version is None else version}; {failure}"
        )
        if hint:
            message += (
                f". Check that the site server of {self.parent_site} runs and answers at "
                f"{self.parent_url}; replication resumes from sequence {applied}"
            )
        return kind(
            message,
            parent_site=self.parent_site,
            parent_url=self.parent_url,
            applied_seq=applied,
            content_version=version,
        )
