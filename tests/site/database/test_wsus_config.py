"""What the WSUS configuration manager reads and records (`db.wsus`): the subscription and its
version, each SUP's configuration state; on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError
from updatesync.site.database.wsus_config import ConfigState

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
WINDOWS = "a3c2375d-0c8a-42f9-bce0-28333e198407"
SECURITY = "0fa1201d-4330-4fa8-8ae9-b877473b6441"


def test_the_version_rises_only_when_the_subscription_changes(db: SiteDatabase) -> None:
    assert db.wsus.subscription().version == 0
    first = db.wsus.set_subscription((WINDOWS,), (SECURITY,), ("en",), at=T0)
    assert (first.version, first.products, first.changed_at) == (1, (WINDOWS,), T0)
    # The same lists again, in another case and order: nothing changes, nobody is woken.
    same = db.wsus.set_subscription((WINDOWS.upper(),), (SECURITY,), ("EN",), at=T0 + timedelta(1))
    assert (same.version, same.changed_at) == (1, T0)
    second = db.wsus.set_subscription((WINDOWS,), (SECURITY,), ("en", "ja"), at=T0)
    assert second.version == 2
    held = db.wsus.subscription()
    assert (held.products, held.classifications, held.languages, held.version) == (
        (WINDOWS,),
        (SECURITY,),
        ("en", "ja"),
        2,
    )
    assert db.wsus.subscription(site_code="PS1").version == 0


def test_a_bad_subscription_is_refused_and_nothing_changes(db: SiteDatabase) -> None:
    db.wsus.set_subscription((WINDOWS,), (SECURITY,), ())
    with pytest.raises(SiteDatabaseError, match="products must be ids"):
        db.wsus.set_subscription(("",), (SECURITY,), ())
    with pytest.raises(SiteDatabaseError, match="languages"):
        db.wsus.set_subscription((WINDOWS,), (), ("x" * 65,))
    assert db.wsus.subscription().version == 1


def test_each_sup_keeps_its_state_its_error_and_the_version_it_applied(
    db: SiteDatabase,
) -> None:
    assert db.wsus.state("CS1SITE.CONTOSO.COM") is None
    db.wsus.record_state("CS1SITE.CONTOSO.COM", ConfigState.WSUS_CONFIG_PENDING, at=T0)
    db.wsus.record_state(
        "cs1site.contoso.com", ConfigState.WSUS_CONFIG_SUCCESS, subscription_version=3, at=T0
    )
    db.wsus.record_state(
        "CS1SITE.CONTOSO.COM",
        ConfigState.WSUS_CONFIG_FAILED,
        error="refused",
        error_code=0x80072EFD,
        at=T0,
    )
    state = db.wsus.state("CS1SITE.contoso.com")
    assert state is not None
    assert (
        state.state,
        state.last_error,
        state.last_error_code,
        state.subscription_version,
        state.state_time,
    ) == (ConfigState.WSUS_CONFIG_FAILED, "refused", 0x80072EFD, 3, T0)
    assert db.wsus.state("CS1SITE.CONTOSO.COM", site_code="PS1") is None


def test_the_file_criteria_apply_only_when_the_file_changed(db: SiteDatabase) -> None:
    """At start the hierarchy file's criteria are applied when they differ from those the
    file gave last time: a subscription set since (at the top-level site's provider, or
    replicated from the parent) outlives a restart with the same file."""
    first = db.wsus.apply_file_criteria((WINDOWS,), (SECURITY,), ("en",), at=T0)
    assert first.version == 1
    changed = db.wsus.set_subscription((WINDOWS,), (SECURITY,), ("en", "ja"), at=T0)
    assert changed.version == 2
    # a restart with the same file (another order and case): the change stays
    kept = db.wsus.apply_file_criteria((WINDOWS.upper(),), (SECURITY,), ("EN",))
    assert (kept.languages, kept.version) == (("en", "ja"), 2)
    # the file edited: its criteria apply
    edited = db.wsus.apply_file_criteria((WINDOWS,), (), ("de",), at=T0)
    assert (edited.classifications, edited.languages, edited.version) == ((), ("de",), 3)
    assert db.wsus.subscription().version == 3
