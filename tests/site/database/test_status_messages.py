"""Status messages stored in the site database and found again by filter (`db.messages`)."""

from __future__ import annotations

from datetime import timedelta

from site_samples import T0

from updatesync.logs.status_messages import StatusMessage, new_status_message
from updatesync.site.database.site_db import SiteDatabase
from updatesync.vocabulary import MessageSeverity


def _message(message_id: int, minutes: int, site: str = "CS1", **kw: object) -> StatusMessage:
    return new_status_message(
        message_id,
        site_code=site,
        system=f"{site}SITE.CONTOSO.COM",
        time=T0 + timedelta(minutes=minutes),
        **kw,  # type: ignore[arg-type]
    )


def test_status_messages_round_trip_and_filters(db: SiteDatabase) -> None:
    sent = [
        _message(6701, 0),
        _message(6704, 1),
        _message(6705, 4),
        _message(6702, 5),
        _message(6701, 6, site="PS1"),
        _message(6703, 7, site="PS1", strings=("Where", "What"), last_error=0x8013150A),
    ]
    for msg in sent:
        db.messages.add(msg)
    newest_first = list(reversed(sent))
    assert db.messages.find() == newest_first
    assert db.messages.find(site_code="ps1") == newest_first[:2]
    assert db.messages.find(message_id=6701) == [sent[4], sent[0]]
    assert db.messages.find(message_id={6704, 6705}) == [sent[2], sent[1]]
    assert db.messages.find(severity=MessageSeverity.ERROR) == [sent[5]]
    assert db.messages.find(severity="E")[0].last_error == 0x8013150A
    assert db.messages.find(component="SMS_WSUS_SYNC_MANAGER", limit=2) == newest_first[:2]
    assert db.messages.find(component="SMS_PROVIDER") == []
    window = db.messages.find(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=5))
    assert window == [sent[2], sent[1]]
