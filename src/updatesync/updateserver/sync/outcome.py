"""What a sync from an upstream ends with: `SyncResult` when it succeeds, `SyncFailed` when
it stops (`SyncCancelled` being the cause when it was asked to stop), and the running
`Tally` both are built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from updatesync.metadata.model import RevisionKey
from updatesync.updateserver.errors import UpdateServerError
from updatesync.vocabulary import PHASE_WSUS_CATEGORIES

if TYPE_CHECKING:
    from updatesync.updateserver.sync.audit import AuditResult

__all__ = ["SyncCancelled", "SyncFailed", "SyncResult", "Tally"]


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


class SyncCancelled(UpdateServerError):
    """The sync was asked to stop (its `SyncHooks.cancel` was set) and stopped at a batch
    boundary; what it committed stays, and the next sync resumes from the saved anchors."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one successful sync did.

    `new_revisions`: revisions of update ids the store did not hold; `changed_revisions`:
    further revisions of ids it held; `expired_revisions`: those of both whose
    PublicationState is Expired; `unchanged_revisions`: revisions delivered that the store
    already held (the same text). `revisions_requested` counts ids sent in GetUpdateData,
    `batches` the GetUpdateData answers committed. `update_items`: the count of the updates
    phase (the software updates of the subscription the upstream listed and the store
    lacked: what the last `processed N out of N items` of that phase reports).

    A replica's sync (`replica`) also counts the "other items" GetDeployments brought:
    `target_groups`, `deployments_received` and `dead_deployments` (their sum is
    `other_items`); `hidden_updates` is the upstream's whole list. Zero otherwise.

    `license_files_downloaded` and `license_files_failed` count the license-term files
    asked of the upstream's Content Download service after the metadata.

    `audit`: the consistency audit that ended the sync (None when left out).
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
    update_items: int = 0
    license_files_downloaded: int = 0
    license_files_failed: int = 0
    license_terms_pending: tuple[str, ...] = ()
    """The updates whose license terms are not completely downloaded after this sync (their
    files failed now or before): a site does not turn them into configuration items."""
    audit: AuditResult | None = None
    """The consistency audit against the upstream at the end of the sync (`audit.py`)."""

    @property
    def stored_revisions(self) -> int:
        """Revisions this sync added to the store."""
        return self.new_revisions + self.changed_revisions


@dataclass(slots=True)
class Tally:
    """What the running sync has done so far (counts, phase, authorizations)."""

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
    phase: str = PHASE_WSUS_CATEGORIES.progress_name
    phase_done: int = 0
    phase_total: int = 0
    groups: int = 0
    deployments: int = 0
    dead: int = 0
    hidden: int = 0
    update_items: int = 0
    """The updates phase's own count, once that phase has begun (`SyncResult.update_items`)."""
    deployments_applied: bool = False

    @property
    def committed(self) -> int:
        """Revisions this run added to the store."""
        return self.new + self.changed
