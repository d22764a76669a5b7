"""Fetching listed revisions batch by batch, and reporting the sync's progress.

`BatchFetcher.fetch_listed` asks GetUpdateData for the listed revisions the store lacks
(`id_list.ListedIds`: a temporary table, pruned of what the store holds), at most
MaxNumberOfUpdatesPerRequest ids a call. Each answer is parsed (hardened), checked to be
the revisions asked for, and committed in a transaction of its own, in the three
overlapping stages of `pipeline`: batch N+1 is fetched while batch N is parsed and batch
N-1 committed. An answer may hold fewer documents than asked (an upstream keeps answers
under about 2 MB): the rest is asked for again. An answer naming a revision not asked for,
or none of those asked, is a `ProtocolError`. Before each GetUpdateData and before each
commit the sync stops if it was asked to (`SyncHooks.cancel`): nothing is committed after
that, and what was fetched but not committed is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from updatesync.config.fault_injection import fault_point
from updatesync.metadata.document import parse_update
from updatesync.metadata.model import PublicationState, RevisionKey, UpdateRevision
from updatesync.updateserver.database import writer_connection
from updatesync.updateserver.importer import commit_batch
from updatesync.updateserver.sync.context import SyncContext
from updatesync.updateserver.sync.id_list import ListedIds
from updatesync.updateserver.sync.pipeline import run_stages
from updatesync.updateserver.sync.session import UpstreamSession
from updatesync.vocabulary import PHASE_WSUS_UPDATES
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.messages import ServerSyncUpdateData, ServerUpdateData

__all__ = ["BatchFetcher"]


@dataclass(frozen=True, slots=True)
class _Fetched:
    """A GetUpdateData answer, its documents checked to be among those asked for."""

    items: list[ServerSyncUpdateData]
    answer: ServerUpdateData


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A batch's documents, parsed, and where its content files are (digest -> URL)."""

    documents: list[UpdateRevision]
    file_urls: dict[str, str]


