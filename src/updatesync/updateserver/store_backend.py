"""The update server as an upstream: the backend the MS-WSUSSS service serves from.

`StoreBackend` answers the protocol service's questions from the update server's store:
its identity and cookie key, its change counter (behind every anchor it hands out), the
revisions a downstream's filter selects (streamed from the store page by page, up to the
counter the anchor carries), and their documents; for a replica, its target
groups, deployments (changed after a deployment counter value), dead deployments and
hidden updates; for the consistency audit (updatesync's own extension), the digest of
what a downstream's listings held (`digest.scoped`). Downstream servers are registered on
first contact, within its `DownstreamLimits` (per source address, in all, forgotten
when not seen for a while).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from updatesync.metadata.languages import ALL_LANGUAGES_ID, LANGUAGES, language_of_id
from updatesync.metadata.model import RevisionKey
from updatesync.updateserver import license_terms
from updatesync.updateserver.deployments import Deployment, TargetGroup
from updatesync.updateserver.digest import scoped
from updatesync.updateserver.errors import UnknownRevisions
from updatesync.updateserver.localized import language_settings
from updatesync.updateserver.peers import (
    DEFAULT_DOWNSTREAM_LIMITS,
    DownstreamLimits,
    register_downstream,
    server_identity,
    touch_downstream,
)
from updatesync.updateserver.selection import FilterItem, RevisionFilter, iter_revisions
from updatesync.updateserver.store import UpdateStore
from updatesync.wsusss.anchors import Anchor
from updatesync.wsusss.messages import (
    RevisionSetDigest,
    ServerSyncDeployment,
    ServerSyncTargetGroup,
)
from updatesync.wsusss.service import (
    DeploymentAnswer,
    DigestQuery,
    Language,
    RevisionQuery,
    RevisionsNotFound,
    ServedDocument,
    ServerIdentity,
)

DOCUMENTS_AT_ONCE = 25
"""How many documents a GetUpdateData answer reads from the store at a time, as it is written:
what an answer held up by a slow reader keeps in memory (about 25 x 20 KB)."""


class StoreBackend:
    """Serves one update server's store to its downstream servers."""

    def __init__(
        self,
        store: UpdateStore,
        *,
        limits: DownstreamLimits = DEFAULT_DOWNSTREAM_LIMITS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`clock`: the time a downstream server's contact is recorded at (its expiry is
        counted from it; a test moves it on instead of waiting)."""
        self.store = store
        self.limits = limits
        self.clock = clock
        ident = server_identity(store)
        self._identity = ServerIdentity(ident.server_id, ident.cookie_key, datetime.now(UTC))

    def identity(self) -> ServerIdentity:
        return self._identity

    def change_counter(self) -> int:
        return self.store.change_counter()

    def languages(self, since: Anchor | None = None) -> Sequence[Language]:
        """The languages a WSUS lists (`metadata.languages`), "all" first: "all" enabled
        when the subscription names no language (this server takes every one), else each
        language it names or holds language-specific updates in. To a config anchor, the
        whole list again when the subscription's languages changed, or a language-specific
        update arrived, after the anchor; else none (a Windows WSUS lists only the changed
        ones: the whole list says the same to a downstream that keeps it by id)."""
        with self.store.engine.connect() as conn:
            held = language_settings(conn)
        if since is not None and not held.changed_after(since.change_number, since.timestamp):
            return []
        subscribed = set(held.subscribed)
        enabled = subscribed | set(held.held)
        return [
            Language(ALL_LANGUAGES_ID, "all", "all", not subscribed),
            *(
                Language(lang.id, lang.short_name, lang.long_name, lang.short_name in enabled)
                for lang in LANGUAGES
            ),
        ]

    def list_revisions(self, query: RevisionQuery) -> Iterator[RevisionKey]:
        """The revisions `query` selects, up to `query.through`, read from the store a page
        at a time as the iterator is advanced (the categories are looked up at once)."""
        wanted = RevisionFilter(
            get_config=query.get_config,
            since=query.since,
            categories=tuple(FilterItem(uid, delta) for uid, delta in query.categories),
            classifications=tuple(FilterItem(uid, delta) for uid, delta in query.classifications),
            languages=filter_languages(query.languages),
        )
        return iter_revisions(self.store, wanted, through=query.through)

    def documents(self, keys: Sequence[RevisionKey]) -> Iterator[ServedDocument]:
        """The documents, read `DOCUMENTS_AT_ONCE` at a time as the answer asks for them,
        once every key is known to be held (RevisionsNotFound before the first)."""
        stored = self.store.stored(keys)
        missing = [k for k in keys if k not in stored]
        if missing:
            raise RevisionsNotFound(missing)
        for start in range(0, len(keys), DOCUMENTS_AT_ONCE):
            try:
                group = self.store.documents(keys[start : start + DOCUMENTS_AT_ONCE])
            except UnknownRevisions as exc:  # removed since: the answer is cut
                raise RevisionsNotFound(exc.missing) from exc
            for d in group:
                yield ServedDocument(d.key, d.xml, d.file_digests)

    def file_urls(self, digests: Sequence[str]) -> dict[str, str]:
        return self.store.file_urls(digests)

    def content_file(self, digest: str) -> tuple[str, bytes] | None:
        """The license-term files this store holds; update content is not served."""
        return license_terms.held_file(self.store, digest)

    def deployments(self, since: int | None) -> DeploymentAnswer:
        found = self.store.deployment_changes(since)
        return DeploymentAnswer(
            counter=found.counter,
            groups=tuple(group_message(g) for g in found.groups),
            deployments=tuple(deployment_message(d) for d in found.deployments),
            dead_deployments=found.dead,
            hidden_updates=found.hidden,
        )

    def revision_set_digest(self, query: DigestQuery) -> RevisionSetDigest:
        """The audit extension: the digest of what the downstream's filter had listed at
        its two anchors (`digest.scoped`)."""
        digest, scope = scoped(
            self.store,
            query.categories,
            query.classifications,
            filter_languages(tuple((lcid, True) for lcid in query.languages)),
            config_through=query.config_through,
            updates_through=query.updates_through,
        )
        return RevisionSetDigest(digest.hex, digest.count, scope)

    def register_downstream(
        self, account_guid: str, account_name: str, address: str | None, protocol_version: str
    ) -> None:
        register_downstream(
            self.store,
            account_guid=account_guid,
            account_name=account_name,
            address=address,
            protocol_version=protocol_version or None,
            limits=self.limits,
            now=self.clock(),
        )

    def note_downstream(
        self,
        account_guid: str,
        *,
        protocol_version: str | None = None,
        sync_anchor: str | None = None,
        is_replica: bool | None = None,
    ) -> None:
        touch_downstream(
            self.store,
            account_guid,
            protocol_version=protocol_version,
            sync_anchor=sync_anchor,
            is_replica=is_replica,
            now=self.clock(),
        )


def filter_languages(languages: Sequence[tuple[int, bool]]) -> tuple[FilterItem, ...]:
    """The short names of a filter's `Languages` (LCID, Delta). LanguageID 0 ("all") asks
    for every language: no language filter. An id no WSUS knows selects no
    language-specific update (it stays in the filter under a name none has)."""
    if any(lcid == ALL_LANGUAGES_ID for lcid, _delta in languages):
        return ()
    items: list[FilterItem] = []
    for lcid, delta in languages:
        known = language_of_id(lcid)
        items.append(FilterItem(known.short_name if known else f"lcid:{lcid}", delta))
    return tuple(items)


NULL_GUID = "00000000-0000-0000-0000-000000000000"
"""The parent of a target group at the top ([MS-WSUSSS] 3.1.4.10.3.3)."""


def group_message(group: TargetGroup) -> ServerSyncTargetGroup:
    return ServerSyncTargetGroup(
        target_group_id=group.target_group_id,
        parent_group_id=group.parent_group_id or NULL_GUID,
        name=group.name,
        is_builtin=group.is_builtin,
    )


def deployment_message(dep: Deployment) -> ServerSyncDeployment:
    return ServerSyncDeployment(
        update_id=dep.update_id,
        revision_number=dep.revision_number,
        action=dep.action,
        admin_name=dep.admin_name,
        deadline=dep.deadline,
        is_assigned=dep.is_assigned,
        go_live_time=dep.go_live_time,
        deployment_guid=dep.deployment_id,
        target_group_id=dep.target_group_id,
        download_priority=dep.download_priority,
    )
