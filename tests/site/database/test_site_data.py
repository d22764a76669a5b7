"""Site data replicated upward, as the parent's site database keeps it: the child's status
messages once each with their RecordID there, each site's last picture, and the link's health;
a page that does not start where the link stands changes nothing. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from updatesync.logs.status_messages import StatusMessage, new_status_message
from updatesync.site.database.site_data import SitePicture
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError
from updatesync.vocabulary import SYNC_DONE, SYNC_STARTED

T0 = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


def _message(message_id: int, site: str, minutes: int) -> StatusMessage:
    return new_status_message(
        message_id,
        site_code=site,
        system=f"{site}SITE.CONTOSO.COM",
        time=T0 + timedelta(minutes=minutes),
    )


def _picture(site: str, state: int, *, minutes: int = 0, stale: bool = False) -> SitePicture:
    return SitePicture(
        site_code=site,
        as_of=T0 + timedelta(minutes=minutes),
        sync_status={"SiteCode": site, "LastSyncState": state},
        sup_sync_status=[{"SiteCode": site, "WSUSServerName": f"{site}SITE.CONTOSO.COM"}],
        alerts=[],
        stale_below=stale,
    )


def test_a_page_adds_the_messages_and_pictures_and_moves_the_link(db: SiteDatabase) -> None:
    applied = db.site_data.apply(
        "ps1",
        after=0,
        messages=[(7, _message(SYNC_STARTED, "PS1", 0)), (9, _message(SYNC_STARTED, "SS1", 1))],
        last_record_id=9,
        pictures=[_picture("PS1", SYNC_STARTED), _picture("SS1", SYNC_STARTED, stale=True)],
        at=T0 + timedelta(minutes=2),
    )

    assert (applied.messages_added, applied.pictures_changed) == (2, True)
    stored = db.messages.page(limit=10)
    assert [(m.message.site_code, m.source_site) for m in stored.messages] == [
        ("SS1", "PS1"),
        ("PS1", "PS1"),
    ]
    assert {m.received_at for m in stored.messages} == {T0 + timedelta(minutes=2)}
    sites = {s.site_code: s for s in db.site_data.sites()}
    assert sites["SS1"].via_site == "PS1" and sites["SS1"].picture.stale_below
    assert sites["PS1"].picture.sync_status == {"SiteCode": "PS1", "LastSyncState": SYNC_STARTED}
    link = db.site_data.link("PS1")
    assert link is not None
    assert (link.last_record_id, link.consecutive_failures) == (9, 0)

    # The same pictures again change nothing; a newer state does.
    again = db.site_data.apply(
        "PS1",
        after=9,
        messages=[],
        last_record_id=9,
        pictures=[_picture("PS1", SYNC_STARTED, minutes=5)],
        at=T0 + timedelta(minutes=5),
    )
    assert not again.changed
    later = db.site_data.apply(
        "PS1",
        after=9,
        messages=[(10, _message(SYNC_DONE, "PS1", 6))],
        last_record_id=10,
        pictures=[_picture("PS1", SYNC_DONE, minutes=6)],
        at=T0 + timedelta(minutes=6),
    )
    assert (later.messages_added, later.pictures_changed) == (1, True)
    assert db.site_data.site("PS1").picture.as_of == T0 + timedelta(minutes=6)  # type: ignore[union-attr]


def test_a_page_not_starting_where_the_link_stands_is_refused_whole(db: SiteDatabase) -> None:
    db.site_data.apply(
        "PS1",
        after=0,
        messages=[(3, _message(SYNC_STARTED, "PS1", 0))],
        last_record_id=3,
        pictures=[_picture("PS1", SYNC_STARTED)],
        at=T0,
    )

    with pytest.raises(SiteDatabaseError, match=r"after RecordID 0 refused.*up to RecordID 3"):
        db.site_data.apply(
            "PS1",
            after=0,
            messages=[(3, _message(SYNC_STARTED, "PS1", 0))],
            last_record_id=3,
            pictures=[_picture("PS1", SYNC_DONE)],
            at=T0,
        )

    assert db.messages.page(limit=10).count == 1
    assert db.site_data.site("PS1").picture.sync_status["LastSyncState"] == SYNC_STARTED  # type: ignore[index,union-attr]


def test_a_failed_pull_keeps_the_data_and_counts_on_the_link(db: SiteDatabase) -> None:
    db.site_data.apply(
        "PS1",
        after=0,
        messages=[],
        last_record_id=0,
        pictures=[_picture("PS1", SYNC_DONE)],
        at=T0,
    )

    db.site_data.record_failure("PS1", "cannot reach it", at=T0 + timedelta(minutes=1))
    link = db.site_data.record_failure("PS1", "cannot reach it", at=T0 + timedelta(minutes=2))

    assert (link.consecutive_failures, link.last_error_text) == (2, "cannot reach it")
    assert link.last_success_time == T0
    assert db.site_data.site("PS1") is not None
    assert [s.site_code for s in db.site_data.sites()] == ["PS1"]
