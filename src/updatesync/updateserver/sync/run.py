"""Synchronizing the update server's store from an upstream server over MS-WSUSSS.

The steps of one run live beside this module: `session` (authorization and faults),
`batches` (GetUpdateData batches and progress), `filters` (what is sent, what a replica
receives); `settings` holds what a run is asked to do, `outcome` what it ends with.

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
   categories the store holds, hence after step 3); without one, the stored subscription
   is checked the same way (one set while the store held no category yet);
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
   does not hold. An autonomous server never calls GetDeployments (3.1.4.10);
7. the license terms' files the store lists and lacks, from the upstream's Content Download
   service (`license_files`): a file that cannot be had stays pending without failing the
   sync, and the result names the updates whose license terms are still pending.
8. the consistency audit (`audit.py`, updatesync's own extension): the digest of the
   revisions against the upstream's at the anchors just saved; a difference drops the
   anchors, so the next sync is a full one.

With a saved anchor, every category or classification that was in the filter when the
anchor was taken is sent with `Delta=true` (a real WSUS sends everything again otherwise,
exchanges 000010/000011); one added since goes with `Delta=false`, so its older updates
come too. Without a saved anchor, or with `full`, no anchor is sent. The subscribed
languages go as `Languages`, mapped to the upstream's LanguageIDs by GetConfigData's
language list (kept between syncs; `sync/languages.py`), with the same Delta rule, to an
upstream of protocol 1.3 or later; a language it does not offer stops the sync right after
GetConfigData, before anything is fetched (`UnsupportedLanguages`). An empty subscription
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
the next run lists again and asks only for what the store still lacks. One sync per store:
the run holds the store's sync lock (`sync_lock`), and is refused at once (`SyncBusy`, not
recorded in the history) while another holds it. A sync asked to stop
(`SyncHooks.cancel`) stops at the next batch boundary the same way, its cause being
`SyncCancelled`. Each run adds one
`sync_history` row and writes SoftwareDistribution.log lines (manual start, events 382,
384 + SyncFinish, or the error with its stack and event 386).
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from datetime import datetime
from typing import Final

import httpx
from sqlalchemy.exc import SQLAlchemyError

from updatesync.config.memory import tune_gc, tune_malloc
from updatesync.logs.softwaredistribution import SoftwareDistributionLog
from updatesync.metadata.errors import MetadataError
from updatesync.updateserver.errors import (
    SubscriptionRefused,
    UnsupportedLanguages,
    UpdateServerError,
)
from updatesync.updateserver.failures import sync_failure
from updatesync.updateserver.importer import ImportResult, write_history
from updatesync.updateserver.peers import (
    UpstreamState,
    save_upstream_state,
    upstream_state,
    write_upstream_state,
)
from updatesync.updateserver.store import Subscription, UpdateStore, check_subscription
from updatesync.updateserver.sync.audit import NOT_AVAILABLE, AuditResult, audit_after_sync
from updatesync.updateserver.sync.batches import BatchFetcher
from updatesync.updateserver.sync.context import LOG_SOURCE, SyncContext, default_log
from updatesync.updateserver.sync.filters import filter_key, replica_items, update_filter
from updatesync.updateserver.sync.id_list import ListedIds
from updatesync.updateserver.sync.languages import language_ids, merge_languages, sends_languages
from updatesync.updateserver.sync.license_files import (
    LicenseTermsOutcome,
    download_license_files,
)
from updatesync.updateserver.sync.outcome import SyncFailed, SyncResult
from updatesync.updateserver.sync.session import ServerChanged, UpstreamSession
from updatesync.updateserver.sync.settings import SyncHooks, SyncSettings
from updatesync.updateserver.sync_lock import holding_sync_lock
from updatesync.vocabulary import PHASE_WSUS_CATEGORIES, PHASE_WSUS_OTHER_ITEMS, PHASE_WSUS_UPDATES
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.errors import ProtocolError, WsusssError
from updatesync.wsusss.messages import ServerSyncFilter
from updatesync.wsusss.stream_read import StreamedListing

__all__ = ["sync_from_upstream"]

_SERVER_CHANGED_RESTARTS: Final = 2
# What a failed sync reports as SyncFailed; anything else is a bug and propagates as is.
_EXPECTED: Final = (
    WsusssError,
    MetadataError,
    UpdateServerError,
    OSError,
    httpx.HTTPError,
    SQLAlchemyError,
)


def sync_from_upstream(
    store: UpdateStore,
    settings: SyncSettings,
    *,
    hooks: SyncHooks | None = None,
    client: UpstreamClient | None = None,
    log: SoftwareDistributionLog | None = None,
) -> SyncResult:
    """Synchronize `store` as `settings` say (see the module docstring and `SyncSettings`),
    reporting through and stoppable by `hooks` (`SyncHooks`).

    `client` defaults to an `UpstreamClient` of the upstream URL; `log` to the
    SoftwareDistribution.log in the store's data folder (SQLite stores; none otherwise).

    Raises `SyncFailed` (an `UpdateServerError`) when the sync stops, and `SyncBusy` at
    once, before anything is asked of the upstream, when another sync of the store runs
    (`sync_lock`: one sync per store, across processes).
    """
    url = settings.upstream_url.strip().rstrip("/")
    tune_malloc()  # before the pipeline's threads: one arena, large buffers mapped (config.memory)
    tune_gc()  # and the cycle collector not run every 700 objects of a document's model
    own_client = client is None
    try:
        # Plain http has no certificate to verify: no CA bundle is loaded for it (tens of ms).
        plain = url.lower().startswith("http://")
        verify = settings.verify if settings.verify is not None else not plain
        active = UpstreamClient(url, verify=verify) if client is None else client
    except ValueError as exc:
        raise SyncFailed(
            f"cannot sync from {settings.upstream_url!r}: {exc}",
            upstream=url,
            committed=0,
            cause=exc,
        ) from exc
    context = SyncContext(
        store,
        url,
        active,
        settings,
        hooks if hooks is not None else SyncHooks(),
        log if log is not None else default_log(store),
        server_name=settings.server_name or socket.getfqdn() or "localhost",
    )
    try:
        with holding_sync_lock(store, url):
            return _Run(context).execute()
    finally:
        if own_client:
            active.close()


class _Run:
    """One sync: its steps in order, its history row and its result."""

    def __init__(self, context: SyncContext) -> None:
        self.context = context
        self.session = UpstreamSession(context)
        self.batches = BatchFetcher(context, self.session)

    # -- the whole run ---------------------------------------------------------------------

    def execute(self) -> SyncResult:
        ctx = self.context
        settings, log, tally = ctx.settings, ctx.log, ctx.tally
        started = ctx.hooks.now()
        clock = time.perf_counter()
        before = ctx.store.change_counter()
        if log is not None:
            log.manual_sync_started()
        try:
            state = self._synchronize()
            terms = download_license_files(ctx)
            audit = self._audit(state)
        except BaseException as exc:  # Ctrl-C too: every run leaves its history row
            after = self._counter_or(before)
            error = str(exc) or type(exc).__name__
            self._history(started, clock, before, after, error=error)
            if log is not None:
                failure = sync_failure(exc)
                log.sync_failed(failure.message, error=f"{failure.kind}: {failure.message}")
            if not isinstance(exc, _EXPECTED):
                raise
            # A subscription the upstream cannot serve fails every sync alike: say what to
            # change rather than to run it again.
            again = (
                "change the subscription, then sync again"
                if isinstance(exc, (SubscriptionRefused, UnsupportedLanguages))
                else "run the sync again to fetch the rest"
            )
            raise SyncFailed(
                f"sync from {ctx.url} failed: {error.rstrip('.')}. The store keeps everything "
                "committed "
                f"before the failure ({tally.committed} revisions from "
                f"this run; change counter {after}"
                + (
                    "; no target group or deployment of this run was applied"
                    if settings.replica and not tally.deployments_applied
                    else ""
                )
                + f"); {again}.",
                upstream=ctx.url,
                committed=tally.committed,
                cause=exc,
            ) from exc
        after = ctx.store.change_counter()
        seconds = self._history(started, clock, before, after)
        if log is not None:
            log.info(
                LOG_SOURCE,
                f"Sync from {ctx.url}: {tally.new} new, {tally.changed} changed, "
                f"{tally.expired} expired revisions",
                process=log.service_process,
            )
            log.sync_succeeded()
        return self._result(state, terms, before, after, seconds, audit)

    def _audit(self, state: UpstreamState) -> AuditResult | None:
        """The consistency audit against the upstream (`audit.py`), unless the settings
        leave it out; a failure of its own is "not available", never the sync's."""
        ctx = self.context
        if not ctx.settings.audit:
            return None
        try:
            return audit_after_sync(ctx, self.session, state)
        except SQLAlchemyError as exc:
            ctx.note(f"Revision set audit against {ctx.url}: not available ({exc})")
            return AuditResult(ctx.url, NOT_AVAILABLE, ctx.hooks.now(), reason=str(exc))

    def _result(
        self,
        state: UpstreamState,
        terms: LicenseTermsOutcome,
        before: int,
        after: int,
        seconds: float,
        audit: AuditResult | None = None,
    ) -> SyncResult:
        tally, replica = self.context.tally, self.context.settings.replica
        return SyncResult(
            upstream=self.context.url,
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
            update_items=tally.update_items,
            target_groups=tally.groups,
            deployments_received=tally.deployments,
            dead_deployments=tally.dead,
            hidden_updates=tally.hidden,
            deployment_anchor=state.deployment_anchor if replica else None,
            license_files_downloaded=terms.downloaded,
            license_files_failed=terms.failed,
            license_terms_pending=terms.pending_updates,
            audit=audit,
        )

    def _synchronize(self) -> UpstreamState:
        ctx = self.context
        settings = ctx.settings
        wanted = Subscription(settings.products, settings.classifications, settings.languages)
        full, replica = settings.full, settings.replica
        state = upstream_state(ctx.store, ctx.url)
        restarts = 0
        self.session.authorize()
        while True:
            try:
                state = self._metadata(state, wanted, full, save=not replica)
                if replica:
                    state = self._deployments(state, full)
                return state
            except ServerChanged as changed:
                restarts += 1
                if restarts > _SERVER_CHANGED_RESTARTS:
                    raise UpdateServerError(
                        f"the upstream {ctx.url} answered ServerChanged {restarts} times in "
                        "one sync, even after its anchors were dropped; it is being rebuilt "
                        "or replaced: sync again later"
                    ) from changed.fault
                # 2.2.9.3: reset the anchors and continue the protocol.
                state = UpstreamState(ctx.url)
                save_upstream_state(ctx.store, state)
                full = True
                ctx.note("upstream reported ServerChanged; anchors dropped, listing again")

    def _metadata(
        self, state: UpstreamState, wanted: Subscription, full: bool, *, save: bool = True
    ) -> UpstreamState:
        """Steps 2 to 5. With `save` false (a replica), the update list anchor is left for
        `_deployments` to save with the deployments."""
        ctx, session, batches = self.context, self.session, self.batches
        client, store = ctx.client, ctx.store
        config_anchor = None if full else state.config_anchor
        subscribed = wanted.languages or store.subscription().languages
        if subscribed and state.languages is None:
            config_anchor = None  # no list kept (an older sync's state): ask for all of it
        config = session.call(lambda cookie: client.get_config_data(cookie, config_anchor))
        kept_languages = merge_languages(
            state.languages, config.language_update_list, complete=config_anchor is None
        )
        # Before anything is fetched: every subscribed language must be one it offers.
        language_ids_sent = language_ids(ctx.url, subscribed, kept_languages) if subscribed else {}
        if not sends_languages(config.protocol_version):
            if language_ids_sent:
                ctx.note(
                    f"upstream speaks protocol {config.protocol_version or '1.1'}, which "
                    "takes no language filter: updates in every language are listed"
                )
            language_ids_sent = {}
        limit = config.max_number_of_updates_per_request
        if limit < 1:
            raise ProtocolError(
                f"MaxNumberOfUpdatesPerRequest is {limit}; an upstream must allow at least 1 "
                "id per GetUpdateData",
                where=f"GetConfigDataResult from {ctx.url}",
                operation="GetConfigData",
            )

        # Categories, classifications, detectoids.
        batches.enter_phase(PHASE_WSUS_CATEGORIES.progress_name)
        config_filter = ServerSyncFilter(
            get_config=True, anchor=None if full else state.config_list_anchor
        )
        listing = self._list_and_fetch(config_filter, limit)
        state = replace(
            state,
            config_anchor=config.new_config_anchor,
            config_list_anchor=listing.anchor,
            languages=kept_languages,
        )
        save_upstream_state(store, state)
        ctx.note(f"categories done: {listing.count} revisions listed")

        if wanted.products or wanted.classifications or wanted.languages:
            current = store.subscription()
            store.set_subscription(
                Subscription(
                    wanted.products or current.products,
                    wanted.classifications or current.classifications,
                    wanted.languages or current.languages,
                )
            )
        else:
            # A subscription configured before this server held categories (the site's
            # WSUS configuration manager at a new update server) is checked now it has them.
            check_subscription(store, store.subscription())

        # Software and driver updates of the subscription.
        batches.enter_phase(PHASE_WSUS_UPDATES.progress_name)
        subscription = store.subscription()
        anchor = None if full else state.update_list_anchor
        the_filter = update_filter(subscription, anchor, state.filter_key, language_ids_sent)
        if language_ids_sent:
            ctx.note(
                "update languages in the filter: "
                + ", ".join(
                    f"{name} ({lcid}{'' if sent.delta else ', all updates'})"
                    for (name, lcid), sent in zip(
                        language_ids_sent.items(), the_filter.languages or (), strict=True
                    )
                )
            )
        listing = self._list_and_fetch(the_filter, limit)
        state = replace(
            state,
            update_list_anchor=listing.anchor,
            filter_key=filter_key(subscription, languages=tuple(language_ids_sent)),
        )
        if save:
            save_upstream_state(store, state)
        return state

    def _list_and_fetch(self, the_filter: ServerSyncFilter, limit: int) -> StreamedListing:
        """GetRevisionIdList with `the_filter`, read as it arrives into a temporary table of
        the store (`ListedIds`), then what the store lacks fetched and committed; the
        listing's anchor (for the caller to save once this returns: every batch it covers
        is committed by then) and count."""
        ctx = self.context
        with ListedIds(ctx.store) as ids:
            listing = self.session.call(
                lambda cookie: ctx.client.list_revisions_into(cookie, the_filter, ids)
            )
            self.batches.fetch_listed(ids, limit)
        return listing

    # -- a replica's other items -----------------------------------------------------------

    def _deployments(self, state: UpstreamState, full: bool) -> UpstreamState:
        """Step 6: GetDeployments, applied with the anchors in one transaction."""
        ctx, batches = self.context, self.batches
        tally = ctx.tally
        tally.phase = PHASE_WSUS_OTHER_ITEMS.progress_name
        batches.phase(0, 0)
        ctx.stop_if_cancelled()
        anchor = None if full else state.deployment_anchor
        sync_anchor = state.update_list_anchor
        answer = self.session.call(
            lambda cookie: ctx.client.get_deployments(cookie, anchor, sync_anchor)
        )
        items = replica_items(answer, complete=anchor is None, where=ctx.url)
        tally.groups, tally.deployments = len(items.groups), len(items.deployments)
        tally.dead, tally.hidden = len(items.dead), len(items.hidden)
        batches.phase(0, items.count)
        state = replace(state, deployment_anchor=answer.anchor)
        applied = ctx.store.apply_replica(
            items, also=lambda conn: write_upstream_state(conn, state)
        )
        tally.deployments_applied = True
        batches.phase(items.count, items.count)
        ctx.note(
            f"replica: {items.count} other items ({tally.groups} target groups, "
            f"{tally.deployments} deployments, {tally.dead} dead deployments; "
            f"{applied.deployments_written} deployments written, "
            f"{applied.deployments_removed} removed); {tally.hidden} hidden updates"
        )
        return state

    # -- bookkeeping -----------------------------------------------------------------------

    def _counter_or(self, fallback: int) -> int:
        try:
            return self.context.store.change_counter()
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
        tally = self.context.tally
        result = ImportResult(
            source=self.context.url,
            records=tally.requested,
            new_revisions=tally.committed,
            unchanged_revisions=tally.unchanged,
            conflicting=tuple(tally.conflicting),
            change_before=before,
            change_after=after,
            seconds=seconds,
        )
        write_history(self.context.store, "sync", result, started, error=error)
        return seconds
