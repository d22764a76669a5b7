"""Synchronizing the update server's store from an upstream server over MS-WSUSSS.

`sync_from_upstream` is the downstream server's metadata sync ([MS-WSUSSS] 3.2.4.1 and
3.2.4.2; SPEC.md section 7):

1. authorization: GetAuthConfig, GetAuthorizationCookie at the service URL it names (this
   server's name and its server id as account), GetCookie;
2. GetConfigData: MaxNumberOfUpdatesPerRequest and the new config anchor;
3. GetRevisionIdList(GetConfig=true) from the saved config list anchor, then GetUpdateData
   for the revisions this store lacks, at most MaxNumberOfUpdatesPerRequest ids a call;
   each answer is parsed (hardened), checked to be the revisions asked for, and committed
   in a transaction of its own. The config anchors are saved once every batch is in;
4. the subscription given as arguments, if any, replaces the stored one (it can only name
   categories the store holds, hence after step 3);
5. GetRevisionIdList(GetConfig=false) with the subscribed products as Categories and
   classifications as Classifications, then the same batch loop, then the update list
   anchor and the subscription it was taken under (`filter_key`) are saved;
6. a replica only ([MS-WSUSSS] 3.2.4.3; WSyncMgr's "other items"): GetDeployments with
   the saved deployment anchor (none on a first or `full` sync) and the update list anchor
   as sync anchor. The target groups, deployments, dead deployments and hidden updates it
   answers, the new deployment anchor and the anchors of step 5 are written in ONE
   transaction, so a failure anywhere in this step leaves the groups, deployments and
   anchors as they were, and the next sync asks again from the same anchors. Without a
   deployment anchor the answer holds every deployment, and the replica drops those it
   does not hold. An autonomous server never calls GetDeployments (3.1.4.10).

With a saved anchor, every category or classification that was in the filter when the
anchor was taken is sent with `Delta=true` (a real WSUS sends everything again otherwise,
exchanges 000010/000011); one added since goes with `Delta=false`, so its older updates
come too. Without a saved anchor, or with `full`, no anchor is sent. Languages are kept in
the subscription but not sent in the filter (all languages come; the filter's language ids
are numeric and GetConfigData's language list is not mapped yet). An empty subscription
sends neither Categories nor Classifications, which a WSUS answers with every update
(SPEC.md section 7): such a server mirrors its upstream.

An answer may hold fewer documents than asked (an upstream keeps answers under about
2 MB): the rest is asked for again. An answer naming a revision not asked for, or none of
those asked, is a `ProtocolError`. Faults ([MS-WSUSSS] 2.2.9.3):

- InvalidCookie: a new cookie (GetCookie with the authorization cookie; if that is refused
  too, authorization from the start), then the call again;
- InvalidAuthorizationCookie: authorization from the start, then the call again;
- ServerChanged: the saved anchors are dropped and the metadata sync starts over;
- ServerBusy: wait (exponential back-off, bounded), then the call again;
- anything else (IncompatibleProtocolVersion, InternalServerError, InvalidParameters,
  unknown codes, faults without a code): stop.

Every retry is bounded (cookie renewals per call, authorizations per run, ServerBusy waits
per call, ServerChanged restarts per run). Network retries are the client's
(`wsusss.client`). A failure raises `SyncFailed`; the batches committed before it stay, and
the next run lists again and asks only for what the store still lacks. Each run adds one
`sync_history` row and writes SoftwareDistribution.log lines (manual start, events 382,
384 + SyncFinish, or the error with its stack and event 386).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Final, TypeVar

import httpx
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from updatesync.config.fault_injection import fault_point
from updatesync.logs.softwaredistribution import SoftwareDistributionLog
from updatesync.metadata.document import parse_update
from updatesync.metadata.errors import MetadataError
from updatesync.metadata.model import PublicationState, RevisionKey, UpdateRevision
from updatesync.updateserver import schema as t
from updatesync.updateserver.deployments import Deployment, ReplicaItems, TargetGroup
from updatesync.updateserver.errors import UpdateServerError
from updatesync.updateserver.importer import ImportResult, commit_batch, write_history
from updatesync.updateserver.peers import (
    UpstreamState,
    save_upstream_state,
    server_identity,
    upstream_state,
    write_upstream_state,
)
from updatesync.updateserver.store import Progress, Subscription, UpdateStore
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.errors import ProtocolError, WsusssError
from updatesync.wsusss.faults import ErrorCode, WsusssFault
from updatesync.wsusss.messages import (
    AuthorizationCookie,
    Cookie,
    IdAndDelta,
    ServerSyncDeploymentResult,
    ServerSyncFilter,
    ServerSyncUpdateData,
    ServerUpdateData,
)

__all__ = [
    "DEFAULT_BUSY_BACKOFF",
    "DEFAULT_BUSY_RETRIES",
    "DEFAULT_MAX_AUTHORIZATIONS",
    "DEFAULT_MAX_BUSY_BACKOFF",
    "MICROSOFT_UPDATE_URL",
    "SyncFailed",
    "SyncResult",
    "sync_from_upstream",
]

MICROSOFT_UPDATE_URL: Final = "https://sws.update.microsoft.com"
"""Microsoft Update's server-sync root (the `MUUrl` of a WSUS; Microsoft's "Troubleshoot
WSUS synchronization and import issues", section Endpoints). The services sit under it at
the paths of [MS-WSUSSS] 2.1. Whether it answers this anonymous DSS flow is unverified."""

DEFAULT_BUSY_RETRIES: Final = 5
DEFAULT_BUSY_BACKOFF: Final = 5.0
DEFAULT_MAX_BUSY_BACKOFF: Final = 120.0
DEFAULT_MAX_AUTHORIZATIONS: Final = 5
"""Authorizations per run, the first one included."""
_COOKIE_RENEWALS_PER_CALL: Final = 2
_SERVER_CHANGED_RESTARTS: Final = 2
_COOKIE_MARGIN: Final = timedelta(seconds=60)
_AUTH_PLUGIN: Final = "DssTargeting"
_LOG_SOURCE: Final = "CatalogSyncAgentCore.ExecuteSyncProtocol"
_LOG_FILE: Final = Path("logs") / "SoftwareDistribution.log"
# What a failed sync reports as SyncFailed; anything else is a bug and propagates as is.
_EXPECTED: Final = (
    WsusssError,
    MetadataError,
    UpdateServerError,
    OSError,
    httpx.HTTPError,
    SQLAlchemyError,
)

_T = TypeVar("_T")


class SyncFailed(UpdateServerError):
    """A sync from an upstream stopped. `committed` revisions of this run were stored
    before it did and stay stored; `cause` is the error that stopped it."""

    def __init__(
        self, message: str, *, upstream: str, committed: int, cause: BaseException | None
    ) -> None:
        self.upstream = upstream
        self.committed = committed
        self.cause = cause
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one successful sync did.

    `new_revisions`: revisions of update ids the store did not hold; `changed_revisions`:
    further revisions of ids it held; `expired_revisions`: those of both whose
    PublicationState is Expired; `unchanged_revisions`: revisions delivered that the store
    already held (the same text). `revisions_requested` counts ids sent in GetUpdateData,
    `batches` the GetUpdateData answers committed.

    A replica's sync (`replica`) also counts the "other items" GetDeployments brought:
    `target_groups`, `deployments_received` and `dead_deployments` (their sum is
    `other_items`); `hidden_updates` is the upstream's whole list. Zero otherwise.
    """

    upstream: str
    new_revisions: int
    changed_revisions: int
    expired_revisions: int
    unchanged_revisions: int
    revisions_listed: int
    revisions_requested: int
    batches: int
    seconds: float
    change_before: int
    change_after: int
    config_anchor: str | None
    config_list_anchor: str | None
    update_list_anchor: str | None
    authorizations: int
    conflicting: tuple[RevisionKey, ...] = ()
    replica: bool = False
    other_items: int = 0
    target_groups: int = 0
    deployments_received: int = 0
    dead_deployments: int = 0
    hidden_updates: int = 0
    deployment_anchor: str | None = None

    @property
    def stored_revisions(self) -> int:
        """Revisions this sync added to the store."""
        return self.new_revisions + self.changed_revisions


