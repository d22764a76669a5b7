"""The SMS Provider's answers: one response model per view, read from the database's
records (`_View.of`: `model_validate(..., from_attributes=True)`, each field naming its
attribute by `validation_alias`), so the JSON keys stay ConfigMgr's. The provider's routes
(`provider.py`) and the site data a child site sends up the hierarchy (`hierarchy.py`) give
the same views, so a parent's answer about a child site has the values the child's own
provider gives.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from updatesync.site.api.syncs import state_text
from updatesync.site.database.models import AUDIT_NOT_AVAILABLE, SUPAudit, SyncStatus
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.watch.alert_watcher import failure_message
from updatesync.site.watch.alerts import Alert, AlertState
from updatesync.vocabulary import MessageSeverity


class _Model(BaseModel):
    # By field name too: a parent site's provider reads back the JSON its child's gave.
    model_config = ConfigDict(frozen=True, validate_by_name=True)


class _Fresh(_Model):
    """How fresh an answer about a site below the provider's own is: the site's data as
    replicated up to this site (null for the provider's own site, whose data is live)."""

    AsOf: datetime | None = Field(
        default=None,
        description="When this was current at its own site (the last successful pull of "
        "it); null for the provider's own site.",
    )
    ReceivedAt: datetime | None = Field(
        default=None,
        description="When it arrived in this site's database; null for the provider's own site.",
    )
    Stale: bool | None = Field(
        default=None,
        description="True when older than the provider's limit, or when the last pull from "
        "the child it comes through failed (the data is the last held); null for the "
        "provider's own site.",
    )


FRESHNESS = frozenset(_Fresh.model_fields)
"""The freshness fields, which a site's own answer leaves null."""


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


class SyncStatusView(_View, _Fresh):
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


class SUPSyncStatusView(_View, _Fresh):
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

    RecordID: int = Field(
        validation_alias="record_id",
        description="The message's record in this site's database: rises with each message "
        "stored, the key the pages follow.",
    )
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
    ReceivedAt: datetime | None = Field(
        default=None,
        validation_alias="received_at",
        description="When it arrived here from the child site below (site data replicated "
        "upward); null for a message sent at this site.",
    )

    @field_validator("Attributes", mode="before")
    @classmethod
    def _attribute_pairs(cls, value: Any) -> Any:
        """A status message holds its attributes as (id, value) pairs."""
        return dict(value) if isinstance(value, tuple) else value


class StatusMessagePage(_Model):
    """One page of status messages, with how many match the filters and where the next
    page is."""

    count: int = Field(description="How many messages match the filters, in all pages.")
    value: list[StatusMessageView] = Field(description="The messages of this page.")
    next: str | None = Field(
        description="The URL of the next page (the same filters, and a cursor); null after "
        "the last page."
    )


class SiteView(_Fresh):
    """A site this provider answers for: its own, or one below it whose data it holds."""

    SiteCode: str = Field(description="The site.")
    Data: str = Field(
        description='"own": this provider\'s site, live; "replicated": a site below, as '
        "replicated up to this site."
    )
    Via: str | None = Field(
        default=None, description="The child site the data comes through; null for its own."
    )
    LastError: str | None = Field(
        default=None,
        description="Why the last pull from that child failed; null when it succeeded.",
    )


class AlertView(_View, _Fresh):
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


def sync_status_view(s: SyncStatus, next_retry: datetime | None = None) -> SyncStatusView:
    """The view of a sync status; `next_retry`: when the site server retries its failed sync."""
    return SyncStatusView.of(
        s, last_sync_state_description=state_text(s.last_sync_state), next_retry_time=next_retry
    )


def alert_view(alert: Alert, db: SiteDatabase) -> AlertView:
    """The view of an alert of this site, with the 6703 that said why (a sync failure's)."""
    cause = failure_message(db, alert)
    strings = (*cause.strings, "", "") if cause is not None else ("", "")
    return AlertView.of(
        alert,
        cause=strings[1] or None,
        cause_source=strings[0] or None,
        cause_time=cause.time if cause is not None else None,
    )


def audit_fields(audit: SUPAudit | None) -> dict[str, object]:
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
