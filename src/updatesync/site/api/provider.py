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
- `GET /api/status-messages`, `GET /api/alerts`: the tracking views of SPEC section 5;
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
the site code), which each route takes as a dependency. The answers are response models
read from the database's records (`_View.of`: `model_validate(..., from_attributes=True)`,
each field naming its attribute by `validation_alias`), so the JSON keys stay ConfigMgr's.

A provider serves one site, the one its site database belongs to. The database of a parent
site may also hold the SUP sync status, status messages and alerts of its child sites, which
the read-only views show too; a sync is requested only of the provider's own site.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Self

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
from pydantic import BaseModel, ConfigDict, Field, field_validator

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.logs.status_messages import describe
from updatesync.security.access import Permission
from updatesync.site.api.auth import AuthMiddleware, ProviderAuth, require
from updatesync.site.api.logs import SiteLogs
from updatesync.site.api.logs import router as logs_router
from updatesync.site.api.subscription import router as subscription_router
from updatesync.site.api.syncs import SyncHistory, state_text
from updatesync.site.api.syncs import router as syncs_router
from updatesync.site.api.users import router as access_router
from updatesync.site.database.models import (
    AUDIT_NOT_AVAILABLE,
    MICROSOFT_UPDATE,
    SYNC_FULL,
    SYNC_SELF,
    SUPAudit,
    SyncStatus,
)
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError
from updatesync.site.watch.alert_watcher import failure_message
from updatesync.site.watch.alerts import Alert, AlertState
from updatesync.vocabulary import MessageSeverity

SYNC_NOW_LOG_LINE = "ExecMethodAsync : SMS_SoftwareUpdate::SyncNow"
"""What SMSProv.log says when SyncNow runs, word for word as the real provider writes it."""


_MAX_PAGE = 1000

# -- response models ---------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Record:
    """The attributes of `record`, with `extra` ones beside them (values a view derives)."""

    def __init__(self, record: object, extra: dict[str, object]) -> None:
        self._record = record
        self._extra = extra

    def __getattr__(self, name: str) -> object:
        if name in self._extra:
            return self._extra[name]
        return getattr(self._record, name)


class _View(_Model):
    """A response model read from a record's attributes: each field's `validation_alias`
    names the attribute it is read from (the JSON keys are the field names)."""

    @classmethod
    def of(cls, record: object, **derived: object) -> Self:
        """The view of `record`; `derived` gives, by alias, the values it has no attribute
        for."""
        source = _Record(record, derived) if derived else record
        return cls.model_validate(source, from_attributes=True)


class ProblemDetail(_Model):
    """What went wrong with a request."""

    detail: str = Field(description="What went wrong, and where.")


class SyncNowRequest(_Model):
    """The arguments of `SMS_SoftwareUpdate::SyncNow`."""

    full: bool = Field(
        default=False,
        description="True for a full sync (`SyncNow(true)`, FULL): every update is examined "
        "again; false for a delta sync (SELF), which writes only what changed.",
    )


class SyncStatusView(_View):
    """A site's row of `Update_SyncStatus`: the pending request and how the last sync went."""

    SiteCode: str = Field(validation_alias="site_code", description="The site, e.g. CS1.")
    SyncNow: str | None = Field(
        validation_alias="sync_now",
        description="The pending sync request: SELF (delta), FULL, the code of the parent site "
        "that asked, or null when none is pending (the sync manager has taken it).",
    )
    SyncNowRequestedAt: datetime | None = Field(
        validation_alias="sync_now_requested_at", description="When the pending request was made."
    )
    LastSyncState: int | None = Field(
        validation_alias="last_sync_state",
        description="The id of the last sync status message (6701..6708); null before any sync.",
    )
    LastSyncStateDescription: str | None = Field(
        validation_alias="last_sync_state_description",
        description="What the last state means, as the console says it.",
    )
    InProgress: bool = Field(
        validation_alias="in_progress",
        description="A sync is running: the last state is 6701, 6704, 6705 or 6706.",
    )
    LastSyncStateTime: datetime | None = Field(
        validation_alias="last_sync_state_time", description="When the last state was reached."
    )
    LastErrorCode: int | None = Field(
        validation_alias="last_error_code", description="The error code of the last failed sync."
    )
    LastErrorText: str | None = Field(
        validation_alias="last_error_text", description="The error text of the last failed sync."
    )
    LastSuccessfulSyncTime: datetime | None = Field(
        validation_alias="last_successful_sync_time",
        description="When the last sync that succeeded (6702) ended.",
    )
    SyncCatalogVersion: int | None = Field(
        validation_alias="sync_catalog_version",
        description="The content version the last sync reached.",
    )
    NextRetryTime: datetime | None = Field(
        default=None,
        validation_alias="next_retry_time",
        description="When the site server retries the last sync, which failed (the "
        "hierarchy's retry_interval after it); null when no retry is pending.",
    )