class _ServerChanged(Exception):
    def __init__(self, fault: WsusssFault) -> None:
        super().__init__(str(fault))
        self.fault = fault


PhaseProgress = Callable[[str, int, int], None]
"""(phase: "categories" | "updates" | "other items", done in the phase, phase total)."""

OTHER_ITEMS: Final = "other items"
"""The replica phase's name, as WSyncMgr.log words it."""


@dataclass(slots=True)
class _Tally:
    new: int = 0
    changed: int = 0
    expired: int = 0
    unchanged: int = 0
    listed: int = 0
    requested: int = 0
    batches: int = 0
    done: int = 0
    total: int = 0
    authorizations: int = 0
    conflicting: list[RevisionKey] = field(default_factory=list)
    phase: str = "categories"
    phase_done: int = 0
    phase_total: int = 0
    groups: int = 0
    deployments: int = 0
    dead: int = 0
    hidden: int = 0
    deployments_applied: bool = False


def sync_from_upstream(
    store: UpdateStore,
    upstream_url: str,
    *,
    products: Sequence[str] = (),
    classifications: Sequence[str] = (),
    languages: Sequence[str] = (),
    full: bool = False,
    replica: bool = False,
    progress: Progress | None = None,
    phase_progress: PhaseProgress | None = None,
    client: UpstreamClient | None = None,
    log: SoftwareDistributionLog | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    server_name: str | None = None,
    busy_retries: int = DEFAULT_BUSY_RETRIES,
    busy_backoff: float = DEFAULT_BUSY_BACKOFF,
    max_busy_backoff: float = DEFAULT_MAX_BUSY_BACKOFF,
    max_authorizations: int = DEFAULT_MAX_AUTHORIZATIONS,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncResult:
    """Synchronize `store` from the upstream at `upstream_url` (see the module docstring).

    `products`, `classifications`, `languages`: when given (non-empty), each replaces that
    part of the stored subscription (the others are kept). `full`: send no anchors, so
    the upstream lists everything (only what the store lacks is fetched) and, for a
    replica, sends every deployment. `replica`: this server is a replica of the upstream:
    after the updates, GetDeployments brings the target groups and deployments (step 6).
    `progress` is called with (revisions fetched, revisions to fetch); the total grows
    when the update list arrives. `phase_progress` is called with ("categories",
    "updates" or, for a replica, "other items"; done, total) counted within the phase, as
    WSyncMgr reports them. `client` defaults to an
    `UpstreamClient` of `upstream_url`; `log` to the SoftwareDistribution.log in the
    store's data folder (SQLite stores; none otherwise).
    `server_name` is the account name sent for authorization (default: this host's FQDN).
    The ServerBusy back-off waits `busy_backoff` seconds, doubling up to
    `max_busy_backoff`, at most `busy_retries` times per call, through `sleep`.

    Raises `SyncFailed` (an `UpdateServerError`) when the sync stops.
    """
    url = upstream_url.strip().rstrip("/")
    own_client = client is None
    try:
        active = UpstreamClient(url) if client is None else client
    except ValueError as exc:
        raise SyncFailed(
            f"cannot sync from {upstream_url!r}: {exc}", upstream=url, committed=0, cause=exc
        ) from exc
    if log is None:
        log = default_log(store)
    run = _Run(
        store,
        url,
        active,
        log,
        progress=progress,
        phase_progress=phase_progress,
        now=now,
        server_name=server_name or socket.getfqdn() or "localhost",
        busy_retries=busy_retries,
        busy_backoff=busy_backoff,
        max_busy_backoff=max_busy_backoff,
        max_authorizations=max_authorizations,
        sleep=sleep,
    )
    try:
        return run.execute(
            Subscription(tuple(products), tuple(classifications), tuple(languages)),
            full=full,
            replica=replica,
        )
    finally:
        if own_client:
            active.close()


def default_log(store: UpdateStore) -> SoftwareDistributionLog | None:
    """The SoftwareDistribution.log of a store kept in a data folder (SQLite), else None."""
    url = store.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return SoftwareDistributionLog(Path(url.database).parent / _LOG_FILE)


class _Run:
    """One sync: the session with the upstream and what it has done so far."""

    def __init__(
        self,
        store: UpdateStore,
        url: str,
        client: UpstreamClient,
        log: SoftwareDistributionLog | None,
        *,
        progress: Progress | None,
        phase_progress: PhaseProgress | None = None,
        now: Callable[[], datetime],
        server_name: str,
        busy_retries: int,
        busy_backoff: float,
        max_busy_backoff: float,
        max_authorizations: int,
        sleep: Callable[[float], None],
    ) -> None:
        self.store = store
        self.url = url
        self.client = client
        self.log = log
        self.progress = progress
        self.phase_progress = phase_progress
        self.now = now
        self.server_name = server_name
        self.busy_retries = busy_retries
        self.busy_backoff = busy_backoff
        self.max_busy_backoff = max_busy_backoff
        self.max_authorizations = max_authorizations
        self.sleep = sleep
        self.tally = _Tally()
        self.auth_cookie: AuthorizationCookie | None = None
        self.cookie: Cookie | None = None

    # -- the whole run ---------------------------------------------------------------------

    def execute(self, wanted: Subscription, *, full: bool, replica: bool = False) -> SyncResult:
        started = self.now()
        clock = time.perf_counter()
        before = self.store.change_counter()
        if self.log is not None:
            self.log.manual_sync_started()
        try:
            state = self._synchronize(wanted, full, replica)
        except BaseException as exc:  # Ctrl-C too: every run leaves its history row
            after = self._counter_or(before)
            error = str(exc) or type(exc).__name__
            self._history(started, clock, before, after, error=error)
            if self.log is not None:
                self.log.sync_failed(f"sync from {self.url}: {error}", exc=exc)
            if not isinstance(exc, _EXPECTED):
                raise
            raise SyncFailed(
                f"sync from {self.url} failed: {error}. The store keeps everything committed "
                f"before the failure ({self.tally.new + self.tally.changed} revisions from "
                f"this run; change counter {after}"
                + (
                    "; no target group or deployment of this run was applied"
                    if replica and not self.tally.deployments_applied
                    else ""
                )
                + "); run the sync again to fetch the rest.",
                upstream=self.url,
                committed=self.tally.new + self.tally.changed,
                cause=exc,
            ) from exc
        after = self.store.change_counter()
        seconds = self._history(started, clock, before, after)
        if self.log is not None:
            self.log.info(
                _LOG_SOURCE,
                f"Sync from {self.url}: {self.tally.new} new, {self.tally.changed} changed, "
                f"{self.tally.expired} expired revisions",
                process=self.log.service_process,
            )
            self.log.sync_succeeded()
        tally = self.tally
        return SyncResult(
            upstream=self.url,
            new_revisions=tally.new,
            changed_revisions=tally.changed,
            expired_revisions=tally.expired,
            unchanged_revisions=tally.unchanged,
            revisions_listed=tally.listed,
            revisions_requested=tally.requested,
            batches=tally.batches,
            seconds=seconds,
            change_before=before,
            change_after=after,
            config_anchor=state.config_anchor,
            config_list_anchor=state.config_list_anchor,
            update_list_anchor=state.update_list_anchor,
            authorizations=tally.authorizations,
            conflicting=tuple(tally.conflicting),
            replica=replica,
            other_items=tally.groups + tally.deployments + tally.dead,
            target_groups=tally.groups,
            deployments_received=tally.deployments,
            dead_deployments=tally.dead,
            hidden_updates=tally.hidden,
            deployment_anchor=state.deployment_anchor if replica else None,
        )

    def _synchronize(self, wanted: Subscription, full: bool, replica: bool) -> UpstreamState:
        state = upstream_state(self.store, self.url)
        restarts = 0
        self._authorize()
        while True:
            try:
                state = self._metadata(state, wanted, full, save=not replica)
                if replica:
                    state = self._deployments(state, full)
                return state
            except _ServerChanged as changed:
                restarts += 1
                if restarts > _SERVER_CHANGED_RESTARTS:
                    raise UpdateServerError(
                        f"the upstream {self.url} answered ServerChanged {restarts} times in "
                        "one sync, even after its anchors were dropped; it is being rebuilt "
                        "or replaced: sync again later"
                    ) from changed.fault
                # 2.2.9.3: reset the anchors and continue the protocol.
                state = UpstreamState(self.url)
                save_upstream_state(self.store, state)
                full = True
                self._note("upstream reported ServerChanged; anchors dropped, listing again")

    def _metadata(
        self, state: UpstreamState, wanted: Subscription, full: bool, *, save: bool = True
    ) -> UpstreamState:
        """Steps 2 to 5. With `save` false (a replica), the update list anchor is left for
        `_deployments` to save with the deployments."""
        config_anchor = None if full else state.config_anchor
        config = self._call(lambda cookie: self.client.get_config_data(cookie, config_anchor))
        limit = config.max_number_of_updates_per_request
        if limit < 1:
            raise ProtocolError(
                f"MaxNumberOfUpdatesPerRequest is {limit}; an upstream must allow at least 1 "
                "id per GetUpdateData",
                where=f"GetConfigDataResult from {self.url}",
                operation="GetConfigData",
            )

        # Categories, classifications, detectoids.
        self._enter_phase("categories")
        config_filter = ServerSyncFilter(
            get_config=True, anchor=None if full else state.config_list_anchor
        )
        listing = self._call(lambda cookie: self.client.get_revision_id_list(cookie, config_filter))
        self._fetch(listing.new_revisions or (), limit)
        state = replace(
            state, config_anchor=config.new_config_anchor, config_list_anchor=listing.anchor
        )
        save_upstream_state(self.store, state)
        self._note(f"categories done: {len(listing.new_revisions or ())} revisions listed")

        if wanted.products or wanted.classifications or wanted.languages:
            current = self.store.subscription()
            self.store.set_subscription(
                Subscription(
                    wanted.products or current.products,
                    wanted.classifications or current.classifications,
                    wanted.languages or current.languages,
                )
            )

        # Software and driver updates of the subscription.
        self._enter_phase("updates")
        subscription = self.store.subscription()
        anchor = None if full else state.update_list_anchor
        update_filter = _update_filter(subscription, anchor, state.filter_key)
        listing = self._call(lambda cookie: self.client.get_revision_id_list(cookie, update_filter))
        self._fetch(listing.new_revisions or (), limit)
        state = replace(
            state, update_list_anchor=listing.anchor, filter_key=_filter_key(subscription)
        )
        if save:
            save_upstream_state(self.store, state)
        return state

    # -- a replica's other items -----------------------------------------------------------

    def _deployments(self, state: UpstreamState, full: bool) -> UpstreamState:
        """Step 6: GetDeployments, applied with the anchors in one transaction."""
        tally = self.tally
        tally.phase = OTHER_ITEMS
        self._phase(0, 0)
        anchor = None if full else state.deployment_anchor
        sync_anchor = state.update_list_anchor
        answer = self._call(lambda cookie: self.client.get_deployments(cookie, anchor, sync_anchor))
        items = _replica_items(answer, complete=anchor is None, where=self.url)
        tally.groups, tally.deployments = len(items.groups), len(items.deployments)
        tally.dead, tally.hidden = len(items.dead), len(items.hidden)
        self._phase(0, items.count)
        state = replace(state, deployment_anchor=answer.anchor)
        applied = self.store.apply_replica(
            items, also=lambda conn: write_upstream_state(conn, state)
        )
        tally.deployments_applied = True
        self._phase(items.count, items.count)
        self._note(
            f"replica: {items.count} other items ({tally.groups} target groups, "
            f"{tally.deployments} deployments, {tally.dead} dead deployments; "
            f"{applied.deployments_written} deployments written, "
            f"{applied.deployments_removed} removed); {tally.hidden} hidden updates"
        )
        return state

    def _phase(self, done: int, total: int) -> None:
        if self.phase_progress is not None:
            self.phase_progress(self.tally.phase, done, total)

    # -- fetching and committing -----------------------------------------------------------

    def _fetch(self, listed: Iterable[RevisionKey], limit: int) -> None:
        keys = list(dict.fromkeys(listed))
        self.tally.listed += len(keys)
        held = self.store.stored(keys)
        wanted = [key for key in keys if key not in held]
        self.tally.total += len(wanted)
        self._report()
        for start in range(0, len(wanted), limit):
            pending = wanted[start : start + limit]
            while pending:
                asked = tuple(pending)
                answer = self._call(
                    lambda cookie, ids=asked: self.client.get_update_data(cookie, ids)
                )
                self.tally.requested += len(asked)
                documents = self._documents(asked, answer)
                self._commit(documents)
                # Where the files can be downloaded, to tell this server's own downstreams.
                self.store.save_file_urls(
                    {
                        u.file_digest: u.mu_url
                        for u in answer.file_urls or ()
                        if u.file_digest and u.mu_url
                    }
                )
                delivered = {doc.key for doc in documents}
                pending = [key for key in pending if key not in delivered]

    def _documents(
        self, asked: Sequence[RevisionKey], answer: ServerUpdateData
    ) -> list[UpdateRevision]:
        expected = set(asked)
        seen: set[RevisionKey] = set()
        items: list[ServerSyncUpdateData] = []
        for item in answer.updates or ():
            if item.id not in expected:
                raise ProtocolError(
                    f"the answer holds {item.id}, which was not asked for (asked for "
                    f"{len(asked)} revisions, first {asked[0]}); the upstream is not answering "
                    "the request it was sent",
                    where=f"GetUpdateDataResult from {self.url}",
                    operation="GetUpdateData",
                )
            if item.id not in seen:
                seen.add(item.id)
                items.append(item)
        if not items:
            raise ProtocolError(
                f"the answer holds none of the {len(asked)} revisions asked for (first "
                f"{asked[0]}); the upstream may have dropped them since it listed them: "
                "sync again, and check the upstream if it persists",
                where=f"GetUpdateDataResult from {self.url}",
                operation="GetUpdateData",
            )
        documents: list[UpdateRevision] = []
        for item in items:
            where = f"GetUpdateData from {self.url}: {item.id}"
            doc = parse_update(item.document(), where=where)
            if doc.key != item.id:
                raise ProtocolError(
                    f"the document delivered for {item.id} is {doc.key}",
                    where=where,
                    operation="GetUpdateData",
                )
            documents.append(doc)
        return documents

    def _commit(self, documents: list[UpdateRevision]) -> None:
        keys = [doc.key for doc in documents]
        already = self.store.stored(keys)
        known_ids = _held_update_ids(self.store, {doc.update_id for doc in documents})
        result = commit_batch(self.store, documents)
        tally = self.tally
        tally.batches += 1
        tally.unchanged += result.unchanged_revisions
        tally.conflicting.extend(result.conflicting)
        for doc in documents:
            if doc.key in already:
                continue
            if doc.update_id in known_ids:
                tally.changed += 1
            else:
                tally.new += 1
            if doc.publication_state is PublicationState.EXPIRED:
                tally.expired += 1
        tally.done += len(documents)
        self._report()
        if tally.phase == "updates":
            fault_point("update-server-updates-batch")  # a test hook, off unless set

    def _enter_phase(self, phase: str) -> None:
        tally = self.tally
        tally.phase, tally.phase_done, tally.phase_total = phase, tally.done, tally.total
        if self.phase_progress is not None:
            self.phase_progress(phase, 0, 0)

    def _report(self) -> None:
        tally = self.tally
        if self.progress is not None:
            self.progress(tally.done, max(tally.total, tally.done))
        if self.phase_progress is not None:
            done, total = tally.done - tally.phase_done, tally.total - tally.phase_total
            self.phase_progress(tally.phase, done, max(total, done))

    # -- authorization and faults ----------------------------------------------------------

    def _authorize(self) -> None:
        """GetAuthConfig, GetAuthorizationCookie, GetCookie (3.2.4.1), from the start."""
        self.tally.authorizations += 1
        if self.tally.authorizations > self.max_authorizations:
            raise UpdateServerError(
                f"the upstream {self.url} kept refusing this server's cookies: authorized "
                f"{self.max_authorizations} times in one sync; check the upstream's logs "
                "and clock"
            )
        config = self._busy(self.client.get_auth_config)
        plugins = [p for p in config.auth_info or () if p.service_url]
        plugin = next((p for p in plugins if p.plugin_id == _AUTH_PLUGIN), None)
        if plugin is None and plugins:
            plugin = plugins[0]
        if plugin is None or plugin.service_url is None:
            raise ProtocolError(
                "GetAuthConfig named no authorization plug-in with a ServiceUrl; the upstream "
                "does not offer DSS authorization",
                where=f"GetAuthConfigResult/AuthInfo from {self.url}",
                operation="GetAuthConfig",
            )
        service_url = plugin.service_url
        guid = server_identity(self.store).server_id
        self.auth_cookie = self._busy(
            lambda: self.client.get_authorization_cookie(service_url, self.server_name, guid)
        )
        auth = self.auth_cookie
        self.cookie = self._busy(lambda: self.client.get_cookie([auth]))

    def _renew_cookie(self) -> None:
        """A new session cookie from the authorization cookie; authorize again if refused."""
        auth = self.auth_cookie
        if auth is None:
            self._authorize()
            return
        try:
            self.cookie = self._busy(lambda: self.client.get_cookie([auth]))
        except WsusssFault as fault:
            if fault.code not in (ErrorCode.INVALID_COOKIE, ErrorCode.INVALID_AUTHORIZATION_COOKIE):
                raise
            self._authorize()

    def _busy(self, call: Callable[[], _T]) -> _T:
        """`call()`, waiting and calling again while the upstream answers ServerBusy."""
        waits = 0
        while True:
            try:
                return call()
            except WsusssFault as fault:
                if fault.code is not ErrorCode.SERVER_BUSY or waits >= self.busy_retries:
                    raise
                self.sleep(min(self.busy_backoff * 2**waits, self.max_busy_backoff))
                waits += 1

    def _call(self, call: Callable[[Cookie], _T]) -> _T:
        """`call(cookie)` with the fault handling of 2.2.9.3 (module docstring)."""
        renewals = 0
        while True:
            if self.cookie is None:
                self._authorize()
            elif _expires_soon(self.cookie, self.now()):
                self._renew_cookie()
            cookie = self.cookie
            assert cookie is not None
            try:
                return self._busy(partial(call, cookie))
            except WsusssFault as fault:
                code = fault.code
                if code is ErrorCode.SERVER_CHANGED:
                    raise _ServerChanged(fault) from fault
                if code is ErrorCode.INVALID_AUTHORIZATION_COOKIE:
                    self._note("upstream refused the authorization cookie; authorizing again")
                    self._authorize()
                    continue
                if code is ErrorCode.INVALID_COOKIE and renewals < _COOKIE_RENEWALS_PER_CALL:
                    renewals += 1
                    self._note("upstream refused the cookie; getting a new one")
                    if renewals == 1:
                        self._renew_cookie()
                    else:
                        self._authorize()
                    continue
                raise

    # -- bookkeeping -----------------------------------------------------------------------

    def _note(self, message: str) -> None:
        if self.log is not None:
            self.log.info(_LOG_SOURCE, message, process=self.log.service_process)

    def _counter_or(self, fallback: int) -> int:
        try:
            return self.store.change_counter()
        except SQLAlchemyError:
            return fallback

    def _history(
        self,
        started: datetime,
        clock: float,
        before: int,
        after: int,
        *,
        error: str | None = None,
    ) -> float:
        seconds = time.perf_counter() - clock
        result = ImportResult(
            source=self.url,
            records=self.tally.requested,
            new_revisions=self.tally.new + self.tally.changed,
            unchanged_revisions=self.tally.unchanged,
            conflicting=tuple(self.tally.conflicting),
            change_before=before,
            change_after=after,
            seconds=seconds,
        )
        write_history(self.store, "sync", result, started, error=error)
        return seconds


def _expires_soon(cookie: Cookie, now: datetime) -> bool:
    expiration = cookie.expiration
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return expiration - _COOKIE_MARGIN <= now


def _filter_key(subscription: Subscription) -> str:
    """The subscription an update list anchor was taken under, as stored beside it."""
    return json.dumps(
        {
            "products": sorted(uid.lower() for uid in subscription.products),
            "classifications": sorted(uid.lower() for uid in subscription.classifications),
        },
        separators=(",", ":"),
    )


def _read_filter_key(text: str | None) -> tuple[set[str], set[str]] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
        return set(value["products"]), set(value["classifications"])
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: treat every category as new (Delta=false)


def _update_filter(
    subscription: Subscription, anchor: str | None, filter_key: str | None
) -> ServerSyncFilter:
    before = _read_filter_key(filter_key) if anchor is not None else None

    def items(ids: Sequence[str], old: set[str] | None) -> tuple[IdAndDelta, ...] | None:
        if not ids:
            return None
        return tuple(IdAndDelta(uid.lower(), old is not None and uid.lower() in old) for uid in ids)

    return ServerSyncFilter(
        get_config=False,
        anchor=anchor,
        categories=items(subscription.products, before[0] if before else None),
        classifications=items(subscription.classifications, before[1] if before else None),
    )


def _replica_items(
    answer: ServerSyncDeploymentResult, *, complete: bool, where: str
) -> ReplicaItems:
    """What a GetDeployments answer asks the replica to hold; an answer without the
    elements 3.1.4.10.3.1 makes mandatory is a `ProtocolError`."""
    for name, value in (("Anchor", answer.anchor), ("Groups", answer.groups)):
        if value is None:
            raise ProtocolError(
                f"the answer has no {name}, which every GetDeployments answer must carry; "
                "nothing of it was applied",
                where=f"GetDeploymentsResult from {where}",
                operation="GetDeployments",
            )
    groups = tuple(
        TargetGroup(g.target_group_id, g.name or "", g.is_builtin, g.parent_group_id)
        for g in answer.groups or ()
    )
    deployments = tuple(
        Deployment(
            deployment_id=d.deployment_guid,
            update_id=d.update_id,
            revision_number=d.revision_number,
            target_group_id=d.target_group_id,
            action=d.action,
            admin_name=d.admin_name,
            deadline=d.deadline,
            is_assigned=d.is_assigned,
            go_live_time=d.go_live_time,
            download_priority=d.download_priority,
        )
        for d in answer.deployments or ()
    )
    return ReplicaItems(
        groups=groups,
        deployments=deployments,
        dead=tuple(answer.dead_deployments or ()),
        hidden=tuple(answer.hidden_updates or ()),
        complete=complete,
    )


def _held_update_ids(store: UpdateStore, update_ids: set[str]) -> set[str]:
    """Which of `update_ids` the store holds any revision of."""
    if not update_ids:
        return set()
    query = select(t.update_item.c.update_id).where(t.update_item.c.update_id.in_(update_ids))
    with store.engine.connect() as conn:
        return set(conn.execute(query).scalars())
