"""Fetching listed revisions batch by batch, and reporting the sync's progress.

`BatchFetcher.fetch` asks GetUpdateData for the listed revisions the store lacks, at most
MaxNumberOfUpdatesPerRequest ids a call. Each answer is parsed (hardened), checked to be
the revisions asked for, and committed in a transaction of its own. An answer may hold
fewer documents than asked (an upstream keeps answers under about 2 MB): the rest is asked
for again. An answer naming a revision not asked for, or none of those asked, is a
`ProtocolError`. Before each batch the sync stops if it was asked to (`SyncHooks.cancel`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select

from updatesync.config.fault_injection import fault_point
from updatesync.metadata.document import parse_update
from updatesync.metadata.model import PublicationState, RevisionKey, UpdateRevision
from updatesync.updateserver import schema as t
from updatesync.updateserver.importer import commit_batch
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.sync.context import SyncContext
from updatesync.updateserver.sync.session import UpstreamSession
from updatesync.vocabulary import PHASE_WSUS_UPDATES
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.messages import ServerSyncUpdateData, ServerUpdateData

__all__ = ["BatchFetcher"]


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
        if hooks.phase_progress is not None:
            done, total = tally.done - tally.phase_done, tally.total - tally.phase_total
            hooks.phase_progress(tally.phase, done, max(total, done))

    # -- fetching and committing ---------------------------------------------------------

    def fetch(self, listed: Iterable[RevisionKey], limit: int) -> None:
        """Fetch and commit the revisions of `listed` the store lacks, `limit` a call."""
        ctx = self.context
        store, tally = ctx.store, ctx.tally
        keys = list(dict.fromkeys(listed))
        tally.listed += len(keys)
        held = store.stored(keys)
        wanted = [key for key in keys if key not in held]
        tally.total += len(wanted)
        self.report()
        for start in range(0, len(wanted), limit):
            pending = wanted[start : start + limit]
            while pending:
                ctx.stop_if_cancelled()
                asked = tuple(pending)
                answer = self.session.call(
                    lambda cookie, ids=asked: ctx.client.get_update_data(cookie, ids)
                )
                tally.requested += len(asked)
                documents = self._documents(asked, answer)
                self._commit(documents)
                # Where the files can be downloaded, to tell this server's own downstreams.
                store.save_file_urls(
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
        documents: list[UpdateRevision] = []
        for item in items:
            where = f"GetUpdateData from {url}: {item.id}"
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
        store, tally = self.context.store, self.context.tally
        keys = [doc.key for doc in documents]
        already = store.stored(keys)
        known_ids = held_update_ids(store, {doc.update_id for doc in documents})
        result = commit_batch(store, documents)
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
        self.report()
        if tally.phase == PHASE_WSUS_UPDATES.progress_name:
            fault_point("update-server-updates-batch")  # a test hook, off unless set


def held_update_ids(store: UpdateStore, update_ids: set[str]) -> set[str]:
    """Which of `update_ids` the store holds any revision of."""
    if not update_ids:
        return set()
    query = select(t.update_item.c.update_id).where(t.update_item.c.update_id.in_(update_ids))
    with store.engine.connect() as conn:
        return set(conn.execute(query).scalars())