class SUPSyncStatusView(_View):
    """The sync status of one software update point, as ConfigMgr's `SMS_SUPSyncStatus`."""

    SiteCode: str = Field(validation_alias="site_code", description="The site of the SUP.")
    WSUSServerName: str = Field(
        validation_alias="wsus_server_name", description="The SUP's update server (FQDN)."
    )
    WSUSSourceServer: str = Field(
        validation_alias="wsus_source_server",
        description='Where it syncs from: "Microsoft Update" at the top, else the upstream '
        "update server.",
    )
    LastSyncState: int | None = Field(
        validation_alias="last_sync_state",
        description="The last sync status message id; 6701, 6704, 6705, 6706 mean in progress.",
    )
    LastSyncStateTime: datetime | None = Field(
        validation_alias="last_sync_state_time", description="When the last state was reached."
    )
    LastSyncErrorCode: int | None = Field(
        validation_alias="last_sync_error_code", description="The error code of the last failure."
    )
    LastSuccessfulSyncTime: datetime | None = Field(
        validation_alias="last_successful_sync_time", description="End of the last good sync."
    )
    SyncCatalogVersion: int | None = Field(
        validation_alias="sync_catalog_version", description="The content version it reached."
    )
    ReplicationLinkStatus: int = Field(
        validation_alias="replication_link_status", description="0 healthy, 1 degraded, 2 error."
    )
    LastReplicationLinkCheckTime: datetime | None = Field(
        validation_alias="last_replication_link_check_time",
        description="When the replication link was last checked.",
    )
    ContentAudit: str | None = Field(
        default=None,
        validation_alias="content_audit",
        description="updatesync's own (not SMS_SUPSyncStatus): the last consistency audit of "
        'the SUP against its upstream, "equal" (proven equal), "differs" (6707) or "not '
        'available"; null when never checked.',
    )
    ContentAuditTime: datetime | None = Field(
        default=None, validation_alias="content_audit_time", description="When it was checked."
    )
    ContentAuditUpstream: str | None = Field(
        default=None,
        validation_alias="content_audit_upstream",
        description="The upstream server it was compared with.",
    )
    ContentAuditDetail: str | None = Field(
        default=None,
        validation_alias="content_audit_detail",
        description="The revision counts of both sides, or why it was not available.",
    )


class StatusMessageView(_View):
    """One status message with its fields and the text the console shows."""

    MessageID: int = Field(validation_alias="message_id", description="The message id, e.g. 6702.")
    Severity: MessageSeverity = Field(
        validation_alias="severity", description="I information, W warning, E error."
    )
    Level: str = Field(validation_alias="level", description="LEV= of the message (M: milestone).")
    Source: str = Field(validation_alias="source", description='Who sent it, e.g. "SMS Server".')
    Component: str = Field(
        validation_alias="component",
        description="The sending component, e.g. SMS_WSUS_SYNC_MANAGER.",
    )
    SiteCode: str = Field(validation_alias="site_code", description="The site it was sent at.")
    MachineName: str = Field(
        validation_alias="system", description="The server it was sent from (FQDN)."
    )
    ProcessID: int = Field(validation_alias="process_id", description="The sending process.")
    ThreadID: int = Field(validation_alias="thread_id", description="The sending thread.")
    Time: datetime = Field(
        validation_alias="time", description="When it was sent (UTC, to the millisecond)."
    )
    InsertionStrings: list[str] = Field(
        validation_alias="strings", description="ISTR0..ISTR9, always ten."
    )
    Attributes: dict[int, str] = Field(
        validation_alias="attributes", description="Attribute id → value (AIDn/AVALn)."
    )
    LastError: int | None = Field(
        validation_alias="last_error", description="LE=, the last error code, when there is one."
    )
    Description: str = Field(
        validation_alias="description", description="The message as the console shows it."
    )

    @field_validator("Attributes", mode="before")
    @classmethod
    def _attribute_pairs(cls, value: Any) -> Any:
        """A status message holds its attributes as (id, value) pairs."""
        return dict(value) if isinstance(value, tuple) else value


