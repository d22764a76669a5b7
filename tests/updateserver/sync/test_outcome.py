"""What a sync ends with: its result, its failure, and the running tally."""

from __future__ import annotations

from updatesync.updateserver.errors import UpdateServerError
from updatesync.updateserver.sync import SyncCancelled, SyncFailed, SyncResult
from updatesync.updateserver.sync.outcome import Tally


def test_stored_revisions_are_new_and_changed_ones() -> None:
    result = SyncResult(
        upstream="http://up.test",
        new_revisions=3,
        changed_revisions=2,
        expired_revisions=1,
        unchanged_revisions=4,
        revisions_listed=9,
        revisions_requested=9,
        batches=1,
        seconds=0.5,
        change_before=0,
        change_after=5,
        config_anchor=None,
        config_list_anchor=None,
        update_list_anchor=None,
        authorizations=1,
    )
    assert result.stored_revisions == 5
    assert (result.replica, result.other_items, result.deployment_anchor) == (False, 0, None)
    tally = Tally(new=3, changed=2)
    assert tally.committed == 5 and tally.phase == "categories"


def test_a_failure_carries_what_was_committed_and_why() -> None:
    cause = SyncCancelled("stopping")
    failed = SyncFailed("sync failed", upstream="http://up.test", committed=7, cause=cause)
    assert isinstance(failed, UpdateServerError) and isinstance(cause, UpdateServerError)
    assert (failed.upstream, failed.committed, failed.cause) == ("http://up.test", 7, cause)
    assert str(failed) == "sync failed"