class BatchFetcher:
    """The GetUpdateData batches of one sync, and its progress reports."""

    def __init__(self, context: SyncContext, session: UpstreamSession) -> None:
        self.context = context
        self.session = session

    # -- progress ------------------------------------------------------------------------

    def enter_phase(self, phase: str) -> None:
        """Start counting a phase ("categories", "updates") from what is done so far."""
        tally = self.context.tally
        tally.phase, tally.phase_done, tally.phase_total = phase, tally.done, tally.total
        phase_progress = self.context.hooks.phase_progress
        if phase_progress is not None:
            phase_progress(phase, 0, 0)

    def phase(self, done: int, total: int) -> None:
        """Report the current phase's own count (a replica's other items)."""
        phase_progress = self.context.hooks.phase_progress
        if phase_progress is not None:
            phase_progress(self.context.tally.phase, done, total)

    def report(self) -> None:
        tally = self.context.tally
        hooks = self.context.hooks
        if hooks.progress is not None:
            hooks.progress(tally.done, max(tally.total, tally.done))
        done, total = tally.done - tally.phase_done, tally.total - tally.phase_total
        if tally.phase == PHASE_WSUS_UPDATES.progress_name:
            tally.update_items = max(total, done)
        if hooks.phase_progress is not None:
            hooks.phase_progress(tally.phase, done, max(total, done))

    # -- fetching and committing ---------------------------------------------------------

    def fetch(self, listed: Iterable[RevisionKey], limit: int) -> None:
        """Fetch and commit the revisions of `listed` the store lacks, `limit` a call (the
        keys go through a `ListedIds` as a streamed listing's do)."""
        with ListedIds(self.context.store) as ids:
            ids.restart()
            chunk: list[RevisionKey] = []
            for key in listed:
                chunk.append(key)
                if len(chunk) >= 1000:
                    ids.add(chunk)
                    chunk = []
            ids.add(chunk)
            self.fetch_listed(ids, limit)

    def fetch_listed(self, ids: ListedIds, limit: int) -> None:
        """Fetch and commit the revisions of `ids` the store lacks, `limit` a call, in the
        three overlapping stages of `pipeline` (fetch, parse, commit)."""
        tally = self.context.tally
        tally.listed += ids.count()
        wanted = ids.prune()
        tally.total += wanted
        self.report()
        if wanted:
            # The batches commit one by one on one connection, its page cache kept between
            # them (`writer_connection`).
            with writer_connection(self.context.store.engine) as writer:
                run_stages(
                    lambda emit: self._fetch_stage(ids, limit, emit),
                    self._parse_stage,
                    lambda parsed: self._commit_stage(parsed, writer),
                )

    # The fetch stage: GetUpdateData, the only stage that calls the upstream.
    def _fetch_stage(self, ids: ListedIds, limit: int, emit: Callable[[_Fetched], bool]) -> None:
        ctx = self.context
        for page in ids.batches(limit):
            pending = list(page)
            while pending:
                ctx.stop_if_cancelled()
                asked = tuple(pending)
                answer = self.session.call(
                    lambda cookie, ids=asked: ctx.client.get_update_data(cookie, ids)
                )
                ctx.tally.requested += len(asked)
                items = self._delivered(asked, answer)
                if not emit(_Fetched(items, answer)):
                    return
                delivered = {item.id for item in items}
                pending = [key for key in pending if key not in delivered]

    # The parse stage: each document parsed (hardened) and checked to be the one named.
    def _parse_stage(self, fetched: _Fetched) -> _Parsed:
        url = self.context.url
        documents: list[UpdateRevision] = []
        for item in fetched.items:
            where = f"GetUpdateData from {url}: {item.id}"
            doc = parse_update(item.document(), where=where)
            if doc.key != item.id:
                raise ProtocolError(
                    f"the document delivered for {item.id} is {doc.key}",
                    where=where,
                    operation="GetUpdateData",
                )
            documents.append(doc)
        urls = {
            u.file_digest: u.mu_url
            for u in fetched.answer.file_urls or ()
            if u.file_digest and u.mu_url
        }
        return _Parsed(documents, urls)

    # The commit stage, in the run's thread: one transaction a batch, then its progress.
    def _commit_stage(self, parsed: _Parsed, writer: Connection) -> None:
        self.context.stop_if_cancelled()
        self._commit(parsed.documents, writer)
        # Where the files can be downloaded, to tell this server's own downstreams.
        self.context.store.save_file_urls(parsed.file_urls)

    def _delivered(
        self, asked: Sequence[RevisionKey], answer: ServerUpdateData
    ) -> list[ServerSyncUpdateData]:
        url = self.context.url
        expected = set(asked)
        seen: set[RevisionKey] = set()
        items: list[ServerSyncUpdateData] = []
        for item in answer.updates or ():
            if item.id not in expected:
                raise ProtocolError(
                    f"the answer holds {item.id}, which was not asked for (asked for "
                    f"{len(asked)} revisions, first {asked[0]}); the upstream is not answering "
                    "the request it was sent",
                    where=f"GetUpdateDataResult from {url}",
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
                where=f"GetUpdateDataResult from {url}",
                operation="GetUpdateData",
            )
        return items

    def _commit(self, documents: list[UpdateRevision], writer: Connection) -> None:
        store, tally = self.context.store, self.context.tally
        result = commit_batch(store, documents, conn=writer)
        tally.batches += 1
        tally.unchanged += result.unchanged_revisions
        tally.conflicting.extend(result.conflicting)
        for doc in result.written:
            if doc.update_id in result.held_before:
                tally.changed += 1
            else:
                tally.new += 1
            if doc.publication_state is PublicationState.EXPIRED:
                tally.expired += 1
        tally.done += len(documents)
        self.report()
        if tally.phase == PHASE_WSUS_UPDATES.progress_name:
            fault_point("update-server-updates-batch")  # a test hook, off unless set
