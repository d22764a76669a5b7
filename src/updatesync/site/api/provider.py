"""The SMS Provider of a site as an HTTP API: request a sync, and see what the site knows of it.

ConfigMgr's administrative API is the SMS Provider; the console's "Synchronize Software
Updates" calls `SMS_SoftwareUpdate::SyncNow(fullSync)` on it, and SMSProv.log shows
`ExecMethodAsync : SMS_SoftwareUpdate::SyncNow` (component `SMS Provider`; SPEC section 2,
step 1, and `fixtures/logs/msdocs-2014-hierarchy/CS1-SMSProv.rendered.txt`). The method sets
`Update_SyncStatus.SyncNow` of the site (SELF, or FULL for a full sync); the database
notification monitor takes it from there.

`create_provider_app` builds that API with FastAPI, so it documents itself at `/openapi.json`
and `/docs`:

- `POST /api/sites/{site}/sync`: SyncNow; 202 with the site's sync status;
- `GET /api/sites/{site}/sync-status`: the site's row of `Update_SyncStatus`;
- `GET /api/sites/{site}/sup-sync-status`: `SMS_SUPSyncStatus` of each SUP (SPEC section 5
  names in the JSON);
- `GET /api/status-messages` (pages by cursor: `count`, `value`, `next`), `GET /api/alerts`:
  the tracking views of SPEC section 5;
- `GET /api/sites`: the sites it answers for, its own and those below it;
- `GET /api/sites/{site}/cis` (paged) and `GET /api/sites/{site}/content-version`;
- users, API tokens, signing in and `GET /api/whoami` (`users.py`);
- `GET /api/sites/{site}/logs[/{name}]`: the site server's and its SUPs' logs, read a page
  at a time (`logs.py`; `create_provider_app(logs=...)` says where they are).

Every route needs `Authorization: Bearer <token>` with a security role that allows it
(`auth.py`: 401 without a valid token, 403 naming the role needed): reading needs Read-only
Analyst, SyncNow Software Update Manager, users and tokens Full Administrator. A call signed
with the hierarchy's site-to-site secret (the console, the demo) has every right.

The routes are module-level (`router`); `create_provider_app` builds an app around them and
keeps what it serves in `app.state.provider` (`ProviderState`: the site database, the log,
the site code), which each route takes as a dependency. The answers are the response models
of `views.py`, so the JSON keys stay ConfigMgr's.

A provider serves the site its site database belongs to, and answers, read-only, for the
sites below it from the site data replicated up to that database (`hierarchy.py`: sync
status, SUP sync status, status messages, raised alerts; each answer about another site
with `AsOf`, `ReceivedAt` and `Stale`), as ConfigMgr's central administration site does. A
sync, the CIs and the content version are of the provider's own site only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    Body,
    Depends,
    FastAPI,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.logs.status_messages import describe
from updatesync.security.access import Permission
from updatesync.site.api import hierarchy
from updatesync.site.api.auth import AuthMiddleware, ProviderAuth, require
from updatesync.site.api.hierarchy import DEFAULT_STALE_AFTER
from updatesync.site.api.logs import SiteLogs
from updatesync.site.api.logs import router as logs_router
from updatesync.site.api.subscription import router as subscription_router
from updatesync.site.api.syncs import SyncHistory
from updatesync.site.api.syncs import router as syncs_router
from updatesync.site.api.users import router as access_router
from updatesync.site.api.views import (
    AlertView,
    ConfigurationItemPage,
    ConfigurationItemView,
    ContentVersionView,
    ProblemDetail,
    SiteView,
    StatusMessagePage,
    StatusMessageView,
    SUPSyncStatusView,
    SyncNowRequest,
    SyncStatusView,
    alert_view,
    audit_fields,
    sync_status_view,
)
from updatesync.site.database.models import MICROSOFT_UPDATE, SYNC_FULL, SYNC_SELF
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError
from updatesync.site.watch.alerts import AlertState
from updatesync.vocabulary import MessageSeverity

SYNC_NOW_LOG_LINE = "ExecMethodAsync : SMS_SoftwareUpdate::SyncNow"
"""What SMSProv.log says when SyncNow runs, word for word as the real provider writes it."""


_MAX_PAGE = 1000

# -- conversions ---------------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _next_retry(provider: ProviderState) -> datetime | None:
    """When the site server retries its last sync, which failed; None when none is due."""
    history = provider.sync_history
    return history.next_retry_at() if history is not None else None


def _utc_filter(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"query parameter {name}={value.isoformat()} has no time zone: "
            f"give it in UTC, e.g. {value.isoformat()}Z",
        )
    return value


# -- what the routes serve ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderState:
    """What one provider app serves (kept in `app.state.provider`): the site database of
    its site, SMSProv.log, and whom to tell of a SyncNow."""

    db: SiteDatabase
    log: CMTraceLog
    site_code: str
    on_sync_requested: Callable[[], None] | None = None
    sync_history: SyncHistory | None = None
    parent_site: str | None = None
    """The parent site; None at the top-level site, where users and tokens are written."""
    stale_after: timedelta = DEFAULT_STALE_AFTER
    """Site data of a site below older than this is answered with `Stale: true`."""
    clock: Callable[[], datetime] = field(default=_utc_now)

    def not_served(self, code: str, what: str) -> HTTPException:
        """404: `code` is neither this provider's site nor one whose `what` it holds."""
        return HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"site {code} is not served by this SMS Provider, which serves site "
            f"{self.site_code} and the sites below it whose data it holds, and its site "
            f"database holds no {what} of site {code}: ask the provider of site {code} or "
            "of a site above it",
        )

    def own_site(self, site: str) -> str:
        """`site` in upper case when it is the provider's site; else 404."""
        code = site.strip().upper()
        if code != self.site_code:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"site {code} is not served by this SMS Provider, which serves site "
                f"{self.site_code}: ask the provider of site {code}",
            )
        return code