class AlertView(_View):
    """One occurrence of an alert."""

    AlertID: int = Field(validation_alias="alert_id", description="The occurrence's id.")
    AlertType: str = Field(
        validation_alias="alert_type", description="What it is about, e.g. sync_failure."
    )
    SiteCode: str = Field(validation_alias="site_code", description="The site it was raised at.")
    Instance: str = Field(
        validation_alias="instance",
        description="What it concerns; for a sync failure the SUP's FQDN.",
    )
    State: AlertState = Field(
        validation_alias="state", description="raised, or canceled (by the next good sync)."
    )
    RaisedAt: datetime = Field(validation_alias="raised_at", description="When it was raised.")
    CanceledAt: datetime | None = Field(
        validation_alias="canceled_at", description="When it was canceled; null while raised."
    )
    Name: str = Field(validation_alias="text", description="The alert as the console names it.")
    Cause: str | None = Field(
        default=None,
        validation_alias="cause",
        description="Why a sync-failure alert was raised: the error text (ISTR1) of the 6703 "
        "that reported the failure; null for other alerts, whose name says why.",
    )
    CauseSource: str | None = Field(
        default=None,
        validation_alias="cause_source",
        description="Where that sync failed: the 6703's source (ISTR0).",
    )
    CauseTime: datetime | None = Field(
        default=None, validation_alias="cause_time", description="When that 6703 was sent."
    )


class ConfigurationItemView(_View):
    """One update as the site holds it: a configuration item."""

    CI_ID: int | None = Field(
        validation_alias="ci_id", description="The configuration item's id at this site."
    )
    CI_UniqueID: str = Field(
        validation_alias="update_id", description="The update id (GUID, lower case)."
    )
    RevisionNumber: int = Field(
        validation_alias="revision", description="The update revision the CI holds."
    )
    LocalizedDisplayName: str = Field(validation_alias="title", description="The update's title.")
    ArticleID: str | None = Field(
        validation_alias="kb_article", description="The KB article, if any."
    )
    BulletinID: str | None = Field(
        validation_alias="bulletin", description="The security bulletin, if any."
    )
    Severity: str | None = Field(
        validation_alias="severity", description="The MSRC severity, if any."
    )
    DateCreated: str | None = Field(
        validation_alias="creation_date", description="The update's creation date, as published."
    )
    DateRevised: datetime | None = Field(
        validation_alias="date_revised", description="When this site last wrote the CI."
    )
    Products: list[str] = Field(validation_alias="products", description="Product category ids.")
    Classifications: list[str] = Field(
        validation_alias="classifications", description="Classification category ids."
    )
    IsSuperseded: bool = Field(
        validation_alias="is_superseded", description="A newer update replaces it."
    )
    IsExpired: bool = Field(
        validation_alias="is_expired", description="It was withdrawn (expired) upstream."
    )
    XmlSha256: str = Field(
        validation_alias="xml_sha256", description="SHA-256 of the update's metadata XML."
    )
    LocaleID: int | None = Field(
        default=None,
        validation_alias="locale_id",
        description="With `language`: the LocaleID (LCID) of the localized display name and "
        "description; null when the CI has none in that language (the title is then the "
        "update's default language's).",
    )
    LocalizedDescription: str | None = Field(
        default=None,
        validation_alias="localized_description",
        description="With `language`: the update's description in that language.",
    )


class ConfigurationItemPage(_Model):
    """One page of a site's configuration items, in CI id order."""

    SiteCode: str = Field(description="The site.")
    Count: int = Field(description="How many CIs the site holds in all.")
    Offset: int = Field(description="How many CIs were skipped before this page.")
    Limit: int = Field(description="The largest page asked for.")
    Language: str | None = Field(
        default=None, description="The language the display names are in, when asked for."
    )
    LocalizedPropertyCount: int = Field(
        default=0,
        description="How many localized properties (one per CI and subscribed language) the "
        "site holds in all.",
    )
    Items: list[ConfigurationItemView] = Field(description="The CIs of this page.")


class ContentVersionView(_View):
    """The content version of an update source at a site."""

    SiteCode: str = Field(validation_alias="site_code", description="The site.")
    UpdateSourceID: str = Field(
        validation_alias="unique_id", description="The update source's unique id."
    )
    UpdateSourceName: str = Field(validation_alias="name", description="The update source's name.")
    ContentVersion: int = Field(
        validation_alias="content_version",
        description="Rises by one each time a sync changes what the site holds.",
    )


