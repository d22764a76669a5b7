"""Expired CIs deleted past the Updates Cleanup Age, and their deletions carried by database
replication (`db.expiry`, migration 0006); on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from databases import Databases
from site_samples import T0, sample_ci

from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError

DAY = timedelta(days=1)


def _ids(*numbers: int) -> list[str]:
    return [sample_ci(n).update_id for n in numbers]


def test_expired_cis_older_than_the_cutoff_are_deleted_a_batch_at_a_time(
    db: SiteDatabase,
) -> None:
    """Expired and revised before the cutoff: deleted, at most `limit` a call; expired since,
    or not expired: kept."""
    db.content.apply_ci_batch([sample_ci(n, is_expired=True) for n in (1, 2, 3)], at=T0)
    db.content.apply_ci_batch([sample_ci(4, is_expired=True)], at=T0 + 8 * DAY)
    db.content.apply_ci_batch([sample_ci(5)], at=T0)
    cutoff = T0 + 7 * DAY
    assert db.expiry.delete(cutoff, limit=2, at=T0 + 14 * DAY) == 2
    assert db.expiry.delete(cutoff, limit=2, at=T0 + 14 * DAY) == 1
    assert db.expiry.delete(cutoff, limit=2, at=T0 + 14 * DAY) == 0
    assert sorted(c.update_id for c in db.content.configuration_items()) == _ids(4, 5)
    assert db.expiry.deleted() == _ids(1, 2, 3)
    with pytest.raises(SiteDatabaseError, match="give 1 or more"):
        db.expiry.delete(cutoff, limit=0)


def test_a_deletion_replicates_and_the_child_passes_it_on(
    db: SiteDatabase, databases: Databases
) -> None:
    """The parent's page carries its deletions with the other changes; the child deletes the
    CIs and records the deletions under its own numbers, so its own child gets them too."""
    db.content.apply_ci_batch([sample_ci(n, is_expired=n < 2) for n in range(4)], at=T0)
    with (
        SiteDatabase.open(url=databases.new().url, site_code="PS1") as ps1,
        SiteDatabase.open(url=databases.new().url, site_code="SS1") as ss1,
    ):
        ps1.replication.apply("CS1", db.replication.changes(0, 100))
        ss1.replication.apply("PS1", ps1.replication.changes(0, 100))
        assert ss1.content.ci_count() == 4
        assert db.expiry.delete(T0 + DAY, at=T0 + 8 * DAY) == 2
        page = db.replication.changes(4, 100)
        assert (sorted(page.deleted), page.items, page.size) == (_ids(0, 1), (), 2)
        assert ps1.replication.apply("CS1", page) == 2
        assert sorted(c.update_id for c in ps1.content.configuration_items()) == _ids(2, 3)
        assert ps1.replication.apply("CS1", db.replication.changes(6, 100)) == 0
        ss1.replication.apply("PS1", ps1.replication.changes(4, 100))
        assert sorted(c.update_id for c in ss1.content.configuration_items()) == _ids(2, 3)
        assert sorted(ss1.expiry.deleted()) == _ids(0, 1)


def test_an_update_written_again_is_no_longer_deleted(
    db: SiteDatabase, databases: Databases
) -> None:
    """An update that comes back after its CI was deleted is written again and its deletion
    dropped: a child that had not seen the deletion gets the CI only."""
    db.content.apply_ci_batch([sample_ci(1, is_expired=True)], at=T0)
    assert db.expiry.delete(T0 + DAY, at=T0 + 8 * DAY) == 1
    db.content.apply_ci_batch([sample_ci(1, revision=200)], at=T0 + 9 * DAY)
    assert db.expiry.deleted() == []
    page = db.replication.changes(0, 100)
    assert ([c.revision for c in page.items], page.deleted) == ([200], ())
    with SiteDatabase.open(url=databases.new().url, site_code="PS1") as ps1:
        ps1.replication.apply("CS1", page)
        assert [c.revision for c in ps1.content.configuration_items()] == [200]


def test_a_full_sync_does_not_bring_back_a_deleted_expired_update(db: SiteDatabase) -> None:
    """A full sync reads the expired revisions the update server still holds: the CI the
    cleanup deleted stays deleted (written again it would live another cleanup age, and go
    to every child again), while an expired update the site never held, and one that comes
    back unexpired, are written."""
    db.content.apply_ci_batch([sample_ci(n, is_expired=True) for n in (1, 2)], at=T0)
    assert db.expiry.delete(T0 + DAY, at=T0 + 8 * DAY) == 2
    db.content.apply_ci_batch(
        [sample_ci(1, is_expired=True), sample_ci(2), sample_ci(3, is_expired=True)],
        at=T0 + 9 * DAY,
    )
    held = {c.update_id: c.is_expired for c in db.content.configuration_items()}
    assert held == {_ids(2)[0]: False, _ids(3)[0]: True}
    assert db.expiry.deleted() == _ids(1)
    page = db.replication.changes(0, 100)  # what a new child gets
    assert (list(page.deleted), sorted(c.update_id for c in page.items)) == (_ids(1), _ids(2, 3))