def _provider(request: Request) -> ProviderState:
    provider: ProviderState = request.app.state.provider
    return provider


Provider = Annotated[ProviderState, Depends(_provider)]
"""The provider of the app a request came to (a route dependency; no parameter of its own)."""

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ProblemDetail, "description": "This provider does not serve that site."}
}

_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemDetail, "description": "No token, or not a valid one."},
    403: {"model": ProblemDetail, "description": "The token's security role is too small."},
}

SiteParam = Annotated[
    str,
    Path(description="Site code, e.g. CS1 (case does not matter)."),
]

_READ = require(Permission.READ)
_SYNC = require(Permission.SYNC)

router = APIRouter(responses=_REFUSED)
"""The SMS Provider's routes; `create_provider_app` includes them in each provider app.
Each needs a token (or a site-to-site signature) with the permission it names."""


@router.post(
    "/api/sites/{site}/sync",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SyncStatusView,
    responses=_NOT_FOUND,
    tags=["sync"],
    summary="Synchronize software updates (SyncNow)",
    dependencies=[_SYNC],
)
def sync_now(
    site: SiteParam,
    provider: Provider,
    response: Response,
    request: Annotated[SyncNowRequest | None, Body()] = None,
) -> SyncStatusView:
    """`SMS_SoftwareUpdate::SyncNow(fullSync)`: sets the site's SyncNow flag to SELF (a
    delta sync; also with no body) or FULL, which wakes the sync manager. A request made
    while another is pending merges with it: a pending full sync stays full. The sync runs
    later; the answer (202) is the sync status with the request in `SyncNow`, and
    `Location` names the sync that will serve it (`GET /api/sites/{site}/syncs/{number}`)."""
    code = provider.own_site(site)
    full = request is not None and request.full
    if provider.sync_history is not None:
        done, _ = provider.sync_history.wait_after(0, 0)
        running = provider.db.sync.status(site_code=code).in_progress
        response.headers["Location"] = f"/api/sites/{code}/syncs/{done + (2 if running else 1)}"
    provider.log.info(SYNC_NOW_LOG_LINE)
    try:
        provider.db.sync.request(SYNC_FULL if full else SYNC_SELF, site_code=code)
    except SiteDatabaseError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    if provider.on_sync_requested is not None:
        provider.on_sync_requested()
    return sync_status_view(provider.db.sync.status(site_code=code), _next_retry(provider))