# -- conversions ---------------------------------------------------------------------------


def _sync_status_view(s: SyncStatus, provider: ProviderState) -> SyncStatusView:
    history = provider.sync_history
    return SyncStatusView.of(
        s,
        last_sync_state_description=state_text(s.last_sync_state),
        next_retry_time=history.next_retry_at() if history is not None else None,
    )


def _alert_view(alert: Alert, db: SiteDatabase) -> AlertView:
    cause = failure_message(db, alert)
    strings = (*cause.strings, "", "") if cause is not None else ("", "")
    return AlertView.of(
        alert,
        cause=strings[1] or None,
        cause_source=strings[0] or None,
        cause_time=cause.time if cause is not None else None,
    )


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
    return _sync_status_view(provider.db.sync.status(site_code=code), provider)


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
    reached, the last error and the time of the last successful sync."""
    code = provider.own_site(site)
    return _sync_status_view(provider.db.sync.status(site_code=code), provider)


@router.get(
    "/api/sites/{site}/sup-sync-status",
    response_model=list[SUPSyncStatusView],
    responses=_NOT_FOUND,
    tags=["sync"],
    summary="Sync status of each software update point (SMS_SUPSyncStatus)",
    dependencies=[_READ],
)
def sup_sync_status(site: SiteParam, provider: Provider) -> list[SUPSyncStatusView]:
    """One entry per SUP of the site, with the fields of `SMS_SUPSyncStatus`. The site is
    this provider's or a child site whose status this site database holds."""
    code = site.strip().upper()
    rows = provider.db.sups.sync_statuses(site_code=code)
    if not rows and code != provider.site_code:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"site {code} is not served by this SMS Provider, which serves site "
            f"{provider.site_code}, and its site database holds no SUP sync status of site "
            f"{code}",
        )
    audits = {a.wsus_server_name: a for a in provider.db.sups.audits(site_code=code)}
    return [SUPSyncStatusView.of(r, **_audit_fields(audits.get(r.wsus_server_name))) for r in rows]


def _audit_fields(audit: SUPAudit | None) -> dict[str, object]:
    if audit is None:
        return {}
    detail = (
        audit.reason
        if audit.result == AUDIT_NOT_AVAILABLE
        else f"{audit.own_count} revisions here, {audit.upstream_count} upstream"
    )
    return {
        "content_audit": audit.result,
        "content_audit_time": audit.checked_at,
        "content_audit_upstream": audit.upstream_server,
        "content_audit_detail": detail,
    }


@router.get(
    "/api/status-messages",
    response_model=list[StatusMessageView],
    tags=["tracking"],
    summary="Status messages",
    dependencies=[_READ],
)
def status_messages(
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
        int, Query(ge=1, le=_MAX_PAGE, description="At most this many messages.")
    ] = 100,
) -> list[StatusMessageView]:
    """Status messages, newest first, each with its fields and the text the console
    shows. Without filters: every site whose messages this site database holds."""
    messages = provider.db.messages.find(
        site_code=site,
        message_id=ids,
        severity=severity,
        component=component,
        since=_utc_filter(since, "since"),
        until=_utc_filter(until, "until"),
        limit=limit,
    )
    return [StatusMessageView.of(m, description=describe(m)) for m in messages]


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
    canceled."""
    found = provider.db.alerts.find(site_code=site, state=state)
    return [_alert_view(a, provider.db) for a in found]


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
    logs: SiteLogs | None = None,
) -> FastAPI:
    """The SMS Provider of the site `site_code`, whose site database is `db`; SyncNow calls
    are written to `log` (SMSProv.log, component `SMS Provider`). `on_sync_requested` is
    called after the SyncNow flag is set (the database monitor's `notify`, so that the drop
    does not wait for its next look). Every route but the documentation and signing in
    needs `Authorization: Bearer <token>` (the users and tokens of `db`) or a call signed
    with the hierarchy's `secret` (the hierarchy's own roles; None: no signed call is
    taken; `callers`, `hosts`: the names a signed call must carry, as on the site-to-site
    routes). `parent_site` is None at the top-level site, where users and tokens are written."""
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
        db, log, own, on_sync_requested, sync_history, parent_site=parent_site
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