@router.get(
    "/api/sites/{site}/sync-status",
    response_model=SyncStatusView,
    responses=_NOT_FOUND,
    tags=["sync"],
    summary="Sync status of the site (Update_SyncStatus)",
    dependencies=[_READ],
)
def sync_status(site: SiteParam, provider: Provider) -> SyncStatusView:
    """The pending sync request, the last sync state and what it means, when it was
    reached, the last error and the time of the last successful sync. For a site below
    this one: as last replicated up to this site, with `AsOf`, `ReceivedAt` and `Stale`."""
    code = site.strip().upper()
    if code == provider.site_code:
        return sync_status_view(provider.db.sync.status(site_code=code), _next_retry(provider))
    found = hierarchy.sync_status(provider.db, code, provider.clock(), provider.stale_after)
    if found is None:
        raise provider.not_served(code, "sync status")
    return found


@router.get(
    "/api/sites/{site}/sup-sync-status",
    response_model=list[SUPSyncStatusView],
    responses=_NOT_FOUND,
    tags=["sync"],
    summary="Sync status of each software update point (SMS_SUPSyncStatus)",
    dependencies=[_READ],
)
def sup_sync_status(site: SiteParam, provider: Provider) -> list[SUPSyncStatusView]:
    """One entry per SUP of the site, with the fields of `SMS_SUPSyncStatus`. For a site
    below this one: as last replicated up to this site, with `AsOf`, `ReceivedAt` and
    `Stale`."""
    code = site.strip().upper()
    if code != provider.site_code:
        found = hierarchy.sup_sync_status(provider.db, code, provider.clock(), provider.stale_after)
        if found is None:
            raise provider.not_served(code, "SUP sync status")
        return found
    rows = provider.db.sups.sync_statuses(site_code=code)
    audits = {a.wsus_server_name: a for a in provider.db.sups.audits(site_code=code)}
    return [SUPSyncStatusView.of(r, **audit_fields(audits.get(r.wsus_server_name))) for r in rows]


@router.get(
    "/api/sites",
    response_model=list[SiteView],
    tags=["sync"],
    summary="The sites this provider answers for",
    dependencies=[_READ],
)
def sites(provider: Provider) -> list[SiteView]:
    """This provider's own site, then each site below it whose site data it holds
    (replicated up from its child sites): the child it comes through, how fresh it is and
    why the last pull from that child failed, if it did."""
    return hierarchy.site_list(provider.db, provider.clock(), provider.stale_after)


Order = Literal["newest", "oldest"]


def _cursor(order: Order, record_id: int) -> str:
    return base64.urlsafe_b64encode(f"{order}:{record_id}".encode()).decode().rstrip("=")


def _beyond(cursor: str | None, order: Order) -> int | None:
    """The RecordID a cursor pages on from; 400 naming the cursor when it is not one."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        kind, _, number = text.partition(":")
        record_id = int(number) if number.isdigit() else -1
    except (binascii.Error, UnicodeDecodeError, ValueError):
        kind, record_id = "", -1
    if kind not in ("newest", "oldest") or record_id < 0:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"query parameter cursor={cursor[:60]!r} is not a cursor of this API: take the "
            "`next` URL of the previous page as it is, or leave cursor out for the first page",
        )
    if kind != order:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"query parameter cursor={cursor[:60]!r} pages the {kind} messages first, but "
            f"order={order}: keep the order of the page the cursor came from",
        )
    return record_id


@router.get(
    "/api/status-messages",
    response_model=StatusMessagePage,
    tags=["tracking"],
    summary="Status messages",
    dependencies=[_READ],
)
def status_messages(
    request: Request,
    provider: Provider,
    site: Annotated[str | None, Query(description="Only this site's messages.")] = None,
    ids: Annotated[
        list[int] | None,
        Query(
            alias="id",
            description="Only these message ids; repeat for several (id=6702&id=6703).",
        ),
    ] = None,
    severity: Annotated[
        MessageSeverity | None, Query(description="Only this severity: I, W or E.")
    ] = None,
    component: Annotated[
        str | None, Query(description="Only this component, e.g. SMS_WSUS_SYNC_MANAGER.")
    ] = None,
    since: Annotated[
        datetime | None, Query(description="Sent at or after this time (ISO 8601, UTC).")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Sent before this time (ISO 8601, UTC).")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=_MAX_PAGE, description="At most this many messages per page.")
    ] = 100,
    order: Annotated[
        Order,
        Query(
            description="newest: the last stored first (highest RecordID); oldest: the first "
            "stored first, to follow new messages as they arrive."
        ),
    ] = "newest",
    cursor: Annotated[
        str | None,
        Query(description="Where the page starts: from the `next` URL of the page before."),
    ] = None,
) -> StatusMessagePage:
    """Status messages in RecordID order, each with its fields and the text the console
    shows, one page at a time: `count` matching the filters in all, `value` this page,
    `next` the URL of the next page (null after the last). Paging by cursor neither repeats
    nor skips a message while new ones arrive: they take higher RecordIDs (with
    order=oldest they come on the last pages). Without filters: every site whose messages
    this site database holds (its own, and those replicated up from the sites below)."""
    page = provider.db.messages.page(
        limit=limit,
        order=order,
        beyond=_beyond(cursor, order),
        site_code=site,
        message_id=ids,
        severity=severity,
        component=component,
        since=_utc_filter(since, "since"),
        until=_utc_filter(until, "until"),
    )
    following = None
    if page.more and page.messages:
        mark = _cursor(order, page.messages[-1].record_id)
        following = str(request.url.remove_query_params("cursor").include_query_params(cursor=mark))
    return StatusMessagePage(
        count=page.count,
        value=[
            StatusMessageView.of(
                m.message,
                record_id=m.record_id,
                received_at=m.received_at,
                description=describe(m.message),
            )
            for m in page.messages
        ],
        next=following,
    )


@router.get(
    "/api/alerts",
    response_model=list[AlertView],
    tags=["tracking"],
    summary="Alerts",
    dependencies=[_READ],
)
def alerts(
    provider: Provider,
    state: Annotated[AlertState | None, Query(description="Only alerts in this state.")] = None,
    site: Annotated[str | None, Query(description="Only this site's alerts.")] = None,
) -> list[AlertView]:
    """Alert occurrences, newest raised first: a sync failure raises the alert of the
    SUP, with the 6703 that said why (`Cause`); the next successful sync sets it to
    canceled. The raised alerts of the sites below this one come as last replicated up to
    this site, with `AsOf`, `ReceivedAt`, `Stale`."""
    found = provider.db.alerts.find(site_code=site, state=state)
    own = [alert_view(a, provider.db) for a in found]
    below = hierarchy.alerts(
        provider.db,
        site=site,
        state=state,
        now=provider.clock(),
        stale_after=provider.stale_after,
    )
    return sorted([*own, *below], key=lambda a: (a.RaisedAt, a.AlertID), reverse=True)


@router.get(
    "/api/sites/{site}/cis",
    response_model=ConfigurationItemPage,
    responses=_NOT_FOUND,
    tags=["content"],
    summary="Configuration items (one per update)",
    dependencies=[_READ],
)
def configuration_items(
    site: SiteParam,
    provider: Provider,
    offset: Annotated[int, Query(ge=0, description="Skip this many CIs.")] = 0,
    limit: Annotated[int, Query(ge=1, le=_MAX_PAGE, description="At most this many CIs.")] = 100,
    language: Annotated[
        str | None,
        Query(
            max_length=16,
            description="A subscribed language's short name (en, de, zh-cn): each CI's "
            "display name and description in it.",
        ),
    ] = None,
) -> ConfigurationItemPage:
    """The site's configuration items in CI id order, one page at a time, with how many
    there are in all; with `language`, their localized properties in that language."""
    code = provider.own_site(site)
    content = provider.db.content
    items = content.configuration_items(offset=offset, limit=limit)
    wanted = language.strip().lower() if language else None
    texts = content.localized([ci.update_id for ci in items], wanted) if wanted else {}
    views = []
    for ci in items:
        text = texts.get(ci.update_id)
        views.append(
            ConfigurationItemView.of(
                ci,
                title=text.display_name if text else ci.title,
                locale_id=text.locale_id if text else None,
                localized_description=text.description if text else None,
            )
        )
    return ConfigurationItemPage(
        SiteCode=code,
        Count=content.ci_count(),
        Offset=offset,
        Limit=limit,
        Language=wanted,
        LocalizedPropertyCount=content.localized_count(),
        Items=views,
    )


@router.get(
    "/api/sites/{site}/content-version",
    response_model=ContentVersionView,
    responses={404: {"model": ProblemDetail, "description": "Unknown site or update source."}},
    tags=["content"],
    summary="Content version of an update source",
    dependencies=[_READ],
)
def content_version(
    site: SiteParam,
    provider: Provider,
    source: Annotated[
        str, Query(description="The update source's unique id; Microsoft Update if unset.")
    ] = MICROSOFT_UPDATE,
) -> ContentVersionView:
    """The content version of the update source at the site: it rises by one each time a
    sync changes what the site holds."""
    code = provider.own_site(site)
    sources = provider.db.content.update_sources()
    found = [s for s in sources if s.unique_id == source.strip().upper()]
    if not found:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"site {code}: update source {source} is not registered (known: "
            f"{', '.join(s.unique_id for s in provider.db.content.update_sources()) or 'none'})",
        )
    return ContentVersionView.of(found[0], site_code=code)


# -- the application -------------------------------------------------------------------------


def create_provider_app(
    db: SiteDatabase,
    *,
    log: CMTraceLog,
    site_code: str,
    on_sync_requested: Callable[[], None] | None = None,
    sync_history: SyncHistory | None = None,
    secret: bytes | None = None,
    parent_site: str | None = None,
    callers: Iterable[str] | None = None,
    hosts: Iterable[str] | None = None,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    clock: Callable[[], datetime] = _utc_now,
    logs: SiteLogs | None = None,
) -> FastAPI:
    """The SMS Provider of the site `site_code`, whose site database is `db`; SyncNow calls
    are written to `log` (SMSProv.log, component `SMS Provider`). `on_sync_requested` is
    called after the SyncNow flag is set (the database monitor's `notify`, so that the drop
    does not wait for its next look). Every route but the documentation and signing in
    needs `Authorization: Bearer <token>` (the users and tokens of `db`) or a call signed
    with the hierarchy's `secret` (the hierarchy's own roles; None: no signed call is
    taken; `callers`, `hosts`: the names a signed call must carry, as on the site-to-site
    routes). `parent_site` is None at the top-level site, where users and tokens are written.
    The answers about the sites below come from the site data replicated up to `db`;
    older than `stale_after` (by `clock`) they say `Stale: true`."""
    own = site_code.strip().upper()
    if own != db.site_code:
        raise ValueError(
            f"SMS Provider for site {own}: the site database given belongs to site "
            f"{db.site_code}; give the database of site {own}"
        )

    app = FastAPI(
        title=f"updatesync SMS Provider ({own})",
        version="1.0",
        description=(
            f"The administrative API of site {own}: request a software-update sync "
            "(`SMS_SoftwareUpdate::SyncNow`) and track it: the site's sync status, the sync "
            "status of each software update point (`SMS_SUPSyncStatus`), status messages, "
            "alerts, the configuration items the sync wrote and the content version."
        ),
        openapi_tags=[
            {"name": "sync", "description": "Request a sync and see how it goes."},
            {"name": "tracking", "description": "Status messages and alerts."},
            {"name": "content", "description": "What the site holds after its syncs."},
            {"name": "access", "description": "Users, security roles, tokens, signing in."},
        ],
    )
    app.state.provider = ProviderState(
        db,
        log,
        own,
        on_sync_requested,
        sync_history,
        parent_site=parent_site,
        stale_after=stale_after,
        clock=clock,
    )
    app.include_router(router)
    app.include_router(subscription_router)
    app.include_router(syncs_router)
    app.include_router(access_router)
    app.state.logs = logs  # the log routes (logs.py): what the site server may read
    app.include_router(logs_router)
    app.add_middleware(
        AuthMiddleware,
        auth=ProviderAuth(db, secret, callers=callers, hosts=hosts),
        public=[
            ("GET", "/openapi.json"),
            ("GET", "/docs"),
            ("GET", "/docs/oauth2-redirect"),
            ("GET", "/redoc"),
            ("POST", "/api/sessions"),
        ],
    )
    return app
